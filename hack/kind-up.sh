#!/usr/bin/env bash
# A kind cluster with vpcep installed, for people with Docker: 1 control plane + 2 workers (the 2 gateways
# spread over them), the image built and loaded, the chart installed (helm if present, else hack/render-chart).
# Env: KIND_CLUSTER (vpcep), IMAGE (vpcep-operator:dev), NAMESPACE (vpcep-system).
set -euo pipefail
cd "$(dirname "$0")/.."
cluster="${KIND_CLUSTER:-vpcep}"
image="${IMAGE:-vpcep-operator:dev}"
namespace="${NAMESPACE:-vpcep-system}"
for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { echo "kind-up: $tool is needed" >&2; exit 2; }
done

if ! kind get clusters | grep -qx "$cluster"; then
  kind create cluster --name "$cluster" --wait 180s --config - <<'EOF_KIND'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
  - role: worker
  - role: worker
EOF_KIND
fi
kubectl config use-context "kind-$cluster" >/dev/null

docker build -t "$image" .
kind load docker-image "$image" --name "$cluster"

values=(--set "image.repository=${image%:*}" --set "image.tag=${image##*:}" --set image.pullPolicy=Never)
if command -v helm >/dev/null; then
  helm upgrade --install vpcep charts/vpcep-operator --namespace "$namespace" --create-namespace "${values[@]}"
else
  kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f -
  hack/render-chart vpcep --namespace "$namespace" "${values[@]}" | kubectl apply --server-side -f -
fi
kubectl -n "$namespace" rollout status deploy/vpcep-operator --timeout=180s
kubectl -n "$namespace" rollout status deploy/vpcep-gateway --timeout=180s
echo "kind-up: vpcep is running in kind-$cluster (namespace $namespace). Note: kindnet does not enforce NetworkPolicy."

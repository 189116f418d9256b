#!/usr/bin/env bash
# End to end on kind: install (hack/kind-up.sh), then run the walkthroughs of examples/ and check real bytes
# through the gateways. KEEP=1 leaves the example namespaces in place.
set -euo pipefail
cd "$(dirname "$0")/.."
hack/kind-up.sh
plugin() { PYTHONPATH=operator python3 -m vpcep.cli.kubectl_plugin "$@"; }

# provider_ns service consumer_ns folder -> waits for the service, applies the consumer side
connect() {
  local provider_ns=$1 service=$2 consumer_ns=$3 folder=$4
  kubectl apply -f "examples/$folder/provider.yaml"
  kubectl -n "$provider_ns" wait "vpces/$service" --for=jsonpath='{.status.phase}'=Available --timeout=120s
  local name
  name=$(kubectl -n "$provider_ns" get vpces "$service" -o jsonpath='{.status.serviceName}')
  plugin verify "$name" -n "$consumer_ns" || true   # the namespace may not exist yet
  sed "s/SERVICE_NAME/$name/" "examples/$folder/consumer.yaml" | kubectl apply -f -
}

# consumer_ns endpoint url expected-text
expect_bytes() {
  kubectl -n "$1" wait "vpce/$2" --for=jsonpath='{.status.phase}'=Accepted --timeout=120s
  kubectl -n "$1" run "probe-$RANDOM" --rm -i --restart=Never --image=busybox:1.36 -- wget -qO- -T 10 "$3" \
    | grep -q "$4"
  echo "kind-e2e: $1/$2 carries traffic"
}

connect shop-db orders shop-web 01-same-account
expect_bytes shop-web orders http://vpce-orders.shop-web.svc.cluster.local/ "Welcome to nginx"

connect alpha-payments payments beta-shop 02-two-accounts-whitelist
expect_bytes beta-shop payments http://vpce-payments.beta-shop.svc.cluster.local:8080/ "Welcome to nginx"

connect alpha-reports reports beta-reports 03-approval
kubectl -n beta-reports wait vpce/reports --for=jsonpath='{.status.phase}'=PendingAcceptance --timeout=120s
endpoint_id=$(kubectl -n beta-reports get vpce reports -o jsonpath='{.status.endpointId}')
plugin accept "$endpoint_id" -n alpha-reports
expect_bytes beta-reports reports http://vpce-reports.beta-reports.svc.cluster.local:443/ "Welcome to nginx"

connect delta-tools inventory epsilon-app 04-pod-backend
kubectl -n delta-tools wait pod/inventory --for=condition=Ready --timeout=120s
expect_bytes epsilon-app inventory http://vpce-inventory.epsilon-app.svc.cluster.local:443/ "inventory: hello"

plugin quota -n beta-shop
plugin describe payments -n beta-shop
if [ -z "${KEEP:-}" ]; then
  kubectl delete namespace shop-web beta-shop beta-reports epsilon-app --wait=true
  kubectl delete namespace shop-db alpha-payments alpha-reports delta-tools --wait=true
fi
echo "kind-e2e: all walkthroughs passed"

"""Gateway pods on the test control plane, standing in for the Deployment controller and kubelet (the testbed
runs neither): what the operator checks before it believes a gateway's status ConfigMap (R47,
vpcep.domain.fleet_trust). Used by the integration tests (integration.helpers.gateway_pod) and the chart's
cluster tests. Never product code.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Mapping

# kubectl(*args, input=..., check=...) of either test cluster wrapper
Kubectl = Callable[..., subprocess.CompletedProcess[str]]

GATEWAY_DEPLOYMENT = "vpcep-gateway"  # OperatorConfig.gatewayDeployment's default
GATEWAY_POD_LABELS = {"app.kubernetes.io/name": "vpcep-gateway"}  # OperatorConfig.gatewayPodLabels' default
TEMPLATE_HASH = "5f7c9d"


def create_gateway_pod(
    kubectl: Kubectl,
    namespace: str,
    name: str,
    ip: str,
    deployment: str = GATEWAY_DEPLOYMENT,
    labels: Mapping[str, str] = GATEWAY_POD_LABELS,
) -> None:
    """A ReplicaSet ``<deployment>-<hash>`` (no replicas: nothing reconciles it here) and its Pod `name`,
    Running and Ready at `ip`. The pod goes with its ReplicaSet (garbage collector) or on its own."""
    replica_set = f"{deployment}-{TEMPLATE_HASH}"
    selected = {**labels, "pod-template-hash": TEMPLATE_HASH}
    container = {"name": "agent", "image": "vpcep"}
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": replica_set, "labels": selected},
        "spec": {"replicas": 0, "selector": {"matchLabels": selected},
                 "template": {"metadata": {"labels": selected}, "spec": {"containers": [container]}}},
    }))  # fmt: skip
    found = kubectl("get", "replicaset", replica_set, "-n", namespace, "-o", "jsonpath={.metadata.uid}")
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": selected, "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": replica_set,
            "uid": found.stdout.strip(), "controller": True}]},
        "spec": {"containers": [container]},
    }))  # fmt: skip
    set_gateway_pod_ready(kubectl, namespace, name, ip, True)


def set_gateway_pod_ready(kubectl: Kubectl, namespace: str, name: str, ip: str, ready: bool) -> None:
    """As kubelet reports it: Running at `ip`, Ready or not (its readiness probe's verdict)."""
    status = {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    kubectl(
        "patch", "pod", name, "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip

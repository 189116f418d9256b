"""R52 with pod trust (R47, `verifyGatewayPods` as the chart sets it): a gateway pod that is being deleted
drains -- its address leaves every consumer EndpointSlice as soon as the pod has a deletionTimestamp, before
its agent says anything, while the route keeps its share of R21's cap (the pod still holds sessions, and a
drain rewrites no route); once the pod is gone the share follows.

The real operator; the gateways are stand-ins (helpers.StandInGateway, still reporting "not draining": only
the pod tells) with pods made by helpers.gateway_pod, standing in for the Deployment controller and kubelet; a
finalizer of the test keeps the deleted pod terminating, as kubelet does during the grace period.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator

import pytest

from integration.conftest import delete_namespaces, start_operator
from integration.helpers import (
    TRUSTED_GATEWAYS,
    Cluster,
    OperatorProcess,
    StandInGateway,
    gateway_pod,
    phase_is,
    publish_service,
    slice_addresses,
    wait_for,
)

pytestmark = pytest.mark.cluster
PID = os.getpid()
PROVIDER, CONSUMER = f"poddrain-prov-{PID}", f"poddrain-cons-{PID}"
LEAVING, STAYING = ("10.244.0.40", f"gw-leaving-{PID}"), ("10.244.0.41", f"gw-staying-{PID}")
CAP = 100
HOLD = "vpcep.test/kubelet-grace-period"


@pytest.fixture(scope="module")
def operator(kube: Cluster, operator_namespace: str) -> Iterator[OperatorProcess]:
    process = start_operator(
        kube, operator_namespace, config={**TRUSTED_GATEWAYS, "maxConnectionsPerEndpoint": CAP}
    )
    try:
        yield process
        delete_namespaces(kube, PROVIDER, CONSUMER, operator_namespace)
    finally:
        process.stop()


@contextlib.contextmanager
def stand_in(kube: Cluster, namespace: str, address: str, name: str) -> Iterator[None]:
    with gateway_pod(kube, namespace, name, address):
        gateway = StandInGateway(kube, namespace, name, address)
        gateway.start()
        try:
            yield
        finally:
            gateway.stop()


def route_cap(kube: Cluster, operator: OperatorProcess, endpoint_id: str) -> int:
    route = kube.get("configmap", operator.namespace, f"vpcep-route-{endpoint_id}") or {}
    return int(json.loads(route.get("data", {}).get("route.json", "{}")).get("maxConnections", 0))


def test_a_terminating_gateway_pod_leaves_the_slices_at_once_and_keeps_its_cap_share_R52_R47(
    kube: Cluster, operator: OperatorProcess
) -> None:
    namespace = operator.namespace
    with stand_in(kube, namespace, *LEAVING), stand_in(kube, namespace, *STAYING):
        kube.namespace(PROVIDER, f"poddrain-{PID}")
        kube.namespace(CONSUMER, f"poddrain-{PID}")
        service_name = publish_service(kube, PROVIDER, "web")
        kube.apply("endpoint.yaml", name="web", namespace=CONSUMER, service_name=service_name)
        status = wait_for("web Accepted", phase_is(kube, "vpce", CONSUMER, "web", "Accepted"))
        endpoint_id = status["endpointId"]
        both = {LEAVING[0], STAYING[0]}
        wait_for("both gateways in the slice", lambda: slice_addresses(kube, CONSUMER, "web") == both)
        wait_for("the cap shared by two", lambda: route_cap(kube, operator, endpoint_id) == CAP // 2)

        pod = LEAVING[1]
        kube.kubectl("patch", "pod", pod, "-n", namespace, "--type=merge",
                     "-p", json.dumps({"metadata": {"finalizers": [HOLD]}}))  # fmt: skip
        try:
            kube.kubectl("delete", "pod", pod, "-n", namespace, "--wait=false")
            wait_for(
                "the terminating gateway out of the slice",
                lambda: slice_addresses(kube, CONSUMER, "web") == {STAYING[0]},
                timeout=10,
            )
            assert route_cap(kube, operator, endpoint_id) == CAP // 2, "a drain rewrites no route"
            assert kube.status("vpce", CONSUMER, "web")["phase"] == "Accepted"
            distrusted = [
                event
                for event in kube.get("events", namespace)["items"]
                if event["involvedObject"]["name"] == f"vpcep-gateway-{pod}" and event["type"] == "Warning"
            ]
            assert distrusted == [], "a terminating gateway is draining, not distrusted"
        finally:
            kube.kubectl("patch", "pod", pod, "-n", namespace, "--type=merge",
                         "-p", json.dumps({"metadata": {"finalizers": None}}), check=False)  # fmt: skip
        # The pod is gone: the remaining gateway carries the whole cap.
        wait_for("the cap on one gateway", lambda: route_cap(kube, operator, endpoint_id) == CAP, timeout=15)
        assert slice_addresses(kube, CONSUMER, "web") == {STAYING[0]}

"""The operator believes a gateway status only when a Ready pod of the gateway Deployment reports it, at that
pod's IP (R47): a hostile writer of status ConfigMaps (a compromised gateway, anyone with ConfigMap rights in
the operator namespace) cannot put an address of its choosing into consumers' EndpointSlices. And a gateway
pod kubelet reports not Ready leaves the slices, whatever its heartbeat says (R52).

The real operator with `verifyGatewayPods` on (as the chart sets it); the gateways are stand-ins
(helpers.StandInGateway) and their pods are made by helpers.gateway_pod, standing in for the Deployment
controller and kubelet, which the testbed does not run.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

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
    set_gateway_pod_ready,
    slice_addresses,
    wait_for,
)

pytestmark = pytest.mark.cluster
PID = os.getpid()
PROVIDER, CONSUMER = f"gwtrust-prov-{PID}", f"gwtrust-cons-{PID}"
REAL_IP = "10.244.0.20"
FORGED = ("10.66.0.1", "10.66.0.2", "10.66.0.3")


@pytest.fixture(scope="module")
def operator(kube: Cluster, operator_namespace: str) -> Iterator[OperatorProcess]:
    process = start_operator(
        kube, operator_namespace, config={**TRUSTED_GATEWAYS, "gatewayHeartbeatTimeoutSeconds": 5}
    )
    try:
        yield process
        delete_namespaces(kube, PROVIDER, CONSUMER, operator_namespace)
    finally:
        process.stop()


@pytest.fixture(scope="module")
def gateway(kube: Cluster, operator: OperatorProcess) -> Iterator[StandInGateway]:
    """Overrides conftest's: this one has a gateway pod behind it."""
    with gateway_pod(kube, operator.namespace, f"gw-real-{PID}", REAL_IP):
        stand_in = StandInGateway(kube, operator.namespace, f"gw-real-{PID}", REAL_IP)
        stand_in.start()
        yield stand_in
        stand_in.stop()


@pytest.fixture(scope="module")
def accepted(kube: Cluster, gateway: StandInGateway) -> dict[str, Any]:
    kube.namespace(PROVIDER, f"gwtrust-{PID}")
    kube.namespace(CONSUMER, f"gwtrust-{PID}")
    service_name = publish_service(kube, PROVIDER, "web")
    kube.apply("endpoint.yaml", name="web", namespace=CONSUMER, service_name=service_name)
    return wait_for("web Accepted", phase_is(kube, "vpce", CONSUMER, "web", "Accepted"))


def forged_status(kube: Cluster, namespace: str, object_name: str, gateway: str, address: str) -> None:
    """A status ConfigMap as a hostile writer would put it, fresh and claiming every route applied."""
    status = {
        "gateway": gateway,
        "address": address,
        "heartbeat": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "appliedResourceVersion": 10**12,
    }
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": object_name, "labels": {"vpcep.io/gateway-status": "true"}},
        "data": {"status.json": json.dumps(status)},
    }
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))


def test_forged_gateway_statuses_never_reach_an_endpoint_slice_R47(
    kube: Cluster, operator: OperatorProcess, accepted: dict[str, Any]
) -> None:
    namespace = operator.namespace
    assert wait_for(
        "the real gateway in the slice", lambda: slice_addresses(kube, CONSUMER, "web") == {REAL_IP}
    )
    # 1. a status for a pod that does not exist
    forged_status(kube, namespace, f"vpcep-gateway-ghost-{PID}", f"ghost-{PID}", FORGED[0])
    # 2. a real gateway pod's status claiming an address that is not its pod's IP
    with gateway_pod(kube, namespace, f"gw-thief-{PID}", "10.244.0.21"):
        forged_status(kube, namespace, f"vpcep-gateway-gw-thief-{PID}", f"gw-thief-{PID}", FORGED[1])
        # 3. a status object speaking for another gateway pod (not named after it)
        forged_status(kube, namespace, f"vpcep-gateway-impostor-{PID}", f"gw-real-{PID}", FORGED[2])
        reasons = wait_for(
            "an Event for each forged status",
            lambda: (
                found
                if len(
                    found := {
                        event["reason"]
                        for event in kube.get("events", namespace)["items"]
                        if event["involvedObject"]["kind"] == "ConfigMap"
                    }
                    & {"GatewayPodNotFound", "AddressNotThePodIP", "StatusNameMismatch"}
                )
                == 3
                else None
            ),
            timeout=20,
        )
        assert reasons
        deadline = time.monotonic() + 8  # longer than the operator's fleet check (2 s) and a report round
        while time.monotonic() < deadline:
            addresses = slice_addresses(kube, CONSUMER, "web")
            assert not addresses & set(FORGED), addresses
            assert addresses == {REAL_IP}
            time.sleep(0.5)
    assert kube.status("vpce", CONSUMER, "web")["phase"] == "Accepted"
    log = operator.log()
    assert f"vpcep-gateway-ghost-{PID} not believed (GatewayPodNotFound)" in log
    assert f"vpcep-gateway-gw-thief-{PID} not believed (AddressNotThePodIP)" in log


def test_a_gateway_pod_that_is_not_ready_leaves_the_slices_whatever_it_reports_R52(
    kube: Cluster, operator: OperatorProcess, gateway: StandInGateway, accepted: dict[str, Any]
) -> None:
    """Its heartbeat keeps coming; kubelet says its HAProxy does not answer: its address goes."""
    set_gateway_pod_ready(kube, operator.namespace, gateway.name, REAL_IP, False)
    try:
        wait_for(
            "the not-Ready gateway out of the slice",
            lambda: not slice_addresses(kube, CONSUMER, "web"),
            timeout=20,
        )
    finally:
        set_gateway_pod_ready(kube, operator.namespace, gateway.name, REAL_IP, True)
    wait_for("back once Ready", lambda: slice_addresses(kube, CONSUMER, "web") == {REAL_IP}, timeout=20)
    wait_for("web Accepted again", phase_is(kube, "vpce", CONSUMER, "web", "Accepted"))

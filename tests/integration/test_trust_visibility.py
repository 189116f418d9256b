"""R46 as the tenants would look: every object and Event a tenant can read in its own namespace is read, and
no foreign name or address may appear -- the provider never sees the consumer's namespace or Endpoint name,
the consumer never sees the backend's address (not even when a gateway reports it unreachable, quoting it).

The provider's view is taken while the things that talk about consumers happen: a connection pending, then
accepted, a delete refused and held because of it. The consumer's view while a gateway reports the backend
down, in the gateway agent's own words (vpcep.gateway.health formats the report from HAProxy's CSV).
The operator runs as a real process with its webhook (its answers count too)."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from integration.conftest import delete_namespaces, start_operator
from integration.helpers import Cluster, OperatorProcess, StandInGateway, phase_is, wait_for
from vpcep.gateway.health import unhealthy_backends

pytestmark = pytest.mark.cluster
PID = os.getpid()
PROVIDER = f"vis-prov-{PID}"
CONSUMER = f"vis-cons-{PID}"
ENDPOINT = f"secret-endpoint-{PID}"
PROVIDER_ACCOUNT, CONSUMER_ACCOUNT = f"vis-p-{PID}", f"vis-c-{PID}"
BACKEND_IP = "10.244.77.13"
# Everything a tenant with the built-in `view` role may read in its namespace, and the Events.
READABLE = (
    "endpointservices.vpcep.io,endpoints.vpcep.io,whitelists.vpcep.io,endpointconnections.vpcep.io,"
    "services,endpointslices,networkpolicies,configmaps,pods,events"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def operator(
    kube: Cluster, operator_namespace: str, loopback_certificate: tuple[pathlib.Path, pathlib.Path]
) -> Iterator[OperatorProcess]:
    cert, key = loopback_certificate
    configuration = f"vpcep-vis-{PID}"
    process = start_operator(
        kube, operator_namespace, "--webhook-managed", configuration, "--webhook-address", "127.0.0.1",
        "--webhook-host", "127.0.0.1", "--webhook-port", str(_free_port()), "--webhook-cert", str(cert),
        "--webhook-key", str(key), "--webhook-ca", str(cert),
    )  # fmt: skip
    try:
        wait_for("the webhook", lambda: kube.get("validatingwebhookconfiguration", None, configuration))
        yield process
        delete_namespaces(kube, PROVIDER, CONSUMER, operator_namespace)
    finally:
        process.stop()
        kube.kubectl(
            "delete", "validatingwebhookconfiguration", configuration, "--ignore-not-found", check=False
        )


@pytest.fixture(scope="module")
def scene(kube: Cluster, operator: OperatorProcess, gateway: StandInGateway) -> None:
    kube.namespace(PROVIDER, PROVIDER_ACCOUNT)
    kube.namespace(CONSUMER, CONSUMER_ACCOUNT)


def everything_readable(kube: Cluster, namespace: str) -> str:
    """All a tenant can read in its namespace, as one text (objects, statuses, conditions, Events)."""
    return kube.kubectl("get", READABLE, "-n", namespace, "-o", "json").stdout


def foreign_in(text: str, *secrets: str) -> list[str]:
    return [secret for secret in secrets if secret in text]


class SickGateway:
    """A second gateway status, reporting the endpoint's backend down as the real agent words it."""

    def __init__(self, kube: Cluster, namespace: str, endpoint_id: str, gateway_port: int) -> None:
        self.kube, self.namespace = kube, namespace
        csv = (
            "# pxname,svname,status,addr,check_desc\n"
            f"ep_{endpoint_id}_{gateway_port},s0,DOWN,{BACKEND_IP}:8080,Layer4 connection problem\n"
        )
        self.health = [h.model_dump() for h in unhealthy_backends(csv)]
        assert BACKEND_IP in json.dumps(self.health), "the agent's report names the backend address"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SickGateway:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.kube.delete("configmap", self.namespace, f"vpcep-gateway-sick-{PID}")

    def _run(self) -> None:
        while not self._stop.is_set():
            status = {
                "gateway": f"sick-{PID}",
                "address": "10.244.0.11",
                "heartbeat": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "appliedResourceVersion": 10**12,
                "unhealthyBackends": self.health,
            }
            manifest = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": f"vpcep-gateway-sick-{PID}",
                    "namespace": self.namespace,
                    "labels": {"vpcep.io/gateway-status": "true"},
                },
                "data": {"status.json": json.dumps(status)},
            }
            self.kube.kubectl(
                "apply", "--server-side", "--field-manager=sick-gateway", "-f", "-",
                input=json.dumps(manifest), check=False,
            )  # fmt: skip
            self._stop.wait(0.5)


def _publish(kube: Cluster) -> str:
    kube.apply("backend-pod.yaml", name="db", namespace=PROVIDER)
    kube.kubectl(
        "patch", "pod", "db", "-n", PROVIDER, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"podIP": BACKEND_IP, "phase": "Running"}}),
    )  # fmt: skip
    kube.apply("pod-endpoint-service.yaml", name="db", namespace=PROVIDER, backend="db", server_port="8080")
    kube.kubectl(
        "patch", "vpces", "db", "-n", PROVIDER, "--type=merge", "-p", '{"spec":{"approvalRequired":true}}'
    )
    kube.apply(
        "whitelist.yaml", name="db-partners", namespace=PROVIDER, service="db",
        accounts=f"['iam:domain::{CONSUMER_ACCOUNT}']",
    )  # fmt: skip
    return str(wait_for("db Available", phase_is(kube, "vpces", PROVIDER, "db", "Available"))["serviceName"])


def test_neither_side_reads_the_others_names_or_addresses_R46(
    kube: Cluster, scene: None, operator: OperatorProcess
) -> None:
    service_name = _publish(kube)
    kube.apply("endpoint.yaml", name=ENDPOINT, namespace=CONSUMER, service_name=service_name)
    pending = wait_for("PendingAcceptance", phase_is(kube, "vpce", CONSUMER, ENDPOINT, "PendingAcceptance"))
    endpoint_id = pending["endpointId"]
    wait_for("the connection", lambda: kube.get("vpcec", PROVIDER, endpoint_id))
    time.sleep(1.0)  # Events are posted from a queue
    seen_by_provider = everything_readable(kube, PROVIDER)
    assert foreign_in(seen_by_provider, CONSUMER, ENDPOINT) == []
    # The reader is not blind: the provider does read the connection (by endpoint id) and its own Pod.
    assert endpoint_id in seen_by_provider and BACKEND_IP in seen_by_provider

    kube.kubectl(
        "patch", "vpcec", endpoint_id, "-n", PROVIDER, "--type=merge", "-p", '{"spec":{"decision":"Accept"}}'
    )
    accepted = wait_for("Accepted", phase_is(kube, "vpce", CONSUMER, ENDPOINT, "Accepted"))

    # The provider tries to delete the service: the webhook's answer and the held status name the endpoint.
    refusal = kube.delete("vpces", PROVIDER, "db")
    assert refusal.returncode != 0 and endpoint_id in refusal.stderr
    assert foreign_in(refusal.stderr, CONSUMER, ENDPOINT) == []

    # The consumer, while a gateway reports the backend down with its address.
    with SickGateway(kube, operator.namespace, endpoint_id, accepted["gatewayPorts"][0]["gatewayPort"]):
        reported = wait_for(
            "BackendReachable False on the Endpoint",
            lambda: (
                (c := {x["type"]: x for x in kube.status("vpce", CONSUMER, ENDPOINT).get("conditions", [])})
                and c.get("BackendReachable", {}).get("status") == "False"
                and c["BackendReachable"]
            ),
        )
        assert "unreachable" in reported["message"]
        time.sleep(1.0)
        seen_by_consumer = everything_readable(kube, CONSUMER)
        assert foreign_in(seen_by_consumer, BACKEND_IP) == []
        assert ENDPOINT in seen_by_consumer and "unreachable" in seen_by_consumer

    time.sleep(1.0)
    assert foreign_in(everything_readable(kube, PROVIDER), CONSUMER, ENDPOINT) == []
    kube.delete("vpce", CONSUMER, ENDPOINT, wait=True)

"""SPEC §6 reliability: SIGKILL the operator in the middle of a burst of creates and deletes, restart it,
and the cluster converges with nothing orphaned and no marker id or gateway port handed out twice."""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator

import pytest

from integration.conftest import delete_namespaces
from integration.helpers import (
    Cluster,
    OperatorProcess,
    StandInGateway,
    phase_is,
    publish_services,
    render,
    wait_for,
)

pytestmark = pytest.mark.cluster
PID = os.getpid()
PROVIDER, CONSUMER = f"crash-prov-{PID}", f"crash-cons-{PID}"
BURST = 50
DELETED = 20
STARTED = 5  # endpoints with a status before the kill: the operator is mid-burst


@pytest.fixture(scope="module")
def namespaces(kube: Cluster, operator: OperatorProcess, gateway: StandInGateway) -> Iterator[None]:
    kube.namespace(PROVIDER, f"crash-{PID}")
    kube.namespace(CONSUMER, f"crash-{PID}")
    yield
    delete_namespaces(kube, PROVIDER, CONSUMER)


def items(kube: Cluster, kind: str, namespace: str, selector: str | None = None) -> list[dict]:
    return list((kube.get(kind, namespace, selector=selector) or {"items": []})["items"])


def test_sigkill_during_a_burst_converges_without_orphans(
    kube: Cluster, operator: OperatorProcess, namespaces: None
) -> None:
    services = publish_services(kube, PROVIDER, ["alpha", "beta"])

    names = [f"burst-{n:02d}" for n in range(BURST)]
    kube.apply_text(
        "\n---\n".join(
            render(
                "endpoint.yaml",
                name=name,
                namespace=CONSUMER,
                service_name=services["alpha" if n % 2 else "beta"],
            )
            for n, name in enumerate(names)
        )
    )
    wait_for(  # the operator is at work on the burst: some endpoints already have a status
        f"{STARTED} endpoints with a status",
        lambda: len([e for e in items(kube, "vpce", CONSUMER) if e.get("status")]) >= STARTED,
        interval=0.05,
    )
    removed = names[:DELETED]
    kube.kubectl("delete", "vpce", "-n", CONSUMER, "--wait=false", *removed)
    operator.kill()
    assert not operator.alive()
    phases = {
        e["metadata"]["name"]: (e.get("status") or {}).get("phase") for e in items(kube, "vpce", CONSUMER)
    }
    kept = names[DELETED:]
    not_accepted = [name for name in kept if phases.get(name) != "Accepted"]
    not_finalized = [name for name in removed if name in phases]
    assert not_accepted or not_finalized, f"the kill came after the burst was done, tested nothing: {phases}"
    print(
        f"killed with {len(not_accepted)} endpoints not yet Accepted, {len(not_finalized)} not yet finalized"
    )
    operator.restart()

    for name in kept:
        wait_for(f"{name} Accepted", phase_is(kube, "vpce", CONSUMER, name, "Accepted"), timeout=60)
    wait_for(
        "the deleted endpoints to be gone",
        lambda: not {e["metadata"]["name"] for e in items(kube, "vpce", CONSUMER)} & set(removed),
        timeout=60,
    )

    endpoints = {e["metadata"]["name"]: e["status"] for e in items(kube, "vpce", CONSUMER)}
    assert set(endpoints) == set(kept)
    ids = {status["endpointId"] for status in endpoints.values()}

    def orphans() -> list[str]:
        managed = "app.kubernetes.io/managed-by=vpcep-operator"
        found = {
            "Services": {s["metadata"]["name"] for s in items(kube, "services", CONSUMER, managed)}
            ^ {f"vpce-{name}" for name in kept},
            "EndpointSlices": {
                s["metadata"]["name"] for s in items(kube, "endpointslices", CONSUMER, managed)
            }
            ^ {f"vpce-{name}-gw" for name in kept},
            "EndpointConnections": {c["metadata"]["name"] for c in items(kube, "vpcec", PROVIDER)} ^ ids,
            "routes": {
                r["metadata"]["labels"]["vpcep.io/endpoint-id"]
                for r in items(kube, "configmaps", operator.namespace, "vpcep.io/route=true")
            }
            ^ ids,
        }
        return [f"{kind}: {sorted(extra)}" for kind, extra in found.items() if extra]

    try:
        wait_for(
            "no orphan Services, EndpointSlices, EndpointConnections or routes", lambda: not orphans(), 60
        )
    except AssertionError:
        assert orphans() == [], "objects without (or missing for) a live endpoint"
        raise

    by_service = collections.defaultdict(list)
    for status in endpoints.values():
        by_service[status["serviceName"]].append(status["markerId"])
    for service_name, markers in by_service.items():
        assert len(markers) == len(set(markers)), (
            f"duplicate marker ids for {service_name}: {sorted(markers)}"
        )
    ports = [p["gatewayPort"] for status in endpoints.values() for p in status["gatewayPorts"]]
    assert len(ports) == len(set(ports)), "a gateway port was handed out twice"

"""Endpoint lifecycle on the test control plane, operator as a real process, webhook off (every rule enforced
by the reconcilers). Gateway status comes from a stand-in (control-plane logic only; see StandInGateway)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from integration.conftest import delete_namespaces
from integration.helpers import Cluster, OperatorProcess, StandInGateway, phase_is, publish_service, wait_for

pytestmark = pytest.mark.cluster
PID = os.getpid()


class Tenants:
    """Namespaces of this module: provider and consumer of the same account, and one of another account."""

    provider = f"it-prov-{PID}"
    same_account = f"it-same-{PID}"
    other_account = f"it-other-{PID}"
    account = f"acme-{PID}"
    other = f"globex-{PID}"


@pytest.fixture(scope="module")
def tenants(kube: Cluster, operator: OperatorProcess, gateway: StandInGateway) -> Iterator[type[Tenants]]:
    kube.namespace(Tenants.provider, Tenants.account)
    kube.namespace(Tenants.same_account, Tenants.account)
    kube.namespace(Tenants.other_account, Tenants.other)
    yield Tenants
    delete_namespaces(kube, Tenants.provider, Tenants.same_account, Tenants.other_account)


def publish(kube: Cluster, name: str, approval: bool = False, namespace: str = Tenants.provider) -> str:
    return publish_service(kube, namespace, name, approval)


def connect(kube: Cluster, name: str, namespace: str, service_name: str) -> None:
    kube.apply("endpoint.yaml", name=name, namespace=namespace, service_name=service_name)


def wait_phase(kube: Cluster, namespace: str, name: str, *phases: str, timeout: float = 30) -> dict:
    return dict(
        wait_for(
            f"Endpoint {namespace}/{name} in {phases}",
            phase_is(kube, "vpce", namespace, name, *phases),
            timeout=timeout,
        )
    )


def connection_of(kube: Cluster, endpoint_status: dict, provider: str) -> dict:
    body = kube.get("vpcec", provider, endpoint_status["endpointId"])
    assert body is not None, "the operator creates an EndpointConnection in the provider namespace (R10)"
    return dict(body)


def test_same_account_endpoint_is_accepted_with_node_ip_and_dns_name(
    kube: Cluster, tenants: type[Tenants], operator: OperatorProcess
) -> None:
    """(a) R10, R12 own account, R18: Accepted with the ClusterIP of an owned Service and its DNS name."""
    service_name = publish(kube, "web")
    assert service_name.startswith("local-1.web.")
    connect(kube, "web", tenants.same_account, service_name)
    status = wait_phase(kube, tenants.same_account, "web", "Accepted")

    service = kube.get("service", tenants.same_account, "vpce-web")
    assert status["nodeIP"] == service["spec"]["clusterIP"]
    assert status["dnsName"] == f"vpce-web.{tenants.same_account}.svc.cluster.local"
    assert [p["port"] for p in service["spec"]["ports"]] == [80]
    assert service["metadata"]["ownerReferences"][0]["kind"] == "Endpoint"
    gateway_port = status["gatewayPorts"][0]["gatewayPort"]
    slices = kube.get("endpointslices", tenants.same_account, selector="kubernetes.io/service-name=vpce-web")
    assert [e["addresses"] for e in slices["items"][0]["endpoints"]] == [["10.244.0.10"]]
    assert slices["items"][0]["ports"][0]["port"] == gateway_port
    assert isinstance(status["markerId"], int) and status["markerId"] > 0
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"

    route = kube.get("configmap", operator.namespace, f"vpcep-route-{status['endpointId']}")
    assert route is not None and "route.json" in route["data"]
    connection = connection_of(kube, status, tenants.provider)
    wait_for(
        "the connection to mirror Accepted",
        lambda: kube.status("vpcec", tenants.provider, status["endpointId"]).get("state") == "Accepted",
    )
    assert connection["metadata"]["labels"]["vpcep.io/endpoint-id"] == status["endpointId"]
    # R10: accepted without a decision (approval off): the table reads Accept, by ApprovalNotRequired, never
    # "Pending" next to Accepted; spec.decision stays the provider's own field (the operator never writes it).
    table = kube.kubectl("get", "vpcec", "-n", tenants.provider, status["endpointId"]).stdout.split("\n")
    row = dict(zip(table[0].split(), table[1].split(), strict=True))
    assert (row["STATE"], row["DECISION"], row["DECIDED-BY"]) == ("Accepted", "Accept", "ApprovalNotRequired")
    assert kube.get("vpcec", tenants.provider, status["endpointId"])["spec"]["decision"] == "Pending"

    # Events and the quota view come from their own workers after the phase: within seconds, not before it
    # (under load, a fresh-machine run read them a moment too early).
    def endpoint_event_reasons() -> set[str]:
        events = kube.get("events", tenants.same_account)
        return {e["reason"] for e in events["items"] if e["involvedObject"].get("name") == "web"}

    wait_for("R39: an Accepted Event for the endpoint", lambda: "Accepted" in endpoint_event_reasons())
    quota = wait_for(
        "R41: the namespace's quota view", lambda: kube.get("configmap", tenants.same_account, "vpcep-quota")
    )
    assert quota["data"]["account"] == tenants.account  # R41


def test_other_account_needs_a_whitelist(kube: Cluster, tenants: type[Tenants]) -> None:
    """(b) R12, R13: refused until a Whitelist lists the consumer's account, then Accepted by itself."""
    service_name = publish(kube, "api")
    connect(kube, "api", tenants.other_account, service_name)
    status = wait_phase(kube, tenants.other_account, "api", "Failed")
    assert status["reason"] == "NotPermitted"
    assert f"iam:domain::{tenants.other}" in status["message"]

    kube.apply(
        "whitelist.yaml",
        name="api-partners",
        namespace=tenants.provider,
        service="api",
        accounts=f"['iam:domain::{tenants.other}']",
    )
    wait_phase(kube, tenants.other_account, "api", "Accepted")
    assert kube.status("vpcewl", tenants.provider, "api-partners").get("phase") == "Active"


def test_whitelist_removal_and_wildcard(kube: Cluster, tenants: type[Tenants]) -> None:
    """(b) R14: removing the account stops new endpoints, established ones keep working; `*` permits
    anyone.
    """
    service_name = publish(kube, "feed")
    kube.apply(
        "whitelist.yaml",
        name="feed-partners",
        namespace=tenants.provider,
        service="feed",
        accounts=f"['iam:domain::{tenants.other}']",
    )
    connect(kube, "feed-1", tenants.other_account, service_name)
    wait_phase(kube, tenants.other_account, "feed-1", "Accepted")

    kube.apply(
        "whitelist.yaml", name="feed-partners", namespace=tenants.provider, service="feed", accounts="[]"
    )
    connect(kube, "feed-2", tenants.other_account, service_name)
    assert wait_phase(kube, tenants.other_account, "feed-2", "Failed")["reason"] == "NotPermitted"
    assert kube.status("vpce", tenants.other_account, "feed-1")["phase"] == "Accepted"  # R14 choice

    kube.apply(
        "whitelist.yaml", name="feed-partners", namespace=tenants.provider, service="feed", accounts="['*']"
    )
    wait_phase(kube, tenants.other_account, "feed-2", "Accepted")


def test_approval_accept_reject_and_turning_approval_off(kube: Cluster, tenants: type[Tenants]) -> None:
    """(c) R10, R11: PendingAcceptance until the provider decides; Reject tears down; approval off accepts."""
    service_name = publish(kube, "db", approval=True)
    for name in ("db-yes", "db-no", "db-later"):
        connect(kube, name, tenants.same_account, service_name)
    statuses = {
        n: wait_phase(kube, tenants.same_account, n, "PendingAcceptance")
        for n in ("db-yes", "db-no", "db-later")
    }
    for status in statuses.values():
        assert status.get("nodeIP") is None
        connection = connection_of(kube, status, tenants.provider)
        assert connection["spec"]["decision"] == "Pending"

    kube.apply(
        "connection-decision.yaml",
        name=statuses["db-yes"]["endpointId"],
        namespace=tenants.provider,
        decision="Accept",
    )
    accepted = wait_phase(kube, tenants.same_account, "db-yes", "Accepted")
    assert accepted["nodeIP"]
    decided = wait_for(
        "the connection to show the provider's Accept",
        lambda: (
            (c := kube.status("vpcec", tenants.provider, accepted["endpointId"])).get("state") == "Accepted"
            and c
        ),
    )
    assert (decided["decision"], decided["decidedBy"]) == ("Accept", "Provider")
    pending = kube.status("vpcec", tenants.provider, statuses["db-later"]["endpointId"])
    assert (pending["decision"], pending.get("decidedBy")) == ("Pending", None)

    kube.apply(
        "connection-decision.yaml",
        name=statuses["db-no"]["endpointId"],
        namespace=tenants.provider,
        decision="Reject",
    )
    rejected = wait_phase(kube, tenants.same_account, "db-no", "Rejected")
    assert rejected.get("nodeIP") is None
    assert kube.get("service", tenants.same_account, "vpce-db-no") is None

    # R11: rejecting an accepted endpoint tears its data path down, and its status no longer shows it.
    kube.apply(
        "connection-decision.yaml", name=accepted["endpointId"], namespace=tenants.provider, decision="Reject"
    )
    taken_back = wait_phase(kube, tenants.same_account, "db-yes", "Rejected")
    assert (taken_back.get("nodeIP"), taken_back.get("dnsName"), taken_back.get("gatewayPorts") or []) == (
        None,
        None,
        [],
    ), taken_back
    # The provider takes a Reject back: the connection waits again, and no longer says who decided.
    kube.apply(
        "connection-decision.yaml",
        name=accepted["endpointId"],
        namespace=tenants.provider,
        decision="Pending",
    )
    wait_phase(kube, tenants.same_account, "db-yes", "PendingAcceptance")
    again = wait_for(
        "the connection to wait again",
        lambda: (
            (c := kube.status("vpcec", tenants.provider, accepted["endpointId"])).get("decision") == "Pending"
            and c
        ),
    )
    assert again.get("decidedBy") is None, again
    kube.apply(
        "connection-decision.yaml", name=accepted["endpointId"], namespace=tenants.provider, decision="Reject"
    )
    wait_phase(kube, tenants.same_account, "db-yes", "Rejected")

    kube.apply(
        "endpoint-service.yaml", name="db", namespace=tenants.provider, backend="db-backend", approval="false"
    )
    wait_phase(kube, tenants.same_account, "db-later", "Accepted")
    assert kube.status("vpce", tenants.same_account, "db-no")["phase"] == "Rejected"  # Reject still wins
    assert kube.status("vpce", tenants.same_account, "db-yes")["phase"] == "Rejected"


def test_deleting_a_service_waits_for_its_accepted_endpoints(
    kube: Cluster, tenants: type[Tenants], operator: OperatorProcess
) -> None:
    """(d) R7 with the webhook off: the finalizer holds the service and says why; pending ones fail (R7);
    deleting the accepted endpoint (R23) lets the service go."""
    service_name = publish(kube, "cache", approval=True)
    kube.apply(
        "whitelist.yaml", name="cache-all", namespace=tenants.provider, service="cache", accounts="['*']"
    )
    kube.apply(
        "endpoint-service.yaml",
        name="cache",
        namespace=tenants.provider,
        backend="cache-backend",
        approval="true",
    )
    connect(kube, "cache-live", tenants.same_account, service_name)
    connect(kube, "cache-waiting", tenants.other_account, service_name)
    waiting = wait_phase(kube, tenants.other_account, "cache-waiting", "PendingAcceptance")
    live = wait_phase(kube, tenants.same_account, "cache-live", "PendingAcceptance")
    kube.apply(
        "connection-decision.yaml", name=live["endpointId"], namespace=tenants.provider, decision="Accept"
    )
    live = wait_phase(kube, tenants.same_account, "cache-live", "Accepted")

    kube.delete("vpces", tenants.provider, "cache")
    held = wait_for(
        "the service to report what holds it",
        lambda: (
            (s := kube.status("vpces", tenants.provider, "cache")).get("reason") == "HasActiveEndpoints" and s
        ),
    )
    assert held["phase"] == "Deleting"
    # R46: the provider reads endpoint ids and accounts, never the consumer's namespace or Endpoint name.
    assert f"{live['endpointId']} (account {tenants.account}" in held["message"]
    assert tenants.same_account not in held["message"] and "cache-live" not in held["message"]
    failed = wait_phase(kube, tenants.other_account, "cache-waiting", "Failed")
    assert failed["reason"] == "ServiceDeleted"
    still = wait_for(
        "the accepted endpoint to hear that its service is being deleted",
        lambda: (
            (s := kube.status("vpce", tenants.same_account, "cache-live"))
            and "delet" in (s.get("message") or "").lower()
            and s
        ),
    )
    assert still["phase"] == "Accepted", f"the service is held so its endpoint keeps working (R7): {still}"
    assert "until this Endpoint is deleted" in still["message"]
    assert still.get("nodeIP") == live["nodeIP"], "an established endpoint keeps working (R7)"
    held = kube.status("vpces", tenants.provider, "cache")
    assert held["reason"] == "HasActiveEndpoints"
    assert f"{live['endpointId']} (account {tenants.account}, Accepted)" in held["message"], held["message"]
    assert kube.get("service", tenants.same_account, "vpce-cache-live") is not None

    kube.delete("vpce", tenants.same_account, "cache-live")
    wait_for(
        "the service to go once its endpoint is gone",
        lambda: kube.get("vpces", tenants.provider, "cache") is None,
    )
    assert kube.get("service", tenants.same_account, "vpce-cache-live") is None  # R23
    assert kube.get("configmap", operator.namespace, f"vpcep-route-{live['endpointId']}") is None
    assert kube.get("vpcec", tenants.provider, live["endpointId"]) is None
    assert kube.get("vpcec", tenants.provider, waiting["endpointId"]) is None


def test_marker_ids_count_up_in_creation_order_and_are_never_reused(
    kube: Cluster, tenants: type[Tenants], operator: OperatorProcess
) -> None:
    """(e) R33 marker ids ("报文标识"): endpoints created one after another get 1, 2, 3; a deleted endpoint's
    id is not handed out again (docs/decisions.md: monotonic per service, never reused)."""
    service_name = publish(kube, "ledger")
    markers = {}
    for name in ("ledger-a", "ledger-b", "ledger-c"):
        connect(kube, name, tenants.same_account, service_name)
        status = wait_phase(kube, tenants.same_account, name, "Accepted")
        markers[name] = status["markerId"]
        assert connection_of(kube, status, tenants.provider)["status"]["markerId"] == status["markerId"]
    assert markers == {"ledger-a": 1, "ledger-b": 2, "ledger-c": 3}

    kube.delete("vpce", tenants.same_account, "ledger-c")
    wait_for("ledger-c to go", lambda: kube.get("vpce", tenants.same_account, "ledger-c") is None)
    connect(kube, "ledger-d", tenants.same_account, service_name)
    assert wait_phase(kube, tenants.same_account, "ledger-d", "Accepted")["markerId"] == 4

    # Across a restart too: the operator's ledger is gone, the service's status.lastMarkerId remembers.
    kube.delete("vpce", tenants.same_account, "ledger-d")
    wait_for("ledger-d to go", lambda: kube.get("vpce", tenants.same_account, "ledger-d") is None)
    operator.kill()
    operator.restart()
    connect(kube, "ledger-e", tenants.same_account, service_name)
    assert wait_phase(kube, tenants.same_account, "ledger-e", "Accepted", timeout=60)["markerId"] == 5

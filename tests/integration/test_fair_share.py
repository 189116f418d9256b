"""R49 with the webhook off, on the real API server: a hostile tenant tries to take more than its share of the
gateway ports or to keep more Whitelists than its quota; the reconcilers refuse it with the limit and the Helm
value that raises it, hold it waiting, and let it in by themselves when the account frees room (R41: the quota
view shows the use against each limit)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from integration.conftest import delete_namespaces, start_operator
from integration.helpers import Cluster, OperatorProcess, StandInGateway, phase_is, wait_for

pytestmark = pytest.mark.cluster
PID = os.getpid()
PROVIDER, GREEDY, GREEDY_TOO, NEIGHBOUR = (
    f"fs-prov-{PID}",
    f"fs-greedy-{PID}",
    f"fs-greedy2-{PID}",
    f"fs-nb-{PID}",
)
PROVIDER_ACCOUNT, GREEDY_ACCOUNT, NEIGHBOUR_ACCOUNT = f"fs-p-{PID}", f"fs-g-{PID}", f"fs-n-{PID}"
GATEWAY_PORTS, WHITELISTS = 3, 2

TWO_PORT_SERVICE = """
apiVersion: vpcep.io/v1alpha1
kind: EndpointService
metadata: {name: NAME, namespace: NS}
spec:
  backend: {kind: Service, name: fs-backend}
  ports:
  - {protocol: TCP, serverPort: 8080, clientPort: 80}
  - {protocol: TCP, serverPort: 8443, clientPort: 443}
  approvalRequired: false
"""


@pytest.fixture(scope="module")
def operator(kube: Cluster, operator_namespace: str) -> Iterator[OperatorProcess]:
    process = start_operator(
        kube,
        operator_namespace,
        config={"quotas": {"default": {"gatewayPorts": GATEWAY_PORTS, "whitelists": WHITELISTS}}},
    )
    try:
        yield process
        delete_namespaces(kube, PROVIDER, GREEDY, GREEDY_TOO, NEIGHBOUR, operator_namespace)
    finally:
        process.stop()


@pytest.fixture(scope="module")
def services(kube: Cluster, operator: OperatorProcess, gateway: StandInGateway) -> dict[str, str]:
    """Published names: `two` (2 port mappings) and `one` (1), both without approval."""
    kube.namespace(PROVIDER, PROVIDER_ACCOUNT)
    kube.namespace(GREEDY, GREEDY_ACCOUNT)
    kube.namespace(GREEDY_TOO, GREEDY_ACCOUNT)
    kube.namespace(NEIGHBOUR, NEIGHBOUR_ACCOUNT)
    kube.apply("backend-service.yaml", name="fs-backend", namespace=PROVIDER)
    kube.apply_text(TWO_PORT_SERVICE.replace("NAME", "two").replace("NS", PROVIDER))
    kube.apply(
        "endpoint-service.yaml", name="one", namespace=PROVIDER, backend="fs-backend", approval="false"
    )
    for service in ("two", "one"):
        kube.apply(
            "whitelist.yaml",
            name=f"consumers-{service}",
            namespace=PROVIDER,
            service=service,
            accounts=f'["iam:domain::{GREEDY_ACCOUNT}", "iam:domain::{NEIGHBOUR_ACCOUNT}"]',
        )
    names = {}
    for name in ("two", "one"):
        names[name] = wait_for(f"{name} Available", phase_is(kube, "vpces", PROVIDER, name, "Available"))[
            "serviceName"
        ]
    return names


def quota_view(kube: Cluster, namespace: str) -> dict[str, str]:
    return dict((kube.get("configmap", namespace, "vpcep-quota") or {}).get("data") or {})


def test_an_account_cannot_take_more_gateway_ports_than_its_quota_and_waits_in_order_R49(
    kube: Cluster, operator: OperatorProcess, services: dict[str, str]
) -> None:
    """Quota 3 ports. The hostile account holds 2 (one 2-port endpoint), asks for 2 more: refused, naming the
    limit and the value; a younger 1-port endpoint that would fit queues behind it (no overtaking). The
    neighbour account is untouched. The queue survives an operator restart. A delete frees the ports and both
    waiters are admitted by themselves."""
    kube.apply("endpoint.yaml", name="first", namespace=GREEDY, service_name=services["two"])
    wait_for("first Accepted", phase_is(kube, "vpce", GREEDY, "first", "Accepted"))
    kube.apply("endpoint.yaml", name="second", namespace=GREEDY_TOO, service_name=services["two"])
    refused = wait_for("second refused", phase_is(kube, "vpce", GREEDY_TOO, "second", "Failed"))
    assert refused["reason"] == "GatewayPortQuotaExceeded"
    expected = (
        "needs 2 gateway port(s)",
        "holds 2",
        f"at most {GATEWAY_PORTS}",
        "quotas.default.gatewayPorts",
    )
    for fragment in (*expected, f"quotas.overrides.{GREEDY_ACCOUNT}.gatewayPorts"):
        assert fragment in refused["message"], refused["message"]
    assert not refused.get("gatewayPorts")
    assert kube.get("service", GREEDY_TOO, "vpce-second") is None  # it holds nothing while it waits

    # Younger by its creation second, in a namespace that lists (and so reconciles after a restart) first.
    time.sleep(1.1)
    kube.apply("endpoint.yaml", name="third", namespace=GREEDY, service_name=services["one"])
    queued = wait_for("third queued", phase_is(kube, "vpce", GREEDY, "third", "Failed"))
    assert queued["reason"] == "GatewayPortQuotaExceeded"
    assert "2 wanted by its older waiting endpoints" in queued["message"]

    kube.apply("endpoint.yaml", name="neighbour", namespace=NEIGHBOUR, service_name=services["two"])
    wait_for("the neighbour account is served", phase_is(kube, "vpce", NEIGHBOUR, "neighbour", "Accepted"))

    view = wait_for(
        "the quota view to show the ports held",
        lambda: quota_view(kube, GREEDY).get("gatewayPortsUsed") == "2" and quota_view(kube, GREEDY),
    )
    assert view["gatewayPortsLimit"] == str(GATEWAY_PORTS)

    # A restart keeps the queue: the operator reconciles `third` first, and must not let it overtake.
    operator.kill()
    operator.restart()
    kube.apply("endpoint.yaml", name="probe", namespace=NEIGHBOUR, service_name=services["one"])
    wait_for("the restarted operator to serve", phase_is(kube, "vpce", NEIGHBOUR, "probe", "Accepted"), 60)
    for namespace, name in ((GREEDY_TOO, "second"), (GREEDY, "third")):
        assert kube.status("vpce", namespace, name)["reason"] == "GatewayPortQuotaExceeded", name

    kube.delete("vpce", GREEDY, "first")
    wait_for("second admitted by itself", phase_is(kube, "vpce", GREEDY_TOO, "second", "Accepted"))
    wait_for("third admitted by itself", phase_is(kube, "vpce", GREEDY, "third", "Accepted"))
    wait_for("the quota view to count 3", lambda: quota_view(kube, GREEDY_TOO).get("gatewayPortsUsed") == "3")


def test_a_whitelist_past_the_account_quota_permits_nobody_until_an_older_one_goes_R49(
    kube: Cluster, services: dict[str, str]
) -> None:
    """Quota 2 Whitelists (the provider holds `consumers-two` and `consumers-one`). With the webhook off a
    third is stored, but it is Failed/QuotaExceeded, names the value, and the account it lists stays
    NotPermitted; deleting an older one lets it count, and the endpoint recovers by itself (the endpoints
    the deleted one permitted are established and stay, R14)."""
    late_account = f"fs-late-{PID}"
    late_namespace = f"fs-late-{PID}"
    kube.namespace(late_namespace, late_account)
    kube.apply(
        "whitelist.yaml",
        name="zz-late",
        namespace=PROVIDER,
        service="one",
        accounts=f'["iam:domain::{late_account}"]',
    )
    over = wait_for("zz-late Failed", phase_is(kube, "whitelists", PROVIDER, "zz-late", "Failed"))
    assert over["reason"] == "QuotaExceeded"
    assert f"2 of at most {WHITELISTS} Whitelists" in over["message"]
    assert f"quotas.overrides.{PROVIDER_ACCOUNT}.whitelists" in over["message"]
    wait_for("the view counts 3", lambda: quota_view(kube, PROVIDER).get("whitelistsUsed") == "3")
    assert quota_view(kube, PROVIDER)["whitelistsLimit"] == str(WHITELISTS)

    kube.apply("endpoint.yaml", name="late", namespace=late_namespace, service_name=services["one"])
    denied = wait_for("late NotPermitted", phase_is(kube, "vpce", late_namespace, "late", "Failed"))
    assert denied["reason"] == "NotPermitted"

    kube.delete("whitelists", PROVIDER, "consumers-two")
    wait_for("zz-late Active", phase_is(kube, "whitelists", PROVIDER, "zz-late", "Active"))
    wait_for("late recovers", phase_is(kube, "vpce", late_namespace, "late", "Accepted"))
    delete_namespaces(kube, late_namespace)

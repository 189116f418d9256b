"""R48 as a hostile tenant tries it, on a real API server: an unlabelled namespace named like an account that
administrators gave to other namespaces by label would be that account (its whitelist entries, "same account"
acceptance, quota). Namespace names are self-service, the label is not (the chart's admission policy:
tests/chart/test_chart_account_label.py), so the operator treats such a namespace as having no account:
`Failed/AccountUnclear`, with no data path, until an administrator labels it.

The operator runs as a real process (webhook off: the reconcilers' verdict), gateway status from the
stand-in."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from integration.conftest import delete_namespaces
from integration.helpers import (
    Cluster,
    OperatorProcess,
    StandInGateway,
    phase_is,
    publish_whitelisted,
    wait_for,
)

pytestmark = pytest.mark.cluster
PID = os.getpid()
PROVIDER = f"acct-prov-{PID}"
BANK = f"bank-{PID}"  # the account administrators gave to BANK_HOME by label
BANK_HOME = f"bank-home-{PID}"
LATE = f"late-{PID}"  # an account nobody claims yet: its unlabelled namespace works until someone does
LATE_HOME = f"late-home-{PID}"


@pytest.fixture(scope="module")
def scene(kube: Cluster, operator: OperatorProcess, gateway: StandInGateway) -> Iterator[str]:
    kube.namespace(PROVIDER, f"acct-provider-{PID}")
    kube.namespace(BANK_HOME, BANK)
    kube.namespace(BANK)  # the intruder: no label, named like the bank's account
    kube.namespace(LATE)
    service_name = publish_whitelisted(kube, PROVIDER, "ledger", [BANK, LATE])
    yield service_name
    delete_namespaces(kube, PROVIDER, BANK, BANK_HOME, LATE, LATE_HOME)


def connect(kube: Cluster, namespace: str, service_name: str, *phases: str) -> dict[str, object]:
    kube.apply("endpoint.yaml", name="ledger", namespace=namespace, service_name=service_name)
    return dict(
        wait_for(
            f"Endpoint {namespace}/ledger in {phases}", phase_is(kube, "vpce", namespace, "ledger", *phases)
        )
    )


def test_an_unlabelled_namespace_named_like_a_labelled_account_gets_nothing_R48(
    kube: Cluster, scene: str
) -> None:
    status = connect(kube, BANK, scene, "Failed")
    assert status["reason"] == "AccountUnclear", status
    assert f"account {BANK} belongs to the namespaces labelled vpcep.io/account={BANK}" in str(
        status["message"]
    )
    assert "ask a cluster administrator" in str(status["message"])
    assert not status.get("gatewayPorts") and kube.get("service", BANK, "vpce-ledger") is None
    # The account's own namespace is served as ever.
    connect(kube, BANK_HOME, scene, "Accepted")
    # An administrator gives the intruder an account of its own: now it is judged as that account (not on
    # the whitelist), never as the bank.
    kube.namespace(BANK, f"intruder-{PID}")
    status = dict(
        wait_for("the intruder judged as its own account", phase_is(kube, "vpce", BANK, "ledger", "Failed"))
    )
    wait_for(
        "reason NotPermitted",
        lambda: kube.status("vpce", BANK, "ledger").get("reason") == "NotPermitted",
    )


def test_a_claim_that_appears_later_withdraws_the_unlabelled_namespace_at_once_R48(
    kube: Cluster, scene: str
) -> None:
    connect(kube, LATE, scene, "Accepted")
    kube.namespace(LATE_HOME, LATE)  # an administrator gives account LATE to another namespace
    status = dict(
        wait_for(
            "the unlabelled namespace to lose the account",
            phase_is(kube, "vpce", LATE, "ledger", "Failed"),
            timeout=20,
        )
    )
    assert status["reason"] == "AccountUnclear", status
    wait_for("its consumer Service removed", lambda: kube.get("service", LATE, "vpce-ledger") is None)
    # The claim goes again: the namespace is its own account once more and reconnects.
    kube.kubectl("delete", "namespace", LATE_HOME, "--wait=false")
    wait_for(
        "the endpoint back",
        phase_is(kube, "vpce", LATE, "ledger", "Accepted", "PendingAcceptance"),
        timeout=60,
    )

"""R48 with R9/R49 as a hostile tenant tries it, on a real API server: a namespace named like an account
(namespace names are self-service) that took the account's objects before an administrator gave the account
to other namespaces by label. Those objects become `Failed/AccountUnclear` (tests/integration/
test_trust_accounts.py); here: they also stop counting against the account's quota, so the account's own
namespaces get their Endpoints and Whitelists, not `QuotaExceeded`.

The operator runs as a real process (webhook off: the reconcilers' verdict) with a quota of one Endpoint and
one Whitelist for the account; gateway status from the stand-in."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from integration.conftest import delete_namespaces, start_operator
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
PROVIDER = f"aq-prov-{PID}"
BANK = f"aq-bank-{PID}"  # the account, and the squatter's namespace named like it
BANK_HOME = f"aq-bank-home-{PID}"  # the namespace an administrator gives account BANK by label


@pytest.fixture(scope="module")
def operator(kube: Cluster, operator_namespace: str) -> Iterator[OperatorProcess]:
    quota = {"quotas": {"overrides": {BANK: {"endpoints": 1, "whitelists": 1}}}}
    process = start_operator(kube, operator_namespace, config=quota)
    try:
        yield process
        if process.alive():
            delete_namespaces(kube, PROVIDER, BANK, BANK_HOME, operator_namespace)
    finally:
        process.stop()


def _reason(kube: Cluster, kind: str, namespace: str, name: str, *reasons: str) -> dict[str, Any]:
    return dict(
        wait_for(
            f"{kind} {namespace}/{name} with reason in {reasons}",
            lambda: (status := kube.status(kind, namespace, name)).get("reason") in reasons and status,
        )
    )


def test_a_namespace_squatting_an_account_name_holds_none_of_its_quota_once_claimed_R48_R49(
    kube: Cluster, operator: OperatorProcess, gateway: StandInGateway
) -> None:
    kube.namespace(PROVIDER, f"aq-provider-{PID}")
    kube.namespace(BANK)  # no label: account BANK by its name while nobody holds BANK by label
    service_name = publish_whitelisted(kube, PROVIDER, "ledger", [BANK])
    # The squatter takes the account's one Endpoint and one Whitelist first (older objects rank first).
    kube.apply("endpoint.yaml", name="ledger", namespace=BANK, service_name=service_name)
    wait_for("the squatter's endpoint Accepted", phase_is(kube, "vpce", BANK, "ledger", "Accepted"))
    kube.apply("whitelist.yaml", name="mine", namespace=BANK, service="nothing", accounts='["*"]')
    _reason(kube, "whitelists", BANK, "mine", "EndpointServiceNotFound")
    # An administrator gives account BANK to BANK_HOME: the squatter's objects lose the account ...
    kube.namespace(BANK_HOME, BANK)
    assert _reason(kube, "vpce", BANK, "ledger", "AccountUnclear")["phase"] == "Failed"
    unclear = _reason(kube, "whitelists", BANK, "mine", "AccountUnclear")
    assert unclear["phase"] == "Failed" and "permits nobody" in unclear["message"]
    # ... and the account's quota with it: its own namespace gets the one Endpoint and the one Whitelist.
    kube.apply("endpoint.yaml", name="ledger", namespace=BANK_HOME, service_name=service_name)

    def decided() -> dict[str, Any] | None:
        found = kube.status("vpce", BANK_HOME, "ledger")
        return found if found.get("phase") == "Accepted" or found.get("reason") == "QuotaExceeded" else None

    status = wait_for("the account's own endpoint decided", decided)
    assert status["phase"] == "Accepted", status
    kube.apply("whitelist.yaml", name="own", namespace=BANK_HOME, service="nothing", accounts='["*"]')
    status = _reason(kube, "whitelists", BANK_HOME, "own", "EndpointServiceNotFound", "QuotaExceeded")
    assert status["reason"] == "EndpointServiceNotFound", status  # within the quota; no such service

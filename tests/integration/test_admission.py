"""The validating webhook (kopf on.validate, served with an openssl certificate, URL configuration managed by
the operator): refusals with the domain's messages, before anything is stored."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
from collections.abc import Iterator

import pytest

from integration.conftest import delete_namespaces, start_operator
from integration.helpers import Cluster, OperatorProcess, StandInGateway, phase_is, render, wait_for

pytestmark = pytest.mark.cluster
PID = os.getpid()
PROVIDER, CONSUMER, STRANGER, TINY = (
    f"adm-prov-{PID}",
    f"adm-cons-{PID}",
    f"adm-str-{PID}",
    f"adm-tiny-{PID}",
)
ACCOUNT, STRANGER_ACCOUNT, TINY_ACCOUNT = f"adm-{PID}", f"adm-stranger-{PID}", f"adm-tiny-{PID}"
TENANT_USER = f"tenant-{PID}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def certificate(loopback_certificate: tuple[pathlib.Path, pathlib.Path]) -> tuple[pathlib.Path, pathlib.Path]:
    return loopback_certificate


@pytest.fixture(scope="module")
def operator(
    kube: Cluster, operator_namespace: str, certificate: tuple[pathlib.Path, pathlib.Path]
) -> Iterator[OperatorProcess]:
    cert, key = certificate
    configuration = f"vpcep-it-{PID}"
    process = start_operator(
        kube,
        operator_namespace,
        "--webhook-managed",
        configuration,
        "--webhook-address",
        "127.0.0.1",
        "--webhook-host",
        "127.0.0.1",
        "--webhook-port",
        str(_free_port()),
        "--webhook-cert",
        str(cert),
        "--webhook-key",
        str(key),
        "--webhook-ca",
        str(cert),
        config={"quotas": {"overrides": {TINY_ACCOUNT: {"services": 1, "endpoints": 1, "whitelists": 1}}}},
    )
    try:
        wait_for(
            "the managed ValidatingWebhookConfiguration",
            lambda: kube.get("validatingwebhookconfiguration", None, configuration),
            timeout=30,
        )
        yield process
        delete_namespaces(kube, PROVIDER, CONSUMER, STRANGER, TINY, operator_namespace)
    finally:
        process.stop()
        kube.kubectl(
            "delete", "validatingwebhookconfiguration", configuration, "--ignore-not-found", check=False
        )


@pytest.fixture(scope="module")
def published(kube: Cluster, operator: OperatorProcess, gateway: StandInGateway) -> str:
    for namespace, account in (
        (PROVIDER, ACCOUNT),
        (CONSUMER, ACCOUNT),
        (STRANGER, STRANGER_ACCOUNT),
        (TINY, TINY_ACCOUNT),
    ):
        kube.namespace(namespace, account)
    kube.apply("backend-service.yaml", name="pg-backend", namespace=PROVIDER)
    kube.apply("endpoint-service.yaml", name="pg", namespace=PROVIDER, backend="pg-backend", approval="false")
    return str(wait_for("pg Available", phase_is(kube, "vpces", PROVIDER, "pg", "Available"))["serviceName"])


def refused(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, f"expected a refusal, got: {result.stdout}"
    assert "denied the request" in result.stderr, result.stderr
    return result.stderr


def test_unknown_service_name_is_refused(kube: Cluster, published: str) -> None:  # R15, R40
    message = refused(
        kube.apply(
            "endpoint.yaml",
            check=False,
            name="typo",
            namespace=CONSUMER,
            service_name=published.replace("local-1.", "eu-9."),
        )
    )
    assert "not found" in message and "region" in message
    assert kube.get("vpce", CONSUMER, "typo") is None


def test_a_refusal_is_logged_at_info_with_its_reason_not_as_an_error(
    kube: Cluster, published: str, operator: OperatorProcess
) -> None:  # issue 14: ERROR is for operator faults a platform team alerts on; a user's typo is not one
    typo = published.replace("local-1.", "eu-8.")
    refused(
        kube.apply("endpoint.yaml", check=False, name="typo-logged", namespace=CONSUMER, service_name=typo)
    )
    wait_for("the refusal in the operator's log", lambda: typo in operator.log(), timeout=10)
    (line,) = [line for line in operator.log().splitlines() if typo in line]
    assert " INFO " in line and "admission refused by" in line and "not found" in line, line
    assert "failed permanently" not in operator.log()


def test_not_permitted_account_is_refused_then_allowed(kube: Cluster, published: str) -> None:  # R13
    message = refused(
        kube.apply("endpoint.yaml", check=False, name="pg", namespace=STRANGER, service_name=published)
    )
    assert f"iam:domain::{STRANGER_ACCOUNT}" in message
    kube.apply(
        "whitelist.yaml",
        name="pg-stranger",
        namespace=PROVIDER,
        service="pg",
        accounts=f"['iam:domain::{STRANGER_ACCOUNT}']",
    )
    wait_for(
        "the webhook to see the whitelist",
        lambda: (
            kube.apply(
                "endpoint.yaml", check=False, name="pg", namespace=STRANGER, service_name=published
            ).returncode
            == 0
        ),
    )
    wait_for("pg Accepted", phase_is(kube, "vpce", STRANGER, "pg", "Accepted"))


def test_malformed_whitelist_entry_is_refused_naming_it(kube: Cluster, published: str) -> None:  # R12
    result = kube.apply(
        "whitelist.yaml",
        check=False,
        name="bad",
        namespace=PROVIDER,
        service="pg",
        accounts="['iam:domain::ok', 'root@everyone']",
    )
    assert result.returncode != 0 and "root@everyone" in result.stderr


def test_deleting_a_service_with_accepted_endpoints_is_refused(kube: Cluster, published: str) -> None:  # R7
    kube.apply("endpoint.yaml", name="pg-main", namespace=CONSUMER, service_name=published)
    main = wait_for("pg-main Accepted", phase_is(kube, "vpce", CONSUMER, "pg-main", "Accepted"))
    message = refused(kube.delete("vpces", PROVIDER, "pg"))
    # R46: the provider hears endpoint ids and accounts, never the consumer's namespace or Endpoint name.
    assert f"{main['endpointId']} (account {ACCOUNT}, Accepted)" in message
    assert CONSUMER not in message and "pg-main" not in message
    assert kube.status("vpces", PROVIDER, "pg")["phase"] == "Available"

    kube.delete("vpce", CONSUMER, "pg-main", wait=True)
    kube.delete("vpce", STRANGER, "pg", wait=True)
    wait_for(
        "the delete to be allowed once the endpoints are gone",
        lambda: kube.delete("vpces", PROVIDER, "pg").returncode == 0,
    )
    wait_for("pg gone", lambda: kube.get("vpces", PROVIDER, "pg") is None)


def test_quota_is_enforced_at_admission(kube: Cluster, operator: OperatorProcess) -> None:  # R9, R22
    kube.apply("backend-service.yaml", name="one-backend", namespace=TINY)
    kube.apply("endpoint-service.yaml", name="one", namespace=TINY, backend="one-backend", approval="false")
    message = refused(
        kube.apply(
            "endpoint-service.yaml",
            check=False,
            name="two",
            namespace=TINY,
            backend="one-backend",
            approval="false",
        )
    )
    assert "1 of at most 1" in message
    name = wait_for("one Available", phase_is(kube, "vpces", TINY, "one", "Available"))["serviceName"]
    kube.apply("endpoint.yaml", name="first", namespace=TINY, service_name=name)
    assert "at most 1" in refused(
        kube.apply("endpoint.yaml", check=False, name="second", namespace=TINY, service_name=name)
    )
    kube.delete("vpce", TINY, "first", wait=True)
    wait_for(
        "the quota to be freed at once",
        lambda: (
            kube.apply(
                "endpoint.yaml", check=False, name="second", namespace=TINY, service_name=name
            ).returncode
            == 0
        ),
    )


def test_the_whitelist_quota_is_enforced_at_admission_R49(kube: Cluster, operator: OperatorProcess) -> None:
    """A provider past its Whitelist quota (1 here) is refused, with the limit and the Helm value that raises
    it; deleting the one it holds frees the place at once."""
    kube.namespace(TINY, TINY_ACCOUNT)
    accounts = '["iam:domain::someone"]'
    kube.apply("whitelist.yaml", name="wl-1", namespace=TINY, service="one", accounts=accounts)
    message = refused(
        kube.apply(
            "whitelist.yaml", check=False, name="wl-2", namespace=TINY, service="one", accounts=accounts
        )
    )
    assert "1 of at most 1 Whitelists" in message
    assert f"quotas.overrides.{TINY_ACCOUNT}.whitelists" in message
    kube.delete("whitelists", TINY, "wl-1", wait=True)
    wait_for(
        "the Whitelist quota to be freed at once",
        lambda: (
            kube.apply(
                "whitelist.yaml", check=False, name="wl-2", namespace=TINY, service="one", accounts=accounts
            ).returncode
            == 0
        ),
    )


def test_tenants_cannot_touch_system_services(
    kube: Cluster, operator: OperatorProcess, published: str
) -> None:
    """R8: even with RBAC rights, a tenant can neither claim the system label nor change or delete `dns`."""
    for namespace in (CONSUMER, operator.namespace):
        kube.apply("tenant-rbac.yaml", namespace=namespace, user=TENANT_USER)
    as_tenant = ("--as", TENANT_USER)
    claim = kube.kubectl(
        "apply",
        *as_tenant,
        "-f",
        "-",
        check=False,
        input=render("system-claim.yaml", name="fake-dns", namespace=CONSUMER, backend="x"),
    )
    assert "cloud service" in refused(claim)
    deletion = kube.kubectl(
        "delete", *as_tenant, "vpces", "dns", "-n", operator.namespace, "--wait=false", check=False
    )
    assert "cannot be deleted by tenants" in refused(deletion)
    assert kube.get("vpces", operator.namespace, "dns") is not None


def test_a_backend_the_provider_does_not_own_is_refused_at_admission(
    kube: Cluster, published: str
) -> None:  # R45
    kube.apply_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: elsewhere, namespace: " + PROVIDER + "}\n"
        "spec: {type: ExternalName, externalName: metadata.google.internal}\n"
    )
    message = refused(
        kube.apply(
            "endpoint-service.yaml", check=False, name="elsewhere", namespace=PROVIDER,
            backend="elsewhere", approval="false",
        )
    )  # fmt: skip
    assert "spec.backend" in message and "ExternalName" in message and "(see docs/rules.md#r45)" in message
    assert kube.get("vpces", PROVIDER, "elsewhere") is None
    # A Pod still starting is not refused here (it may run in a moment; the reconcile judges the phase).
    kube.apply("backend-pod.yaml", name="starting", namespace=PROVIDER)
    kube.apply(
        "pod-endpoint-service.yaml", name="starting", namespace=PROVIDER, backend="starting", server_port="80"
    )
    failed = wait_for("starting Failed", phase_is(kube, "vpces", PROVIDER, "starting", "Failed"))
    assert failed["reason"] == "BackendPodNotRunning"


def test_a_namespace_named_like_a_labelled_account_is_refused_at_admission_R48(
    kube: Cluster, published: str
) -> None:
    """ACCOUNT is given by label to PROVIDER and CONSUMER: a namespace named ACCOUNT without the label may
    publish nothing, connect to nothing and hold no Whitelist (each would count against ACCOUNT's quota),
    and the answer says why and what fixes it."""
    kube.namespace(ACCOUNT)
    try:
        message = refused(
            kube.apply(
                "endpoint.yaml", check=False, name="borrowed", namespace=ACCOUNT, service_name=published
            )
        )
        assert (
            "AccountUnclear" in message or f"account {ACCOUNT} belongs to the namespaces labelled" in message
        )
        assert "ask a cluster administrator" in message
        kube.apply("backend-service.yaml", name="b-backend", namespace=ACCOUNT)
        message = refused(
            kube.apply(
                "endpoint-service.yaml",
                check=False,
                name="b",
                namespace=ACCOUNT,
                backend="b-backend",
                approval="false",
            )
        )
        assert f"account {ACCOUNT} belongs to the namespaces labelled" in message
        message = refused(
            kube.apply(
                "whitelist.yaml", check=False, name="w", namespace=ACCOUNT, service="b", accounts='["*"]'
            )
        )
        assert f"account {ACCOUNT} belongs to the namespaces labelled" in message
    finally:
        delete_namespaces(kube, ACCOUNT)

"""`kubectl vpcep verify` against the real API server and the operator's real admission webhook (issue 14).

For a tenant (rights only in its own namespace) and for an admin (may list every namespace), the three answers
are told apart: not found; found, but this namespace's account may not connect (and what to ask the provider
for, R12, R13); found, and an Endpoint would be admitted. The answers come from the API server as it really
sends them (a webhook's refusal is an HTTP 403 like an RBAC refusal), not from a fake error type.
"""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from integration.conftest import delete_namespaces, start_operator
from integration.helpers import REPO, Cluster, OperatorProcess, StandInGateway, phase_is, wait_for
from vpcep.cli import kubectl_plugin

pytestmark = pytest.mark.cluster
SUFFIX = f"{os.getpid()}-{uuid.uuid4().hex[:4]}"
PROVIDER, CONSUMER, OPERATOR_NS = f"verify-prov-{SUFFIX}", f"verify-cons-{SUFFIX}", f"vpcep-verify-{SUFFIX}"
TENANT, VIEWER = f"dave-{SUFFIX}", f"erin-{SUFFIX}"  # edits Endpoints in CONSUMER / only reads there


@dataclass(frozen=True)
class Setup:
    suite: Any  # tests/conftest.py's Cluster: kubeconfigs per user
    kube: Cluster
    service_name: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _role(namespace: str, user: str, verbs: list[str]) -> str:
    name = f"verify-{user}"
    return yaml.safe_dump_all(
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": name, "namespace": namespace},
                "rules": [{"apiGroups": ["vpcep.io"], "resources": ["*"], "verbs": verbs}],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": namespace},
                "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}],
                "roleRef": {"kind": "Role", "name": name, "apiGroup": "rbac.authorization.k8s.io"},
            },
        ]
    )


@pytest.fixture(scope="module")
def setup(cluster: Any, loopback_certificate: tuple[pathlib.Path, pathlib.Path]) -> Iterator[Setup]:
    kube = Cluster(str(cluster.kubeconfig), cluster.kubectl)
    kube.kubectl("apply", "-f", str(REPO / "crds"))
    for crd in ("endpointservices", "endpoints", "whitelists", "endpointconnections"):
        kube.kubectl("wait", "--for=condition=Established", f"crd/{crd}.vpcep.io", "--timeout=30s")
    cert, key = loopback_certificate
    configuration = f"vpcep-verify-{SUFFIX}"
    operator: OperatorProcess = start_operator(
        kube,
        OPERATOR_NS,
        *(
            "--webhook-managed",
            configuration,
            "--webhook-address",
            "127.0.0.1",
            "--webhook-host",
            "127.0.0.1",
        ),
        *("--webhook-port", str(_free_port()), "--webhook-cert", str(cert), "--webhook-key", str(key)),
        *("--webhook-ca", str(cert)),
    )
    gateway = StandInGateway(kube, OPERATOR_NS, f"stand-in-verify-{SUFFIX}", "10.244.0.11")
    gateway.start()
    try:
        wait_for(
            "the managed webhook", lambda: kube.get("validatingwebhookconfiguration", None, configuration)
        )
        kube.namespace(PROVIDER)  # unlabelled: each namespace is its own account
        kube.namespace(CONSUMER)
        kube.apply_text(_role(CONSUMER, TENANT, ["*"]))
        kube.apply_text(_role(CONSUMER, VIEWER, ["get", "list", "watch"]))
        kube.apply("backend-service.yaml", name="ledger-backend", namespace=PROVIDER)
        kube.apply(
            "endpoint-service.yaml",
            name="ledger",
            namespace=PROVIDER,
            backend="ledger-backend",
            approval="false",
        )
        status = wait_for("ledger Available", phase_is(kube, "vpces", PROVIDER, "ledger", "Available"))
        yield Setup(cluster, kube, str(status["serviceName"]))
        delete_namespaces(kube, PROVIDER, CONSUMER, OPERATOR_NS)
    finally:
        gateway.stop()
        operator.stop()
        kube.kubectl(
            "delete", "validatingwebhookconfiguration", configuration, "--ignore-not-found", check=False
        )


@dataclass(frozen=True)
class Answer:
    returncode: int
    stdout: str
    stderr: str


def verify(setup: Setup, user: str | None, service_name: str) -> Answer:
    """The plugin's own entry point (in this process: its start-up is most of a run's time), as `user`
    (None: the admin), in the consumer's namespace, through the API server."""
    kubeconfig = setup.suite.kubeconfig if user is None else setup.suite.kubeconfig_for(user)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = kubectl_plugin.main(["verify", service_name, "-n", CONSUMER, "--kubeconfig", str(kubeconfig)])
    return Answer(code, out.getvalue(), err.getvalue())


def whitelisted(setup: Setup, accounts: list[str]) -> None:
    setup.kube.apply(
        "whitelist.yaml", name="ledger-allow", namespace=PROVIDER, service="ledger", accounts=str(accounts)
    )


@pytest.mark.parametrize("user", [TENANT, None], ids=["tenant", "admin"])
def test_verify_tells_not_found_not_permitted_and_admitted_apart(setup: Setup, user: str | None) -> None:
    # R15, R40: a name from another region does not exist here
    missing = verify(setup, user, setup.service_name.replace("local-1.", "eu-9."))
    assert missing.returncode == 1, missing.stdout + missing.stderr
    assert missing.stderr.startswith("not found:") and "check the name and the region" in missing.stderr

    # R12, R13: the service exists, the account is not on any Whitelist: say so, and what to ask for
    whitelisted(setup, [])
    refused = wait_for(  # the webhook judges from the operator's watch: it sees the Whitelist a moment later
        "verify to refuse", lambda: (done := verify(setup, user, setup.service_name)).returncode == 1 and done
    )
    assert refused.stderr.startswith(f"found: {setup.service_name}")
    assert "your account may not connect to it" in refused.stderr
    assert f"add 'iam:domain::{CONSUMER}' to a Whitelist" in refused.stderr
    assert user is None or PROVIDER not in refused.stderr  # R46: a tenant learns nothing of the provider

    # ... and once the provider lists the account, an Endpoint would be admitted
    whitelisted(setup, [f"iam:domain::{CONSUMER}"])
    admitted = wait_for(
        "verify to admit", lambda: (done := verify(setup, user, setup.service_name)).returncode == 0 and done
    )
    assert admitted.stdout.startswith(f"found: {setup.service_name}")
    assert f"would be admitted in namespace {CONSUMER}" in admitted.stdout
    if user is None:  # the admin also sees where it lives; the tenant learns nothing of the provider (R46)
        assert f"({PROVIDER}/ledger, type Interface, ports 80" in admitted.stdout
    else:
        assert PROVIDER not in admitted.stdout
    assert setup.kube.kubectl("get", "vpce", "-n", CONSUMER, "-o", "name").stdout == ""  # a dry run: nothing


def test_verify_as_a_reader_says_it_cannot_tell(setup: Setup) -> None:
    done = verify(setup, VIEWER, setup.service_name)
    assert done.returncode == 2
    assert done.stderr.startswith("cannot verify: you may neither list endpointservices")

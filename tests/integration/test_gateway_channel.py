"""R45 with the gateway channel: a gateway agent that reaches the API only through the operator's channel
serves an endpoint end to end, and the channel passes on nothing but a gateway's own requests.

The operator serves the channel over HTTPS on 127.0.0.1 (the suite's loopback certificate); the agent runs
with ``--api-server`` aimed at it and a kubeconfig whose server is unreachable, so every route it serves and
every status report it writes went through the channel. A hostile caller holding the most powerful token
there is (system:masters) still cannot read a Secret or rewrite a route through it, and the channel lends no
identity of its own: a tenant's token gets the API server's own refusal.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from integration.conftest import delete_namespaces, start_operator
from integration.helpers import (
    Cluster,
    OperatorProcess,
    free_port_run,
    published_pod_endpoint,
    running_gateway_agent,
    wait_for,
)
from line_echo import stream_echo_server, talks

pytestmark = pytest.mark.cluster
PID = os.getpid()
PROVIDER, CONSUMER = f"chan-prov-{PID}", f"chan-cons-{PID}"


@pytest.fixture(scope="module")
def operator(
    kube: Cluster, operator_namespace: str, loopback_certificate: tuple[Any, Any]
) -> Iterator[OperatorProcess]:
    cert, key = loopback_certificate
    first = free_port_run(5, start=42000)  # the channel, then four gateway ports
    process = start_operator(
        kube,
        operator_namespace,
        config={
            "gatewayChannel": {
                "enabled": True, "address": "127.0.0.1", "port": first,
                "certFile": str(cert), "keyFile": str(key),
            },
            "gatewayPorts": {"first": first + 1, "last": first + 4},
            "gatewayIngressPolicy": False,  # no network plugin on loopback; R42 is tested in dataplane/
        },
    )  # fmt: skip
    process.channel_url = f"https://127.0.0.1:{first}"  # type: ignore[attr-defined]
    try:
        yield process
        delete_namespaces(kube, PROVIDER, CONSUMER, operator_namespace)
    finally:
        process.stop()


def channel_url(operator: OperatorProcess) -> str:
    return str(operator.channel_url)  # type: ignore[attr-defined]


def call(
    url: str, ca_file: str, token: str | None, method: str = "GET", body: Any = None
) -> tuple[int, dict]:
    """One request; the answer's status code and JSON body (a Kubernetes Status object when refused)."""
    request = urllib.request.Request(
        url, method=method, data=None if body is None else json.dumps(body).encode()
    )
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/merge-patch+json")
    try:
        with urllib.request.urlopen(
            request, context=ssl.create_default_context(cafile=ca_file), timeout=10
        ) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_an_agent_that_reaches_the_api_only_through_the_channel_serves_an_endpoint_R45(
    kube: Cluster, operator: OperatorProcess, loopback_certificate: tuple[Any, Any], tmp_path: pathlib.Path
) -> None:
    """Routes listed and watched, status written, all through the channel: the endpoint is Accepted (it needs
    the agent's report), bytes pass, and deleting the Endpoint closes the port (the watch streams through)."""
    cert, _ = loopback_certificate
    through_channel = ("--api-server", channel_url(operator), "--api-ca-file", str(cert))
    # The agent's kubeconfig names a server where nothing listens: the channel is its only way to the API.
    config = yaml.safe_load(pathlib.Path(kube.kubeconfig).read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port_run(1, start=43000)}"
    unreachable = tmp_path / "kubeconfig-without-the-api-server"
    unreachable.write_text(yaml.safe_dump(config))
    with (
        stream_echo_server() as backend,
        running_gateway_agent(
            kube, operator.namespace, f"chan-{PID}", *through_channel, "--heartbeat-interval", "1",
            agent_kubeconfig=str(unreachable),
        ),
    ):  # fmt: skip
        status = published_pod_endpoint(kube, PROVIDER, CONSUMER, f"chan-{PID}", backend)
        port = status["gatewayPorts"][0]["gatewayPort"]
        session = wait_for("a session through the gateway", lambda: _session(port), timeout=15)
        assert talks(session), "bytes through the gateway the channel configured"
        session.close()

        kube.kubectl("delete", "vpce", "echo", "-n", CONSUMER, "--wait=false")
        wait_for("the deleted endpoint's port to close", lambda: _session(port) is None, timeout=30)
    assert "gateway channel: refused" not in operator.log(), "the agent asked for nothing the channel refuses"


def _session(port: int) -> socket.socket | None:
    try:
        connection = socket.create_connection(("127.0.0.1", port), timeout=2)
    except OSError:
        return None
    if talks(connection):
        return connection
    connection.close()
    return None


def test_the_channel_passes_on_only_a_gateways_own_requests_R45(
    kube: Cluster, cluster: Any, operator: OperatorProcess, loopback_certificate: tuple[Any, Any]
) -> None:
    cert, _ = loopback_certificate
    ca = str(cert)
    config = yaml.safe_load(pathlib.Path(kube.kubeconfig).read_text())
    admin_token = config["users"][0]["user"]["token"]  # system:masters: the API server would allow anything
    api_server = config["clusters"][0]["cluster"]["server"]
    api_ca = config["clusters"][0]["cluster"]["certificate-authority"]
    namespace = operator.namespace
    kube.kubectl("create", "secret", "generic", "crown-jewels", "-n", namespace, "--from-literal=k=v")
    secrets_path = f"/api/v1/namespaces/{namespace}/secrets"
    configmaps_path = f"/api/v1/namespaces/{namespace}/configmaps"

    code, answer = call(api_server + secrets_path, api_ca, admin_token)
    assert code == 200, "the token itself may read Secrets: what follows is the channel's refusal"
    hostile = {
        "read Secrets": (secrets_path, "GET", None),
        "list every ConfigMap of the operator": (configmaps_path, "GET", None),
        "rewrite the operator's configuration": (
            f"{configmaps_path}/vpcep-operator-config",
            "PATCH",
            {"data": {}},
        ),
        "read another kind": (f"/apis/vpcep.io/v1/namespaces/{namespace}/endpoints", "GET", None),
        "escape the path": (f"{configmaps_path}/vpcep-gateway-x%2F..%2F..%2Fsecrets", "GET", None),
    }
    for attempt, (path, method, body) in hostile.items():
        code, answer = call(channel_url(operator) + path, ca, admin_token, method, body)
        assert code == 403 and "vpcep gateway channel" in answer.get("message", ""), (attempt, code, answer)

    routes = f"{configmaps_path}?labelSelector=vpcep.io%2Froute%3Dtrue"
    code, answer = call(channel_url(operator) + routes, ca, None)
    assert code == 401, f"no token, no request passed on: {code} {answer}"
    code, answer = call(channel_url(operator) + routes, ca, cluster.token_for("tenant-a"))
    assert code == 403 and "tenant-a" in answer.get("message", ""), (
        f"a tenant's token is refused by the API server itself (no identity lent): {code} {answer}"
    )
    code, answer = call(channel_url(operator) + routes, ca, admin_token)
    assert code == 200 and answer.get("kind") == "ConfigMapList", (code, answer)

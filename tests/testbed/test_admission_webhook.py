"""A validating webhook with a URL client config (how kopf registers its admission handlers) is called by the
API server, and its denial reaches kubectl with the webhook's message (refusals at admission: R7, R9, R13)."""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.cluster

DENIAL = "configmaps named forbidden-* are not allowed here"


class _Review(BaseHTTPRequestHandler):
    """Denies ConfigMaps whose name starts with forbidden-; allows everything else."""

    calls: list[str] = []

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request = review["request"]
        name = request["object"]["metadata"].get("name", "")
        _Review.calls.append(name)
        allowed = not name.startswith("forbidden-")
        response = {"uid": request["uid"], "allowed": allowed}
        if not allowed:
            response["status"] = {"code": 403, "message": DENIAL}
        body = json.dumps(
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook_server(loopback_certificate: tuple[Path, Path]) -> Iterator[tuple[int, bytes]]:
    cert, key = loopback_certificate
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Review)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], cert.read_bytes()
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_denial_reaches_kubectl(
    cluster: Cluster, namespace: str, webhook_server: tuple[int, bytes]
) -> None:
    port, ca = webhook_server
    # Scoped to this test's namespace: the cluster is shared by the whole session.
    cluster.kubectl_run("label", "namespace", namespace, f"webhook-test={namespace}")
    name = f"deny-forbidden-{namespace}"
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "deny.testbed.vpcep.io",
                "clientConfig": {
                    "url": f"https://127.0.0.1:{port}/validate",
                    "caBundle": base64.b64encode(ca).decode(),
                },
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["configmaps"],
                    }
                ],
                "namespaceSelector": {"matchLabels": {"webhook-test": namespace}},
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 5,
            }
        ],
    }
    cluster.kubectl_run("apply", "-f", "-", input=json.dumps(config))
    try:
        # The webhook is active once the API server's informer has it: an allowed create is then reviewed.
        deadline_names = [f"probe-{i}" for i in range(100)]
        for probe in deadline_names:
            cluster.kubectl_run("create", "configmap", probe, "-n", namespace)
            if probe in _Review.calls:
                break
        else:
            pytest.fail("the API server never called the webhook")

        denied = cluster.kubectl_run("create", "configmap", "forbidden-1", "-n", namespace, check=False)
        assert denied.returncode != 0
        assert 'admission webhook "deny.testbed.vpcep.io" denied the request' in denied.stderr
        assert DENIAL in denied.stderr
        assert (
            cluster.kubectl_run("get", "configmap", "forbidden-1", "-n", namespace, check=False).returncode
            != 0
        )
    finally:
        cluster.kubectl_run("delete", "validatingwebhookconfiguration", name, check=False)

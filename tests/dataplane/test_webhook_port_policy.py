"""R46 with real bytes: only the API server reaches the operator's admission webhook port.

Until now proven by rendering (tests/chart) and by the address `helm install` reads
(e2e/test_helm_install.py::test_only_the_api_server_may_reach_the_webhook_port_by_default_R46). Here the
chart's own operator NetworkPolicy, rendered for the API server's address (what that install reads from the
`kubernetes` EndpointSlice, given here as `webhook.allowedCIDRs`: the same list the template fills), is stored
in the real API server and enforced by the stand-in network plugin (tests/dataplane/policy_enforcer.py) on an
"operator pod" network namespace carrying the labels of the chart's operator Deployment. Listening there, on
the webhook and metrics ports, is a plain TCP stand-in (the policy is judged on addresses and ports; the real
webhook's TLS is not what is tested). The "API server" is another network namespace at its own address (no
pod: only an ipBlock names it); a stranger pod of a tenant namespace at a third. The topology's consumer side
plays the API server, its provider side the stranger, its gateway namespace the operator pod.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from integration.helpers import Cluster

from .conftest import BACKEND_SERVER
from .helpers import render_chart
from .netns import Topology, require_netns, spawn
from .policy_enforcer import Member, PolicyEnforcer
from .test_gateway_isolation import outcome

pytestmark = [pytest.mark.cluster, pytest.mark.netns]

PID = os.getpid()
OPERATOR_NS = f"vpcep-whk-{PID}"
STRANGER_NS = f"whk-strg-{PID}"
RELEASE = "vpcep"
WEBHOOK_PORT = 9443  # the chart's defaults
METRICS_PORT = 9090


@dataclass
class Scene:
    net: Topology
    enforcer: PolicyEnforcer

    @property
    def operator_pod(self) -> str:
        return self.net.gateway

    @property
    def api_server(self) -> str:
        return self.net.consumer

    @property
    def stranger(self) -> str:
        return self.net.provider

    def address_from(self, ns: str) -> str:
        """The operator pod's address on the side of `ns`."""
        net = self.net
        return net.gateway_consumer_ip if ns == net.consumer else net.gateway_provider_ip


@pytest.fixture(scope="module")
def scene(cluster: Any) -> Iterator[Scene]:
    require_netns("DATA-PLANE WEBHOOK PORT TESTS")
    kube = Cluster(str(cluster.kubeconfig), cluster.kubectl)
    net = Topology.create()
    servers: list[subprocess.Popen[bytes]] = []
    enforcer: PolicyEnforcer | None = None
    try:
        for port in (WEBHOOK_PORT, METRICS_PORT):
            server = spawn(
                net.gateway,
                [sys.executable, str(BACKEND_SERVER), "--listen", f"0.0.0.0:{port}", "--name", f"op-{port}"],
                stdout=subprocess.PIPE,
            )
            servers.append(server)
            assert server.stdout is not None and server.stdout.readline().strip() == b"READY"
        objects = render_chart(RELEASE, OPERATOR_NS, f"webhook.allowedCIDRs[0]={net.consumer_ip}/32")
        [policy] = [
            o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "vpcep-operator"
        ]
        [deployment] = [
            o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "vpcep-operator"
        ]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        kube.kubectl("create", "namespace", OPERATOR_NS)
        kube.namespace(STRANGER_NS, f"strg-{PID}")
        kube.apply_text(json.dumps(policy))
        enforcer = PolicyEnforcer(
            cluster.api_client(), net.gateway, OPERATOR_NS, pod_labels, [Member(STRANGER_NS, net.provider_ip)]
        )
        enforcer.start()
        yield Scene(net, enforcer)
        assert enforcer.error is None, f"the enforcer failed: {enforcer.error!r}"
    finally:
        if enforcer is not None:
            enforcer.stop()
        for server in servers:
            server.kill()
            server.wait()
        for namespace in (OPERATOR_NS, STRANGER_NS):
            kube.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)
        net.destroy()


def test_only_the_api_server_reaches_the_webhook_port_R46(scene: Scene) -> None:
    api_server, stranger = scene.api_server, scene.stranger
    assert outcome(api_server, scene.address_from(api_server), WEBHOOK_PORT) == "served"
    assert outcome(stranger, scene.address_from(stranger), WEBHOOK_PORT) == "policy"
    # Nothing else of the operator pod is open to either (metrics: nobody by default, metrics.scrapeFrom).
    assert outcome(stranger, scene.address_from(stranger), METRICS_PORT) == "policy"
    assert outcome(api_server, scene.address_from(api_server), METRICS_PORT) == "policy"


def test_the_enforcer_is_what_refuses_the_stranger(scene: Scene) -> None:
    """Guards the guard: lifted, the stranger's packets reach the webhook port."""
    stranger = scene.stranger
    scene.enforcer.stop()
    try:
        assert outcome(stranger, scene.address_from(stranger), WEBHOOK_PORT) == "served"
    finally:
        scene.enforcer.start()
    assert outcome(stranger, scene.address_from(stranger), WEBHOOK_PORT) == "policy"

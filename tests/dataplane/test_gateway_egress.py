"""R45 with real bytes: the gateway reaches its backends, never link-local or metadata addresses, and a
hostile provider cannot aim it at the metadata address or the API server.

Everything real but the stand-ins the machine lacks: a real API server (hack/testbed), the real operator, a
real gateway agent driving HAProxy in the gateway's network namespace, real TCP. The network plugin is played
by tests/dataplane/policy_enforcer.py, now for both directions of the gateway pod: the chart's own default-
deny ingress and egress NetworkPolicies (rendered by hack/render-chart) become iptables rules in the gateway
namespace. kube-proxy is played with DNAT in the gateway namespace (a selector-less Service's ClusterIP to its
EndpointSlice address, as kube-proxy does on every node). The "metadata server" is a network namespace of its
own at 169.254.169.254, wired to the gateway as a node's link-local network is, listening on 443 -- a port the
egress policy opens for the API server when the gateway channel is off, so then only the policy's `except`
keeps the gateway out; the SYNs that reach it are counted by an iptables rule there. The same server answers
at an ordinary address where an API server would be (API_SERVER_STAND_IN).

Layers (docs/decisions.md, "Gateways and the API server"): the egress policy refuses link-local and metadata
for the whole pod (R45); the operator refuses a backend resolving there or to the API server
(BackendAddressDenied) and withdraws its route; the agent writes no server line for such an address
(tests/gateway/test_denied_backends.py). With the chart's defaults the agent reaches the API only through the
operator pods' gateway channel, so the pod has no way to any address outside the pod network; with the
channel off, the API server's own addresses and ports stay open to the pod for the agent (R47).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from integration.conftest import delete_namespaces, start_operator
from integration.helpers import REPO, Cluster, OperatorProcess, phase_is, running_gateway_agent, wait_for

from .conftest import BACKEND_SERVER
from .helpers import chart_network_policy
from .netns import Topology, haproxy_in_netns, require_netns, sh, spawn
from .policy_enforcer import EGRESS, INGRESS, Member, PolicyEnforcer
from .test_gateway_isolation import _connect_endpoint, _publish, outcome

pytestmark = [pytest.mark.cluster, pytest.mark.netns]

PID = os.getpid()
OPERATOR_NS = f"vpcep-egr-{PID}"
PROVIDER, HOSTILE, CONSUMER = f"egr-prov-{PID}", f"egr-host-{PID}", f"egr-cons-{PID}"
RELEASE = "vpcep"
GATEWAY_PODS = {"app.kubernetes.io/name": "vpcep-gateway", "app.kubernetes.io/instance": RELEASE}
BACKEND_PORT = 8080
METADATA = "169.254.169.254"
METADATA_PORT = 443
GATEWAY_LINK_LOCAL = "169.254.0.1"
# An ordinary address outside the pod network, where a cluster's API server would be: served by the same
# server namespace, on the API server's port.
API_SERVER_STAND_IN = "10.99.0.1"
REJUDGE_SECONDS = 15  # a slice rewrite to a refused backend with its route gone: seconds, on a loaded machine


@dataclass
class EgressTopology(Topology):
    """The data-plane topology plus a "metadata server" namespace on the gateway's link-local network."""

    metadata: str = ""

    def _build(self) -> None:
        super()._build()
        self.metadata = f"vpcep-m-{self.tag}"
        sh("ip", "netns", "add", self.metadata)
        self.ip(self.metadata, "link", "set", "lo", "up")
        self._veth(
            f"m{self.tag}", self.metadata, f"{METADATA}/16", f"gm{self.tag}", f"{GATEWAY_LINK_LOCAL}/16"
        )
        self.ip(self.metadata, "addr", "add", f"{API_SERVER_STAND_IN}/32", "dev", "lo")
        self.ip(self.gateway, "route", "add", f"{API_SERVER_STAND_IN}/32", "via", METADATA)
        # HAProxy dials ClusterIPs, which only kube-proxy's DNAT (played below) makes real: a route out.
        self.ip(self.gateway, "route", "add", "default", "via", self.provider_ip)
        # Count the connection attempts that reach the metadata address, whoever makes them.
        sh(
            "ip", "netns", "exec", self.metadata,
            "iptables", "-A", "INPUT", "-p", "tcp", "--syn", "-j", "ACCEPT",
        )  # fmt: skip

    def metadata_syns(self) -> int:
        listing = sh("ip", "netns", "exec", self.metadata, "iptables", "-L", "INPUT", "-v", "-x", "-n").stdout
        [line] = [row for row in listing.splitlines() if "flags:" in row]
        return int(line.split()[0])

    def destroy(self) -> None:
        if self.metadata:
            for pid in sh("ip", "netns", "pids", self.metadata, check=False).stdout.split():
                os.kill(int(pid), 9)
            sh("ip", "netns", "del", self.metadata, check=False)
        super().destroy()


@dataclass
class Scene:
    kube: Cluster
    net: EgressTopology
    operator: OperatorProcess
    enforcer: PolicyEnforcer


def _server(ns: str, listen: str, name: str) -> subprocess.Popen[bytes]:
    process = spawn(
        ns, [sys.executable, str(BACKEND_SERVER), "--listen", listen, "--name", name], stdout=subprocess.PIPE
    )
    assert process.stdout is not None and process.stdout.readline().strip() == b"READY"
    return process


@pytest.fixture(scope="module")
def scene(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    require_netns("DATA-PLANE EGRESS TESTS")
    kube = Cluster(str(cluster.kubeconfig), cluster.kubectl)
    kube.kubectl("apply", "-f", str(REPO / "crds"))
    for crd in ("endpointservices", "endpoints", "whitelists", "endpointconnections"):
        kube.kubectl("wait", "--for=condition=Established", f"crd/{crd}.vpcep.io", "--timeout=30s")
    work = tmp_path_factory.mktemp("egress")
    net = EgressTopology.create()
    servers: list[subprocess.Popen[bytes]] = []
    operator: OperatorProcess | None = None
    enforcer: PolicyEnforcer | None = None
    try:
        servers.append(_server(net.provider, f"0.0.0.0:{BACKEND_PORT}", "provider"))
        servers.append(_server(net.metadata, f"0.0.0.0:{METADATA_PORT}", "metadata"))
        kube.kubectl("create", "namespace", OPERATOR_NS)
        kube.namespace(PROVIDER, f"shop-{PID}")
        kube.namespace(HOSTILE, f"shop-{PID}")  # one account: no Whitelist needed (R13)
        kube.namespace(CONSUMER, f"shop-{PID}")
        for name in (f"{RELEASE}-gateway-default-deny", f"{RELEASE}-gateway-egress"):
            kube.apply_text(chart_network_policy(RELEASE, OPERATOR_NS, name))
        operator = start_operator(
            kube,
            OPERATOR_NS,
            config={
                "gatewayPodLabels": GATEWAY_PODS,
                "gatewayPorts": {"first": 24200, "last": 24299},
                "gatewayHeartbeatTimeoutSeconds": 10,
                "selectorlessBackendNamespaces": [HOSTILE],  # the admin vouched for it: R45's opt-in
            },
        )
        enforcer = PolicyEnforcer(
            cluster.api_client(),
            net.gateway,
            OPERATOR_NS,
            GATEWAY_PODS,
            [Member(CONSUMER, net.consumer_ip), Member(PROVIDER, net.provider_ip)],
            directions=(INGRESS, EGRESS),
        )
        enforcer.start()
        haproxy = haproxy_in_netns(work, net.gateway)
        with running_gateway_agent(
            kube, OPERATOR_NS, f"egr-{PID}",
            "--address", net.gateway_consumer_ip, "--bind-address", "0.0.0.0", "--haproxy", str(haproxy),
            "--heartbeat-interval", "1", "--health-check-interval-ms", "500",
            "--debounce", "0.05", "--max-debounce", "0.2",
            prefix="vpcep-egr",
        ):  # fmt: skip
            yield Scene(kube, net, operator, enforcer)
        assert enforcer.error is None, f"the enforcer failed: {enforcer.error!r}"
    finally:
        if enforcer is not None:
            enforcer.stop()
        if operator is not None:
            if operator.alive():
                delete_namespaces(kube, PROVIDER, HOSTILE, CONSUMER, OPERATOR_NS)
            operator.stop()
        for server in servers:
            server.kill()
            server.wait()
        net.destroy()


def _apply(kube: Cluster, *objects: dict[str, Any]) -> None:
    kube.apply_text(yaml.safe_dump_all(list(objects)))


def _selectorless(name: str, address: str, port: int) -> list[dict[str, Any]]:
    """A Service without a selector and the EndpointSlice its owner writes by hand (R45's admin opt-in)."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": HOSTILE},
            "spec": {"ports": [{"name": "tcp", "protocol": "TCP", "port": BACKEND_PORT}]},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{name}-1",
                "namespace": HOSTILE,
                "labels": {"kubernetes.io/service-name": name},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [address]}],
            "ports": [{"name": "tcp", "protocol": "TCP", "port": port}],
        },
    ]


def _play_kube_proxy(kube: Cluster, gateway_ns: str, name: str) -> None:
    """The gateway node's kube-proxy for one Service: its ClusterIP DNATed to its EndpointSlice as stored now
    (the nat table of the gateway namespace holds only this)."""
    cluster_ip = kube.get("service", HOSTILE, name)["spec"]["clusterIP"]
    [endpoint_slice] = kube.get("endpointslices", HOSTILE, selector=f"kubernetes.io/service-name={name}")[
        "items"
    ]
    target = f"{endpoint_slice['endpoints'][0]['addresses'][0]}:{endpoint_slice['ports'][0]['port']}"
    sh("ip", "netns", "exec", gateway_ns, "iptables", "-t", "nat", "-F", "OUTPUT")
    sh(
        "ip", "netns", "exec", gateway_ns, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp",
        "-d", cluster_ip, "--dport", str(BACKEND_PORT), "-j", "DNAT", "--to-destination", target,
    )  # fmt: skip


def _service_refused(kube: Cluster, name: str) -> dict[str, Any]:
    def refused() -> dict[str, Any] | None:
        status = kube.status("vpces", HOSTILE, name)
        if (status.get("phase"), status.get("reason")) == ("Failed", "BackendAddressDenied"):
            return status
        return None

    return wait_for(f"{HOSTILE}/{name} Failed/BackendAddressDenied", refused, timeout=REJUDGE_SECONDS)


def _publish_hostile(kube: Cluster, name: str) -> None:
    _apply(
        kube,
        {
            "apiVersion": "vpcep.io/v1alpha1",
            "kind": "EndpointService",
            "metadata": {"name": name, "namespace": HOSTILE},
            "spec": {
                "backend": {"kind": "Service", "name": name},
                "ports": [{"protocol": "TCP", "serverPort": BACKEND_PORT, "clientPort": 80}],
                "approvalRequired": False,
            },
        },
    )


def test_the_gateway_reaches_its_backend_and_never_link_local_or_metadata_R45(scene: Scene) -> None:
    kube, net = scene.kube, scene.net
    service_name = _publish(kube, PROVIDER, "orders", approval=False)
    _connect_endpoint(kube, CONSUMER, "orders", service_name)
    accepted = wait_for("Accepted", phase_is(kube, "vpce", CONSUMER, "orders", "Accepted"))
    port = int(accepted["gatewayPorts"][0]["gatewayPort"])
    # The backend (a pod) passes bytes through the gateway under the egress policy.
    wait_for("the consumer served", lambda: outcome(net.consumer, net.gateway_consumer_ip, port) == "served")

    # From inside the gateway pod: the metadata address is refused by policy, even on the API server's port.
    assert outcome(net.gateway, METADATA, METADATA_PORT) == "policy"
    assert net.metadata_syns() == 0
    # Guard the guard: lifted, the same packets reach the metadata server (the refusal was the policy's).
    scene.enforcer.stop()
    try:
        assert outcome(net.gateway, METADATA, METADATA_PORT) == "served"
        assert net.metadata_syns() == 1
    finally:
        scene.enforcer.start()
    sh("ip", "netns", "exec", net.metadata, "iptables", "-Z", "INPUT")
    assert outcome(net.gateway, METADATA, METADATA_PORT) == "policy"
    assert outcome(net.consumer, net.gateway_consumer_ip, port) == "served"
    assert scene.enforcer.error is None, repr(scene.enforcer.error)


def test_a_hostile_provider_cannot_aim_the_gateway_at_metadata_or_the_api_server_R45(
    scene: Scene, api_server_address: str
) -> None:
    """The hostile provider's namespace is opted in for selector-less backends. It first points its slice at
    a pod (served), then rewrites it to the metadata address: the service is refused within seconds, its route
    withdrawn, the consumer sees no address, and nothing reaches the metadata server. A slice aimed at the API
    server's address is refused too."""
    kube, net = scene.kube, scene.net
    _apply(kube, *_selectorless("legacy", net.provider_ip, BACKEND_PORT))
    _play_kube_proxy(kube, net.gateway, "legacy")
    _publish_hostile(kube, "legacy")
    available = wait_for("legacy Available", phase_is(kube, "vpces", HOSTILE, "legacy", "Available"))
    _connect_endpoint(kube, CONSUMER, "legacy", available["serviceName"])
    accepted = wait_for("Accepted", phase_is(kube, "vpce", CONSUMER, "legacy", "Accepted"))
    port = int(accepted["gatewayPorts"][0]["gatewayPort"])
    route = f"vpcep-route-{accepted['endpointId']}"
    wait_for("served via the slice", lambda: outcome(net.consumer, net.gateway_consumer_ip, port) == "served")
    sh("ip", "netns", "exec", net.metadata, "iptables", "-Z", "INPUT")

    # The owner rewrites its slice to the metadata address (kube-proxy follows at once).
    _apply(kube, _selectorless("legacy", METADATA, METADATA_PORT)[1])
    _play_kube_proxy(kube, net.gateway, "legacy")
    status = _service_refused(kube, "legacy")
    assert (
        f"resolves to {METADATA} (EndpointSlice legacy-1), which is a cloud metadata address"
        in (status["message"])
    )
    assert "point its EndpointSlice at your own pods" in status["message"]
    events = kube.get("events", HOSTILE)["items"]
    assert any(e["reason"] == "BackendAddressDenied" and e["type"] == "Warning" for e in events)
    wait_for("the route withdrawn", lambda: kube.get("configmap", OPERATOR_NS, route) is None)
    wait_for(
        "the gateway port closed",
        lambda: outcome(net.consumer, net.gateway_consumer_ip, port) == "closed",
        timeout=REJUDGE_SECONDS,
    )
    waiting = kube.status("vpce", CONSUMER, "legacy")
    assert waiting["reason"] == "ServiceNotAvailable" and "BackendAddressDenied" in waiting["message"]
    assert METADATA not in str(waiting) and net.provider_ip not in str(waiting)  # R46
    assert net.metadata_syns() == 0, "a packet of the consumer's reached the metadata address"

    # A slice aimed at the API server's own address (what kube-apiserver publishes for `default/kubernetes`).
    api_server = api_server_address
    _apply(kube, *_selectorless("sneaky", api_server, BACKEND_PORT))
    _publish_hostile(kube, "sneaky")
    status = _service_refused(kube, "sneaky")
    expected = f"resolves to {api_server} (EndpointSlice sneaky-1), which is the API server's"
    assert expected in status["message"]
    assert net.metadata_syns() == 0


OPERATORS_SLICE_LABELS = {  # what the operator puts on its own (consumer) slices: anyone can write them
    "claiming the operator as its slice manager": {
        "endpointslice.kubernetes.io/managed-by": "vpcep-operator.vpcep.io"
    },
    "carrying all of the operator's labels": {
        "endpointslice.kubernetes.io/managed-by": "vpcep-operator.vpcep.io",
        "app.kubernetes.io/managed-by": "vpcep-operator",
    },
}


@pytest.mark.parametrize(
    "forged", [{}, *OPERATORS_SLICE_LABELS.values()], ids=["plain", *OPERATORS_SLICE_LABELS]
)
def test_a_slice_written_by_hand_beside_a_selector_is_judged_too_R45(
    scene: Scene, forged: dict[str, str]
) -> None:
    """Outside the admin-allowed namespaces, a provider that may write EndpointSlices (the built-in roles do
    not let it) adds one by hand to its selector Service: kube-proxy would merge it, so the operator judges
    it -- and lets the service serve again when the slice goes. Dressed as one of the operator's own slices
    (its labels are anyone's to write), it is judged all the same."""
    kube = scene.kube
    service, endpoint_slice = _selectorless("ghost", METADATA, METADATA_PORT)
    service["metadata"]["namespace"] = endpoint_slice["metadata"]["namespace"] = PROVIDER
    endpoint_slice["metadata"]["labels"].update(forged)
    service["spec"]["selector"] = {"app": "ghost"}  # no pod has it: the controller's slice stays empty
    _apply(kube, service)
    _publish(kube, PROVIDER, "ghost-pod", approval=False)  # a healthy service of the same namespace
    _apply(
        kube,
        {
            "apiVersion": "vpcep.io/v1alpha1",
            "kind": "EndpointService",
            "metadata": {"name": "ghost", "namespace": PROVIDER},
            "spec": {
                "backend": {"kind": "Service", "name": "ghost"},
                "ports": [{"protocol": "TCP", "serverPort": BACKEND_PORT, "clientPort": 80}],
            },
        },
    )
    wait_for("ghost Available", phase_is(kube, "vpces", PROVIDER, "ghost", "Available"))
    _apply(kube, endpoint_slice)
    status = wait_for(
        "ghost refused",
        lambda: (s := kube.status("vpces", PROVIDER, "ghost")).get("reason") == "BackendAddressDenied" and s,
        timeout=REJUDGE_SECONDS,
    )
    assert f"resolves to {METADATA} (EndpointSlice ghost-1)" in status["message"]
    kube.kubectl("delete", "endpointslice", "ghost-1", "-n", PROVIDER)
    wait_for("ghost Available again", phase_is(kube, "vpces", PROVIDER, "ghost", "Available"))
    assert kube.status("vpces", PROVIDER, "ghost-pod")["phase"] == "Available"


def test_a_backend_is_judged_again_when_the_api_servers_addresses_move_R45(
    scene: Scene, api_server_address: str
) -> None:
    """Level-triggered: a backend that was fine becomes the API server's address (a new API server replica):
    refused; the replica goes: served again."""
    kube = scene.kube
    elsewhere = "192.0.2.77"  # nothing of this test's data path lives there
    _apply(kube, *_selectorless("drift", elsewhere, BACKEND_PORT))
    _publish_hostile(kube, "drift")
    wait_for("drift Available", phase_is(kube, "vpces", HOSTILE, "drift", "Available"))
    original = kube.get("endpointslices", "default", "kubernetes")
    grown = {
        **original,
        "endpoints": [*original["endpoints"], {"addresses": [elsewhere], "conditions": {"ready": True}}],
    }
    _apply(kube, _bare(grown))
    try:
        _service_refused(kube, "drift")
    finally:
        _apply(kube, _bare(original))
    wait_for("drift Available again", phase_is(kube, "vpces", HOSTILE, "drift", "Available"))


def _bare(body: dict[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    return {
        **{k: v for k, v in body.items() if k != "metadata"},
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": meta.get("labels", {})},
    }


@pytest.fixture(scope="module")
def api_server_address(scene: Scene) -> Iterator[str]:
    """The API server's address as kube-apiserver publishes it in the `kubernetes` EndpointSlice of `default`.
    The testbed's API server runs without that reconciler, so the test writes it as kube-apiserver would (as
    tests/e2e does): its own address and port -- and removes it afterwards, since the session's later tests
    run their stand-in backends on that same loopback address, which no real pod has."""
    kube = scene.kube
    found = kube.get("endpointslices", "default", "kubernetes")
    if found:
        yield str(found["endpoints"][0]["addresses"][0])
        return
    server = kube.kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
    host, port = server.stdout.strip().split("//", 1)[1].rsplit(":", 1)
    _apply(
        kube,
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": "kubernetes"},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [host], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "protocol": "TCP", "port": int(port)}],
        },
    )
    try:
        yield host
    finally:
        kube.kubectl("delete", "endpointslice", "kubernetes", "-n", "default", "--ignore-not-found")


def test_with_the_gateway_channel_no_address_outside_pods_is_open_to_the_gateway_R45(scene: Scene) -> None:
    """The chart's default egress policy (the gateway channel on) has no rule for an address outside the pod
    network: an API server's address on its port is refused to the whole gateway pod, HAProxy included.
    Rendered with the channel off (the agents dial the API server themselves; without cluster access, any
    ordinary address on the API server's ports), the same packets pass: the refusal is the channel's."""
    kube, net = scene.kube, scene.net
    egress = f"{RELEASE}-gateway-egress"
    assert outcome(net.gateway, API_SERVER_STAND_IN, METADATA_PORT) == "policy"
    kube.apply_text(chart_network_policy(RELEASE, OPERATOR_NS, egress, "gateway.apiChannel.enabled=false"))
    try:
        wait_for(
            "the channel-off policy to admit the API server's port",
            lambda: outcome(net.gateway, API_SERVER_STAND_IN, METADATA_PORT) == "served",
        )
    finally:
        kube.apply_text(chart_network_policy(RELEASE, OPERATOR_NS, egress))
    wait_for(
        "the default policy back",
        lambda: outcome(net.gateway, API_SERVER_STAND_IN, METADATA_PORT) == "policy",
    )
    sh("ip", "netns", "exec", net.metadata, "iptables", "-Z", "INPUT")
    assert scene.enforcer.error is None, repr(scene.enforcer.error)

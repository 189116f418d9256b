"""R42 with real bytes: only the accepted consumer namespace reaches its gateway ports; a stranger is refused.

Everything real but the two stand-ins the machine lacks: a real API server (hack/testbed), the real
operator, a real gateway agent driving HAProxy in the gateway's network namespace, real TCP from a consumer
and a stranger network namespace. kube-proxy is played with DNAT in each client namespace (from the Services
and EndpointSlices stored in the API, as kube-proxy does on every node), and the network plugin by
tests/dataplane/policy_enforcer.py (the NetworkPolicies stored in the API as iptables rules in the gateway
namespace). The gateway default-deny policy is the chart's own, rendered by hack/render-chart.

The stranger has an accepted endpoint of its own (so its packets demonstrably reach the gateway), and tries
the consumer's gateway port directly, through the consumer's `vpce-*` ClusterIP, and through a Service and
EndpointSlice of its own aimed at that port. Refusals by policy are told apart from closed ports: the
enforcer answers "No route to host" (EHOSTUNREACH), a closed port "Connection refused".
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from integration.conftest import delete_namespaces, start_operator
from integration.helpers import REPO, Cluster, OperatorProcess, phase_is, running_gateway_agent, wait_for

from .conftest import BACKEND_SERVER
from .helpers import call, chart_network_policy
from .netns import Topology, haproxy_in_netns, netns_supported, sh, spawn
from .policy_enforcer import Member, PolicyEnforcer

pytestmark = [pytest.mark.cluster, pytest.mark.netns]

PID = os.getpid()
OPERATOR_NS = f"vpcep-iso-{PID}"
PROVIDER, CONSUMER, STRANGER = f"iso-prov-{PID}", f"iso-cons-{PID}", f"iso-strg-{PID}"
RELEASE = "vpcep"  # the chart's gateway pod labels carry the release name
GATEWAY_PODS = {"app.kubernetes.io/name": "vpcep-gateway", "app.kubernetes.io/instance": RELEASE}
BACKEND_PORT = 8080
REVOKE_SECONDS = 10  # "within seconds" (R42), generous for a loaded 2-core machine
STRANGER_NET = "10.61.3"


@dataclass
class IsolationTopology(Topology):
    """The data-plane topology plus a stranger namespace wired to the gateway; both clients route everything
    (ClusterIPs included) to the gateway side, as a pod does to its node."""

    stranger: str = ""
    stranger_ip: str = f"{STRANGER_NET}.2"
    gateway_stranger_ip: str = f"{STRANGER_NET}.1"

    def _build(self) -> None:
        super()._build()
        self.stranger = f"vpcep-s-{self.tag}"
        sh("ip", "netns", "add", self.stranger)
        self.ip(self.stranger, "link", "set", "lo", "up")
        self._veth(
            f"s{self.tag}",
            self.stranger,
            f"{self.stranger_ip}/24",
            f"gs{self.tag}",
            f"{self.gateway_stranger_ip}/24",
        )
        self.ip(self.consumer, "route", "add", "default", "via", self.gateway_consumer_ip)
        self.ip(self.stranger, "route", "add", "default", "via", self.gateway_stranger_ip)

    def destroy(self) -> None:
        if self.stranger:
            for pid in sh("ip", "netns", "pids", self.stranger, check=False).stdout.split():
                os.kill(int(pid), 9)
            sh("ip", "netns", "del", self.stranger, check=False)
        super().destroy()


def outcome(ns: str, host: str, port: int) -> str:
    """'served' (the backend's greeting and echo came back), 'policy' (refused by the network policy),
    'closed' (no listener), or what else happened."""
    try:
        call(ns, host, port, timeout=2.0)
        return "served"
    except OSError as error:
        if error.errno == errno.EHOSTUNREACH:
            return "policy"
        if error.errno == errno.ECONNREFUSED:
            return "closed"
        return f"other: {error!r}"
    except Exception as error:
        return f"other: {error!r}"


def play_kube_proxy(kube: Cluster, netns: str, namespace: str, service: str) -> tuple[str, int]:
    """DNAT in `netns` for one Service, from its ClusterIP and EndpointSlice as stored (kube-proxy's job);
    returns the ClusterIP and port a client dials."""
    body = kube.get("service", namespace, service)
    cluster_ip = body["spec"]["clusterIP"]
    slices = kube.get("endpointslices", namespace, selector=f"kubernetes.io/service-name={service}")["items"]
    [port] = body["spec"]["ports"]
    [endpoint_slice] = slices
    [target] = [p["port"] for p in endpoint_slice["ports"] if p.get("name") == port.get("name")]
    address = endpoint_slice["endpoints"][0]["addresses"][0]
    sh(
        "ip", "netns", "exec", netns, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", cluster_ip,
        "--dport", str(port["port"]), "-j", "DNAT", "--to-destination", f"{address}:{target}",
    )  # fmt: skip
    return cluster_ip, int(port["port"])


@dataclass
class Scene:
    kube: Cluster
    net: IsolationTopology
    operator: OperatorProcess
    enforcer: PolicyEnforcer


@pytest.fixture(scope="module")
def scene(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    reason = netns_supported()
    if reason:
        message = f"DATA-PLANE ISOLATION TESTS SKIPPED: {reason}. They need root and 'ip netns'."
        warnings.warn(message, stacklevel=1)
        print(f"\n*** {message} ***\n", file=sys.stderr)
        pytest.skip(message)
    kube = Cluster(str(cluster.kubeconfig), cluster.kubectl)
    kube.kubectl("apply", "-f", str(REPO / "crds"))
    for crd in ("endpointservices", "endpoints", "whitelists", "endpointconnections"):
        kube.kubectl("wait", "--for=condition=Established", f"crd/{crd}.vpcep.io", "--timeout=30s")
    work = tmp_path_factory.mktemp("isolation")
    net = IsolationTopology.create()
    backend = spawn(
        net.provider,
        [sys.executable, str(BACKEND_SERVER), "--listen", f"0.0.0.0:{BACKEND_PORT}", "--name", "provider"],
        stdout=subprocess.PIPE,
    )
    operator: OperatorProcess | None = None
    enforcer: PolicyEnforcer | None = None
    try:
        assert backend.stdout is not None and backend.stdout.readline().strip() == b"READY"
        kube.kubectl("create", "namespace", OPERATOR_NS)
        kube.namespace(PROVIDER, f"shop-{PID}")
        kube.namespace(CONSUMER, f"shop-{PID}")
        kube.namespace(STRANGER, f"mallory-{PID}")
        kube.apply_text(chart_network_policy(RELEASE, OPERATOR_NS, f"{RELEASE}-gateway-default-deny"))
        operator = start_operator(
            kube,
            OPERATOR_NS,
            config={
                "gatewayPodLabels": GATEWAY_PODS,
                "gatewayPorts": {"first": 24000, "last": 24099},
                "gatewayHeartbeatTimeoutSeconds": 10,
            },
        )
        enforcer = PolicyEnforcer(
            cluster.api_client(),
            net.gateway,
            OPERATOR_NS,
            GATEWAY_PODS,
            [Member(CONSUMER, net.consumer_ip), Member(STRANGER, net.stranger_ip)],
        )
        enforcer.start()
        haproxy = haproxy_in_netns(work, net.gateway)
        with running_gateway_agent(
            kube, OPERATOR_NS, f"iso-{PID}",
            "--address", net.gateway_consumer_ip, "--bind-address", "0.0.0.0", "--haproxy", str(haproxy),
            "--heartbeat-interval", "1", "--health-check-interval-ms", "500",
            "--debounce", "0.05", "--max-debounce", "0.2",
            prefix="vpcep-iso",
        ):  # fmt: skip
            yield Scene(kube, net, operator, enforcer)
        assert enforcer.error is None, f"the enforcer failed: {enforcer.error!r}"
    finally:
        if enforcer is not None:
            enforcer.stop()
        if operator is not None:
            if operator.alive():
                delete_namespaces(kube, PROVIDER, CONSUMER, STRANGER, OPERATOR_NS)
            operator.stop()
        backend.kill()
        backend.wait()
        net.destroy()


def _publish(kube: Cluster, namespace: str, name: str, approval: bool) -> str:
    """A Pod backend (its address is the provider network namespace's: no kubelet here) and its service."""
    kube.apply_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
                "spec": {"containers": [{"name": "server", "image": "example.invalid/echo"}]},
            }
        )
    )
    kube.kubectl(
        "patch", "pod", name, "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"podIP": Topology.provider_ip, "phase": "Running"}}),
    )  # fmt: skip
    kube.apply_text(
        yaml.safe_dump(
            {
                "apiVersion": "vpcep.io/v1alpha1",
                "kind": "EndpointService",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "backend": {"kind": "Pod", "name": name},
                    "ports": [{"protocol": "TCP", "serverPort": BACKEND_PORT, "clientPort": 80}],
                    "approvalRequired": approval,
                },
            }
        )
    )
    status = wait_for(f"{namespace}/{name} Available", phase_is(kube, "vpces", namespace, name, "Available"))
    return str(status["serviceName"])


def _connect_endpoint(kube: Cluster, namespace: str, name: str, service_name: str) -> None:
    kube.apply_text(
        yaml.safe_dump(
            {
                "apiVersion": "vpcep.io/v1alpha1",
                "kind": "Endpoint",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"serviceName": service_name},
            }
        )
    )


def _hijack(kube: Cluster, gateway_address: str, gateway_port: int) -> None:
    """The stranger's own selector-less Service and EndpointSlice, aimed at another tenant's gateway port."""
    kube.apply_text(
        yaml.safe_dump_all(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": "hijack", "namespace": STRANGER},
                    "spec": {"ports": [{"name": "tcp-80", "protocol": "TCP", "port": 80}]},
                },
                {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "name": "hijack-1",
                        "namespace": STRANGER,
                        "labels": {"kubernetes.io/service-name": "hijack"},
                    },
                    "addressType": "IPv4",
                    "endpoints": [{"addresses": [gateway_address]}],
                    "ports": [{"name": "tcp-80", "protocol": "TCP", "port": gateway_port}],
                },
            ]
        )
    )


def test_only_the_accepted_consumer_namespace_reaches_its_gateway_port_R42(scene: Scene) -> None:
    kube, net = scene.kube, scene.net
    gateway = net.gateway_consumer_ip
    # The provider requires approval; the stranger (another account) publishes a service of its own.
    shared = _publish(kube, PROVIDER, "orders", approval=True)
    own = _publish(kube, STRANGER, "mine", approval=False)

    _connect_endpoint(kube, CONSUMER, "orders", shared)
    pending = wait_for("PendingAcceptance", phase_is(kube, "vpce", CONSUMER, "orders", "PendingAcceptance"))
    wait_for("the connection", lambda: kube.get("vpcec", PROVIDER, pending["endpointId"]))
    kube.apply_text(
        yaml.safe_dump(
            {
                "apiVersion": "vpcep.io/v1alpha1",
                "kind": "EndpointConnection",
                "metadata": {"name": pending["endpointId"], "namespace": PROVIDER},
                "spec": {"decision": "Accept"},
            }
        )
    )
    accepted = wait_for("Accepted", phase_is(kube, "vpce", CONSUMER, "orders", "Accepted"))
    victim_port = int(accepted["gatewayPorts"][0]["gatewayPort"])
    _connect_endpoint(kube, STRANGER, "mine", own)
    mine = wait_for(
        "the stranger's own endpoint Accepted", phase_is(kube, "vpce", STRANGER, "mine", "Accepted")
    )
    own_port = int(mine["gatewayPorts"][0]["gatewayPort"])

    # kube-proxy programs every Service on every node: the consumer's vpce ClusterIP exists in both clients.
    node_ip, client_port = play_kube_proxy(kube, net.consumer, CONSUMER, "vpce-orders")
    play_kube_proxy(kube, net.stranger, CONSUMER, "vpce-orders")
    own_ip, own_client_port = play_kube_proxy(kube, net.stranger, STRANGER, "vpce-mine")

    # The accepted consumer passes bytes through its node IP, and the stranger through its own endpoint: the
    # gateway serves both ports and the stranger's packets reach the gateway.
    wait_for(
        "the consumer served", lambda: outcome(net.consumer, node_ip, client_port) == "served", timeout=15
    )
    wait_for(
        "the stranger served on its own", lambda: outcome(net.stranger, own_ip, own_client_port) == "served"
    )
    assert outcome(net.consumer, gateway, victim_port) == "served"

    # The stranger tries the consumer's gateway port: directly, and through the consumer's vpce ClusterIP.
    assert outcome(net.stranger, gateway, victim_port) == "policy"
    assert outcome(net.stranger, node_ip, client_port) == "policy"
    # ... and through a Service and EndpointSlice of its own aimed at that port (DNAT to the same port).
    _hijack(kube, gateway, victim_port)
    hijack_ip, hijack_port = play_kube_proxy(kube, net.stranger, STRANGER, "hijack")
    assert outcome(net.stranger, hijack_ip, hijack_port) == "policy"
    # The consumer is admitted to its own ports only, not to the stranger's.
    assert outcome(net.consumer, gateway, own_port) == "policy"

    # The provider rejects: the consumer's new connections are refused within seconds, by the policy (not
    # only by the route going away, which would answer "Connection refused").
    kube.kubectl(
        "patch", "vpcec", pending["endpointId"], "-n", PROVIDER, "--type=merge",
        "-p", '{"spec":{"decision":"Reject"}}',
    )  # fmt: skip
    wait_for(
        "the rejected consumer refused by policy",
        lambda: outcome(net.consumer, node_ip, client_port) == "policy",
        timeout=REVOKE_SECONDS,
        interval=0.1,
    )
    assert kube.status("vpce", CONSUMER, "orders")["phase"] == "Rejected"
    # Nothing of this touched the stranger's own endpoint.
    assert outcome(net.stranger, own_ip, own_client_port) == "served"
    assert scene.enforcer.error is None, repr(scene.enforcer.error)


def test_the_enforcer_is_what_refuses(scene: Scene) -> None:
    """Guards the guard: with the stand-in plugin's rules lifted, the stranger's packets reach the gateway
    port (so the refusals above are the policy's, not the topology's)."""
    kube, net = scene.kube, scene.net
    _connect_endpoint(kube, STRANGER, "again", kube.status("vpces", STRANGER, "mine")["serviceName"])
    status = wait_for("Accepted", phase_is(kube, "vpce", STRANGER, "again", "Accepted"))
    port = int(status["gatewayPorts"][0]["gatewayPort"])
    assert outcome(net.consumer, net.gateway_consumer_ip, port) == "policy"
    scene.enforcer.stop()
    try:
        assert outcome(net.consumer, net.gateway_consumer_ip, port) == "served"
    finally:
        scene.enforcer.start()

"""A test-side stand-in for a NetworkPolicy-enforcing network plugin (Calico, Cilium...); not product code.

No network plugin runs on the test machine, and NetworkPolicy objects stored in the API server change
nothing by themselves. The data-plane tests already stand in for kube-proxy (DNAT in a network namespace);
this stands in for the plugin, for one pod: the gateway. It reads the NetworkPolicies stored in the API
server (polling) and turns those that select the gateway pod into iptables rules in the gateway's network
namespace, as a plugin does on a node:

- a pod no Ingress policy selects accepts everything; once one selects it, only what some rule admits passes
  (policies add up);
- a peer's namespaceSelector/podSelector means the addresses of the test's "pods": the test's own map of
  network-namespace addresses to (namespace, labels) -- there is no kubelet, so nothing else knows;
- an ipBlock is its CIDR (no `except`: not needed here, refused loudly);
- ports: protocol, port and endPort (named ports are refused loudly).

Established connections pass (conntrack), as with the common plugins: a policy change refuses new
connections. A refused connection is answered with ICMP admin-prohibited, so the client sees "No route to
host" (EHOSTUNREACH): a test can tell a refusal by policy from a closed port (ECONNREFUSED).
"""

from __future__ import annotations

import ipaddress
import subprocess
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CHAIN = "VPCEP-NETPOL"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Member:
    """A "pod" of the test: a source address inside one of its network namespaces."""

    namespace: str
    address: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Allow:
    source: str  # CIDR
    protocol: str | None  # None: any
    first_port: int | None  # None: every port
    last_port: int | None


def _matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    if selector is None:
        return True
    if selector.get("matchExpressions"):
        raise NotImplementedError("the stand-in enforcer supports matchLabels only")
    return all(labels.get(key) == value for key, value in (selector.get("matchLabels") or {}).items())


def _sources(
    peer: Mapping[str, Any],
    policy_namespace: str,
    members: Sequence[Member],
    namespace_labels: Mapping[str, Mapping[str, str]],
) -> list[str]:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        if block.get("except"):
            raise NotImplementedError("the stand-in enforcer does not support ipBlock.except")
        return [str(ipaddress.ip_network(block["cidr"], strict=False))]
    found = []
    for member in members:
        if "namespaceSelector" in peer:
            labels = {**namespace_labels.get(member.namespace, {}), NAMESPACE_NAME_LABEL: member.namespace}
            if not _matches(peer["namespaceSelector"], labels):
                continue
        elif member.namespace != policy_namespace:  # a podSelector alone: pods of the policy's namespace
            continue
        if _matches(peer.get("podSelector"), member.labels):
            found.append(f"{member.address}/32")
    return found


def _ports(rule: Mapping[str, Any]) -> list[tuple[str | None, int | None, int | None]]:
    entries = rule.get("ports") or []
    if not entries:
        return [(None, None, None)]
    ports = []
    for entry in entries:
        port = entry.get("port")
        if isinstance(port, str):
            raise NotImplementedError("the stand-in enforcer does not resolve named ports")
        ports.append((entry.get("protocol", "TCP"), port, entry.get("endPort", port)))
    return ports


def admitted(
    policies: Iterable[Mapping[str, Any]],
    pod_namespace: str,
    pod_labels: Mapping[str, str],
    members: Sequence[Member],
    namespace_labels: Mapping[str, Mapping[str, str]],
) -> list[Allow] | None:
    """What may reach the pod, by NetworkPolicy semantics; None when no Ingress policy selects it (open)."""
    selecting = [
        policy
        for policy in policies
        if policy["metadata"]["namespace"] == pod_namespace
        and _matches((policy.get("spec") or {}).get("podSelector") or {}, pod_labels)
        and "Ingress" in ((policy.get("spec") or {}).get("policyTypes") or ["Ingress"])
    ]
    if not selecting:
        return None
    allows = []
    for policy in selecting:
        for rule in policy["spec"].get("ingress") or []:
            peers = rule.get("from") or []
            sources = (
                ["0.0.0.0/0"]
                if not peers
                else [s for peer in peers for s in _sources(peer, pod_namespace, members, namespace_labels)]
            )
            for source in sources:
                for protocol, first, last in _ports(rule):
                    allows.append(Allow(source, protocol, first, last))
    return allows


def iptables_restore_text(allows: list[Allow] | None) -> str:
    """The filter-table chain for `iptables-restore --noflush`: the chain is rewritten whole, atomically."""
    lines = ["*filter", f":{CHAIN} - [0:0]", f"-F {CHAIN}"]
    if allows is not None:
        lines += [
            f"-A {CHAIN} -i lo -j RETURN",
            f"-A {CHAIN} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN",
        ]
        for allow in allows:
            match = f"-A {CHAIN} -s {allow.source}"
            if allow.protocol is not None:
                match += f" -p {allow.protocol.lower()}"
                if allow.first_port is not None:
                    match += f" --dport {allow.first_port}:{allow.last_port or allow.first_port}"
            lines.append(f"{match} -j RETURN")
        lines.append(f"-A {CHAIN} -j REJECT --reject-with icmp-admin-prohibited")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


class PolicyEnforcer:
    """Polls the API server and keeps the gateway namespace's iptables in line with the stored policies."""

    def __init__(
        self,
        api_client: Any,
        netns: str,
        pod_namespace: str,
        pod_labels: Mapping[str, str],
        members: Sequence[Member],
        interval: float = 0.2,
    ) -> None:
        from kubernetes import client

        self._networking = client.NetworkingV1Api(api_client)
        self._core = client.CoreV1Api(api_client)
        self._api_client = api_client
        self.netns = netns
        self.pod_namespace = pod_namespace
        self.pod_labels = dict(pod_labels)
        self.members = list(members)
        self.interval = interval
        self.rules = ""
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._ip("iptables", "-N", CHAIN, check=False)
        self._ip("iptables", "-I", "INPUT", "-j", CHAIN)
        self.rules = ""
        self.sync()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="policy enforcer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._ip("iptables", "-D", "INPUT", "-j", CHAIN, check=False)
        self._ip("iptables", "-F", CHAIN, check=False)
        self._ip("iptables", "-X", CHAIN, check=False)

    def sync(self) -> None:
        policies = self._api_client.sanitize_for_serialization(
            self._networking.list_namespaced_network_policy(self.pod_namespace).items
        )
        namespace_labels = {
            ns.metadata.name: dict(ns.metadata.labels or {}) for ns in self._core.list_namespace().items
        }
        allows = admitted(policies, self.pod_namespace, self.pod_labels, self.members, namespace_labels)
        text = iptables_restore_text(allows)
        if text != self.rules:
            subprocess.run(
                ["ip", "netns", "exec", self.netns, "iptables-restore", "--noflush"],
                input=text,
                text=True,
                check=True,
                capture_output=True,
            )
            self.rules = text

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync()
            except Exception as error:
                self.error = error

    def _ip(self, *argv: str, check: bool = True) -> None:
        subprocess.run(["ip", "netns", "exec", self.netns, *argv], check=check, capture_output=True)

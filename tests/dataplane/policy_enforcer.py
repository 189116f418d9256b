"""A test-side stand-in for a NetworkPolicy-enforcing network plugin (Calico, Cilium...); not product code.

No network plugin runs on the test machine, and NetworkPolicy objects stored in the API server change
nothing by themselves. The data-plane tests already stand in for kube-proxy (DNAT in a network namespace);
this stands in for the plugin, for one pod at a time (the gateway, or the operator for its webhook port). It
reads the NetworkPolicies stored in the API server (polling) and turns those that select the pod into iptables
rules in the pod's network namespace, as a plugin does on a node:

- per direction (Ingress: INPUT, who may connect to the pod; Egress: OUTPUT, where the pod may connect), a pod
  no policy of that direction selects is open; once one selects it, only what some rule admits passes
  (policies add up). A policy is of a direction by its policyTypes (default: Ingress, and Egress when it has
  egress rules), as the API defines;
- a peer's namespaceSelector/podSelector means the addresses of the test's "pods": the test's own map of
  network-namespace addresses to (namespace, labels) -- there is no kubelet, so nothing else knows;
- an ipBlock is its CIDR minus its `except` CIDRs (expanded into the CIDRs that remain); IPv4 only is
  programmed (the test networks are IPv4; an IPv6 block admits nothing here);
- ports: protocol, port and endPort (named ports are refused loudly).

Egress is judged after kube-proxy's DNAT (the nat table's OUTPUT runs before the filter table's), as the
common plugins judge the translated destination. Established connections pass (conntrack), as with the
common plugins: a policy change refuses new connections. A refused connection is answered with ICMP
admin-prohibited, so the client sees "No route to host" (EHOSTUNREACH): a test can tell a refusal by policy
from a closed port (ECONNREFUSED).
"""

from __future__ import annotations

import ipaddress
import subprocess
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CHAIN = "VPCEP-NETPOL"  # ingress
EGRESS_CHAIN = "VPCEP-NETPOL-OUT"
INGRESS, EGRESS = "Ingress", "Egress"
# direction -> (rules key, peers key, chain, the built-in chain it hooks, address match, loopback match)
DIRECTIONS = {
    INGRESS: ("ingress", "from", CHAIN, "INPUT", "-s", "-i lo"),
    EGRESS: ("egress", "to", EGRESS_CHAIN, "OUTPUT", "-d", "-o lo"),
}
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Member:
    """A "pod" of the test: a source address inside one of its network namespaces."""

    namespace: str
    address: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Allow:
    peer: str  # CIDR: the source of an ingress rule, the destination of an egress rule
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
        return _subtract(block["cidr"], block.get("except") or [])
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


def _subtract(cidr: str, excepted: Sequence[str]) -> list[str]:
    """The CIDRs of `cidr` outside every `excepted` one (ipBlock.except), fewest first."""
    remaining = [ipaddress.ip_network(cidr, strict=False)]
    for text in excepted:
        hole = ipaddress.ip_network(text, strict=False)
        kept: list[Any] = []
        for network in remaining:
            if network.version != hole.version or not network.overlaps(hole):
                kept.append(network)
            elif not hole.supernet_of(network):  # type: ignore[arg-type]
                kept.extend(network.address_exclude(hole))  # type: ignore[arg-type]
        remaining = kept
    return [str(network) for network in sorted(remaining, key=lambda n: (n.version, n))]


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


def _policy_types(spec: Mapping[str, Any]) -> list[str]:
    """The API's default: Ingress always, Egress when the policy has egress rules."""
    return list(spec.get("policyTypes") or [INGRESS, *([EGRESS] if spec.get("egress") else [])])


def admitted(
    policies: Iterable[Mapping[str, Any]],
    pod_namespace: str,
    pod_labels: Mapping[str, str],
    members: Sequence[Member],
    namespace_labels: Mapping[str, Mapping[str, str]],
    direction: str = INGRESS,
) -> list[Allow] | None:
    """What may reach the pod (Ingress), or what the pod may reach (Egress), by NetworkPolicy semantics;
    None when no policy of that direction selects it (open)."""
    rules_key, peers_key = DIRECTIONS[direction][:2]
    selecting = [
        policy
        for policy in policies
        if policy["metadata"]["namespace"] == pod_namespace
        and _matches((policy.get("spec") or {}).get("podSelector") or {}, pod_labels)
        and direction in _policy_types(policy.get("spec") or {})
    ]
    if not selecting:
        return None
    allows = []
    for policy in selecting:
        for rule in policy["spec"].get(rules_key) or []:
            peers = rule.get(peers_key) or []
            sources = (
                ["0.0.0.0/0"]
                if not peers
                else [s for peer in peers for s in _sources(peer, pod_namespace, members, namespace_labels)]
            )
            for source in sources:
                for protocol, first, last in _ports(rule):
                    allows.append(Allow(source, protocol, first, last))
    return allows


def iptables_restore_text(allows: list[Allow] | None, direction: str = INGRESS) -> str:
    """The filter-table chain for `iptables-restore --noflush`: the chain is rewritten whole, atomically."""
    _, _, chain, _, address, loopback = DIRECTIONS[direction]
    lines = ["*filter", f":{chain} - [0:0]", f"-F {chain}"]
    if allows is not None:
        lines += [
            f"-A {chain} {loopback} -j RETURN",
            f"-A {chain} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN",
        ]
        for allow in allows:
            if ipaddress.ip_network(allow.peer).version != 4:
                continue  # iptables is IPv4; the test networks are too
            match = f"-A {chain} {address} {allow.peer}"
            if allow.protocol is not None:
                match += f" -p {allow.protocol.lower()}"
                if allow.first_port is not None:
                    match += f" --dport {allow.first_port}:{allow.last_port or allow.first_port}"
            lines.append(f"{match} -j RETURN")
        lines.append(f"-A {chain} -j REJECT --reject-with icmp-admin-prohibited")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


class PolicyEnforcer:
    """Polls the API server and keeps the pod's network namespace's iptables in line with the stored
    policies, for the directions asked (the gateway isolation tests began with Ingress only)."""

    def __init__(
        self,
        api_client: Any,
        netns: str,
        pod_namespace: str,
        pod_labels: Mapping[str, str],
        members: Sequence[Member],
        interval: float = 0.2,
        directions: Sequence[str] = (INGRESS,),
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
        self.directions = tuple(directions)
        self.rules: dict[str, str] = {}
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        for direction in self.directions:
            _, _, chain, hook, _, _ = DIRECTIONS[direction]
            self._ip("iptables", "-N", chain, check=False)
            self._ip("iptables", "-I", hook, "-j", chain)
        self.rules = {}
        self.sync()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="policy enforcer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for direction in self.directions:
            _, _, chain, hook, _, _ = DIRECTIONS[direction]
            self._ip("iptables", "-D", hook, "-j", chain, check=False)
            self._ip("iptables", "-F", chain, check=False)
            self._ip("iptables", "-X", chain, check=False)

    def sync(self) -> None:
        policies = self._api_client.sanitize_for_serialization(
            self._networking.list_namespaced_network_policy(self.pod_namespace).items
        )
        namespace_labels = {
            ns.metadata.name: dict(ns.metadata.labels or {}) for ns in self._core.list_namespace().items
        }
        for direction in self.directions:
            allows = admitted(
                policies, self.pod_namespace, self.pod_labels, self.members, namespace_labels, direction
            )
            text = iptables_restore_text(allows, direction)
            if text != self.rules.get(direction):
                subprocess.run(
                    ["ip", "netns", "exec", self.netns, "iptables-restore", "--noflush"],
                    input=text,
                    text=True,
                    check=True,
                    capture_output=True,
                )
                self.rules[direction] = text

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync()
            except Exception as error:
                self.error = error

    def _ip(self, *argv: str, check: bool = True) -> None:
        subprocess.run(["ip", "netns", "exec", self.netns, *argv], check=check, capture_output=True)

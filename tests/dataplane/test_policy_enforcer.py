"""The stand-in network plugin's translation (tests/dataplane/policy_enforcer.py): NetworkPolicy semantics in,
iptables rules out. Checked here without root so the data-plane isolation tests rest on a tested stand-in."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from vpcep.builders.gateway_ingress import build_gateway_ingress_policy

from .policy_enforcer import CHAIN, EGRESS_CHAIN, Allow, Member, admitted, iptables_restore_text

GATEWAY = {"app": "gw"}
MEMBERS = [Member("shop", "10.0.0.2"), Member("shop", "10.0.0.3"), Member("mallory", "10.0.9.9")]


def _policy(name: str, spec: dict[str, Any], namespace: str = "vpcep") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


def test_a_pod_no_policy_selects_is_open() -> None:
    other = _policy("p", {"podSelector": {"matchLabels": {"app": "else"}}, "policyTypes": ["Ingress"]})
    elsewhere = _policy("q", {"podSelector": {}, "policyTypes": ["Ingress"]}, namespace="shop")
    assert admitted([other, elsewhere], "vpcep", GATEWAY, MEMBERS, {}) is None
    assert f"-A {CHAIN}" not in iptables_restore_text(None)


def test_default_deny_admits_nothing_and_rejects_the_rest() -> None:
    deny = _policy(
        "deny", {"podSelector": {"matchLabels": GATEWAY}, "policyTypes": ["Ingress"], "ingress": []}
    )
    allows = admitted([deny], "vpcep", GATEWAY, MEMBERS, {})
    assert allows == []
    rules = iptables_restore_text(allows)
    assert rules.rstrip().endswith(f"-A {CHAIN} -j REJECT --reject-with icmp-admin-prohibited\nCOMMIT")


def test_the_operators_policy_admits_the_namespaces_addresses_to_its_port_runs() -> None:
    policy = build_gateway_ingress_policy("shop", [20000, 20001, 20005], "vpcep", GATEWAY)
    allows = admitted([policy], "vpcep", GATEWAY, MEMBERS, {})
    assert allows == [
        Allow(f"{address}/32", "TCP", first, last)
        for address in ("10.0.0.2", "10.0.0.3")
        for first, last in ((20000, 20001), (20005, 20005))
    ]
    assert "-A VPCEP-NETPOL -s 10.0.0.2/32 -p tcp --dport 20000:20001 -j RETURN" in iptables_restore_text(
        allows
    )


def test_peers_and_ports_by_networkpolicy_semantics() -> None:
    spec = {
        "podSelector": {},
        "ingress": [
            {"from": [{"ipBlock": {"cidr": "192.168.1.7/24"}}]},  # all ports
            {"from": [{"namespaceSelector": {"matchLabels": {"team": "red"}}}], "ports": [{"port": 80}]},
            {"ports": [{"protocol": "TCP", "port": 9000}]},  # every source
        ],
    }
    allows = admitted([_policy("p", spec)], "vpcep", GATEWAY, MEMBERS, {"mallory": {"team": "red"}})
    assert allows == [
        Allow("192.168.1.0/24", None, None, None),
        Allow("10.0.9.9/32", "TCP", 80, 80),
        Allow("0.0.0.0/0", "TCP", 9000, 9000),
    ]


@pytest.mark.parametrize(
    "spec",
    [
        {"podSelector": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}},
        {"podSelector": {}, "ingress": [{"ports": [{"port": "http"}]}]},
    ],
)
def test_what_the_stand_in_cannot_enforce_is_refused_loudly(spec: dict[str, Any]) -> None:
    with pytest.raises(NotImplementedError):
        admitted([_policy("p", spec)], "vpcep", GATEWAY, MEMBERS, {})


def test_an_ipblock_except_is_the_cidrs_that_remain() -> None:
    spec = {
        "podSelector": {},
        "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16", "10.0.0.0/9"]}}]}],
    }
    [policy] = [_policy("p", spec)]
    peers = [allow.peer for allow in admitted([policy], "vpcep", GATEWAY, MEMBERS, {}) or []]
    covered = {ipaddress.ip_network(p) for p in peers}
    assert sum(n.num_addresses for n in covered) == (1 << 24) - (1 << 23)  # half of 10/8 is excepted
    for address, inside in (("10.128.0.1", True), ("10.1.2.3", False), ("10.0.0.1", False)):
        assert any(ipaddress.ip_address(address) in n for n in covered) is inside


def test_egress_rules_program_the_output_chain_by_destination() -> None:
    """The chart's gateway egress shape (R45): pods of any namespace, and the API server's ports anywhere
    outside link-local and metadata; a policy with egress rules and no policyTypes is an Egress policy too."""
    spec = {
        "podSelector": {"matchLabels": GATEWAY},
        "egress": [
            {"to": [{"namespaceSelector": {}}]},
            {
                "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}}],
                "ports": [{"protocol": "TCP", "port": 443}],
            },
        ],
    }
    policy = _policy("egress", spec)
    assert admitted([policy], "vpcep", GATEWAY, MEMBERS, {}, direction="Ingress") == []
    allows = admitted([policy], "vpcep", GATEWAY, MEMBERS, {}, direction="Egress") or []
    assert Allow("10.0.9.9/32", None, None, None) in allows  # a pod of another namespace
    api = [a for a in allows if a.first_port == 443]
    assert not any(ipaddress.ip_address("169.254.169.254") in ipaddress.ip_network(a.peer) for a in api)
    assert any(ipaddress.ip_address("203.0.113.5") in ipaddress.ip_network(a.peer) for a in api)
    rules = iptables_restore_text(allows, direction="Egress")
    assert f"-A {EGRESS_CHAIN} -o lo -j RETURN" in rules
    assert f"-A {EGRESS_CHAIN} -d 10.0.9.9/32 -j RETURN" in rules
    assert rules.rstrip().endswith(f"-A {EGRESS_CHAIN} -j REJECT --reject-with icmp-admin-prohibited\nCOMMIT")

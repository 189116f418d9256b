"""R45: the gateway pods' egress NetworkPolicy, as rendered: DNS, pods (the backends) and, by default, the
operator pods' gateway channel -- no address outside the pod network at all; with the channel off, the API
server on its ports only. Never link-local, cloud metadata or admin-listed CIDRs. (Applied on a real API
server by test_chart_cluster.py::test_every_rendered_object_is_stored; enforced only where a network plugin
does.)"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from chart_rendering import Rendered, RenderError, render

METADATA = ["169.254.169.254", "169.254.0.23", "100.100.100.200", "fe80::1", "fd00:ec2::254"]


def _policy(rendered: Rendered) -> dict[str, Any]:
    return rendered.one("NetworkPolicy", "vpcep-gateway-egress")


def _non_pod_rules(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for rule in policy["spec"]["egress"] if any("ipBlock" in peer for peer in rule["to"])]


def _reachable(policy: dict[str, Any], address: str, port: int) -> bool:
    """Whether an ipBlock rule admits address:port (pods are matched by selectors, not addresses)."""
    ip = ipaddress.ip_address(address)
    for rule in _non_pod_rules(policy):
        ports = {p["port"] for p in rule.get("ports", [])}
        if ports and port not in ports:
            continue
        for peer in rule["to"]:
            block = peer["ipBlock"]
            network = ipaddress.ip_network(block["cidr"])
            if ip.version != network.version or ip not in network:
                continue
            excepted = [ipaddress.ip_network(c) for c in block.get("except", [])]
            if not any(ip.version == e.version and ip in e for e in excepted):
                return True
    return False


CHANNEL_OFF = "gateway.apiChannel.enabled=false"


def test_by_default_the_gateways_egress_is_dns_pods_and_the_channel_and_no_address_outside_pods(
    defaults: Rendered,
) -> None:
    policy = _policy(defaults)
    spec = policy["spec"]
    dns, pods, channel = spec["egress"]
    assert {(p["protocol"], p["port"]) for p in dns["ports"]} == {("UDP", 53), ("TCP", 53)}
    assert pods == {"to": [{"namespaceSelector": {}}]}
    assert channel["ports"] == [{"protocol": "TCP", "port": 9444}]
    assert _non_pod_rules(policy) == []
    for address in ("10.0.0.1", "2001:db8::1", "203.0.113.9"):
        assert not _reachable(policy, address, 443) and not _reachable(policy, address, 6443)


def test_with_the_channel_off_the_gateways_egress_is_dns_pods_and_the_api_server_ports_only() -> None:
    policy = _policy(render(CHANNEL_OFF))
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Egress"]
    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "vpcep-gateway"
    dns, pods, api = spec["egress"]
    assert {(p["protocol"], p["port"]) for p in dns["ports"]} == {("UDP", 53), ("TCP", 53)}
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert pods == {"to": [{"namespaceSelector": {}}]}  # any pod, any port: provider policies narrow (R31)
    assert {p["port"] for p in api["ports"]} == {443, 6443}
    # The API server's ports, on any ordinary address; nothing else off-pod.
    assert _reachable(policy, "10.0.0.1", 443) and _reachable(policy, "2001:db8::1", 6443)
    assert not _reachable(policy, "10.0.0.1", 22) and not _reachable(policy, "203.0.113.9", 80)


@pytest.mark.parametrize("address", METADATA)
def test_link_local_and_metadata_addresses_are_never_reachable(defaults: Rendered, address: str) -> None:
    for port in (80, 443, 6443):
        assert not _reachable(_policy(defaults), address, port)


def test_admin_listed_cidrs_are_excluded_by_family_and_the_api_server_can_be_pinned() -> None:
    rendered = render(
        "gateway.egressPolicy.deniedCIDRs[0]=10.20.0.0/16",
        "gateway.egressPolicy.deniedCIDRs[1]=fd12::/16",
        CHANNEL_OFF,
    )
    policy = _policy(rendered)
    assert not _reachable(policy, "10.20.3.4", 443) and not _reachable(policy, "fd12::5", 443)
    assert _reachable(policy, "10.21.0.1", 443)
    pinned = _policy(render("gateway.egressPolicy.apiServer.cidrs[0]=10.0.0.1/32", CHANNEL_OFF))
    assert _reachable(pinned, "10.0.0.1", 443) and not _reachable(pinned, "10.0.0.2", 443)


def test_it_can_be_turned_off_and_bad_cidrs_are_refused_naming_the_key() -> None:
    assert "vpcep-gateway-egress" not in render("gateway.egressPolicy.enabled=false").names("NetworkPolicy")
    with pytest.raises(RenderError, match=r"/gateway/egressPolicy/deniedCIDRs"):
        render("gateway.egressPolicy.deniedCIDRs[0]=not-a-cidr")


def test_selectorless_backend_namespaces_reach_the_operator_config() -> None:
    from chart_rendering import operator_config

    config = operator_config(render("backends.selectorlessNamespaces[0]=legacy"))
    assert config["selectorlessBackendNamespaces"] == ["legacy"]
    assert operator_config(render())["selectorlessBackendNamespaces"] == []


def test_denied_cidrs_reach_the_operator_and_every_gateway_agent_R45() -> None:
    """One admin list for all three layers: the policy (above), the operator's backend check and the agent's
    server-line filter; also when the policy is off (it needs a network plugin, the other two do not)."""
    from chart_rendering import operator_config

    rendered = render(
        "gateway.egressPolicy.deniedCIDRs[0]=10.20.0.0/16", "gateway.egressPolicy.enabled=false"
    )
    assert operator_config(rendered)["deniedBackendCIDRs"] == ["10.20.0.0/16"]
    deployment = rendered.one("Deployment", "vpcep-gateway")
    [agent] = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "agent"]
    assert "--denied-cidr=10.20.0.0/16" in agent["args"]


def test_without_cluster_access_the_notes_say_the_api_server_rule_is_wide_R45(defaults: Rendered) -> None:
    """Rendered without `lookup` (helm template, GitOps) the API server's addresses are unknown: the policy
    falls back to any ordinary address on the API server's ports, and the notes say how to narrow it."""
    assert "gateway.egressPolicy.apiServer.cidrs" in defaults.notes
    pinned = render("gateway.egressPolicy.apiServer.cidrs[0]=10.0.0.1/32")
    assert "gateway.egressPolicy.apiServer.cidrs" not in pinned.notes

"""The haproxy.cfg renderer: golden files, route planning, and every rendered file passes ``haproxy -c``."""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest

from vpcep.api.routing import Listener, Route
from vpcep.builders.haproxy_config import (
    HaproxySettings,
    backend_name,
    endpoint_of_proxy,
    frontend_name,
    haproxy_config,
    plan_routes,
    render_config,
)

from .factories import make_route

GOLDEN = pathlib.Path(__file__).parent / "golden"
SETTINGS = HaproxySettings(runtime_dir="/run/vpcep-gateway")

FULL_ROUTE = make_route(
    "5f1c2a9e-1b2c-4d3e-8f90-0123456789ab",
    markerId=4711,
    listeners=[
        Listener(gatewayPort=30011, clientPort=443, backendHost="fd00::5", serverPort=8443),
        Listener(gatewayPort=30010, clientPort=80, backendHost="web.shop.svc.cluster.local", serverPort=8080),
    ],
    proxyProtocolV2=True,
    sourceCIDRs=["10.1.0.0/16", "192.168.7.9/32", "fd00::/8"],
    maxConnections=3000,
)
PLAIN_ROUTE = make_route("0a0a0a0a-0000-4000-8000-000000000001", markerId=1, maxConnections=50)

CASES: dict[str, tuple[list[Route], HaproxySettings]] = {
    "no_routes": ([], SETTINGS),
    "plain_route": ([PLAIN_ROUTE], SETTINGS),
    "proxy_v2_cidrs_two_ports": ([FULL_ROUTE], SETTINGS),
    "two_routes_sorted": ([FULL_ROUTE, PLAIN_ROUTE], SETTINGS),
    "tuned_settings": (
        [PLAIN_ROUTE],
        HaproxySettings(
            runtime_dir="/tmp/gw",
            bind_address="10.244.1.7",
            max_connections=200000,
            threads=2,
            buffer_size=262144,
            splice="off",
            hard_stop_after_s=600,
            resolve_host_names=False,
            health_port=8404,
        ),
    ),
    # A gateway pod with CPUs of its own (bench/README.md, issue 15).
    "dedicated_cpus": (
        [PLAIN_ROUTE],
        HaproxySettings(runtime_dir="/tmp/gw", threads=1, busy_polling=True),
    ),
    # R49: the chart's default 1 GiB limit sets maxconn, the buffer pool and the pipes.
    "memory_limited": ([PLAIN_ROUTE], HaproxySettings(runtime_dir="/tmp/gw", memory_limit_bytes=1 << 30)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_config_matches_golden_file(case: str) -> None:
    routes, settings = CASES[case]
    text = haproxy_config(routes, settings)
    golden = GOLDEN / f"{case}.cfg"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), f"regenerate with UPDATE_GOLDEN=1 if the change is intended ({golden})"


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_config_is_accepted_by_haproxy(
    case: str, haproxy_binary: str, tmp_path: pathlib.Path
) -> None:
    routes, settings = CASES[case]
    config = tmp_path / "haproxy.cfg"
    config.write_text(haproxy_config(routes, settings))
    checked = subprocess.run([haproxy_binary, "-c", "-q", "-f", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_busy_polling_only_when_asked() -> None:
    """It keeps a CPU spinning: right for a pod with cores of its own, wrong for one sharing them."""
    assert "busy-polling" not in haproxy_config([PLAIN_ROUTE], SETTINGS)
    tuned = haproxy_config([PLAIN_ROUTE], HaproxySettings(busy_polling=True))
    assert "\n    busy-polling\n" in tuned.split("defaults")[0]


def test_connection_cap_refuses_instead_of_queueing_R21() -> None:
    text = haproxy_config([make_route(maxConnections=3000)], SETTINGS)
    frontend = text.split("frontend ep_")[1].split("backend ")[0]
    assert "tcp-request session reject if { sc0_conn_cur gt 3000 }" in frontend
    assert "fe_conn" not in frontend, "fe_conn over-counts while another thread accepts (refused below cap)"
    assert frontend.index("track-sc0") < frontend.index("reject if { sc0_conn_cur"), "tracked, then read"
    assert "maxconn" not in text.split("frontend ep_")[1], (
        "a frontend maxconn would queue the 3001st connection"
    )


def test_source_cidrs_become_a_reject_unless_rule_R34() -> None:
    text = haproxy_config([make_route(sourceCIDRs=["10.1.2.3/16"])], SETTINGS)
    assert "    acl vpcep_sources src 10.1.0.0/16\n" in text
    assert "tcp-request connection reject unless vpcep_sources" in text
    assert "reject unless" not in haproxy_config([make_route()], SETTINGS), "no CIDRs means any source"


# As many as the CRD allows (api/endpoint.py AccessControl.sourceCIDRs max_length), half of them IPv6.
MANY_CIDRS = [f"10.{i}.0.0/16" for i in range(50)] + [f"fd00:{i + 1:x}::/32" for i in range(50)]


def test_the_most_source_cidrs_the_crd_allows_render_lines_haproxy_accepts_R34_R49(
    haproxy_binary: str, tmp_path: pathlib.Path
) -> None:
    """HAProxy refuses a line of more than 64 words: one inline list broke at ~57 CIDRs (issue 10)."""
    from vpcep.api.endpoint import AccessControl

    assert len(MANY_CIDRS) == AccessControl.model_fields["sourceCIDRs"].metadata[0].max_length
    text = haproxy_config([make_route(sourceCIDRs=MANY_CIDRS)], SETTINGS)
    acl_lines = [line.split() for line in text.splitlines() if line.strip().startswith("acl vpcep_sources")]
    assert sorted(word for words in acl_lines for word in words[3:]) == sorted(MANY_CIDRS)
    assert max(len(words) for words in acl_lines) <= 64
    config = tmp_path / "haproxy.cfg"
    config.write_text(text)
    checked = subprocess.run([haproxy_binary, "-c", "-q", "-f", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_proxy_v2_carries_the_marker_as_unique_id_R33() -> None:
    text = haproxy_config([make_route(markerId=987, proxyProtocolV2=True)], SETTINGS)
    assert "unique-id-format 987" in text
    assert "send-proxy-v2 proxy-v2-options unique-id" in text
    plain = haproxy_config([make_route(markerId=987)], SETTINGS)
    assert "send-proxy" not in plain and "unique-id-format" not in plain


def test_every_backend_is_health_checked_R32() -> None:
    text = haproxy_config([FULL_ROUTE], SETTINGS)
    servers = [line for line in text.splitlines() if line.strip().startswith("server ")]
    assert len(servers) == 2 and all(" check " in s for s in servers)


def test_output_does_not_depend_on_route_order() -> None:
    assert haproxy_config([FULL_ROUTE, PLAIN_ROUTE], SETTINGS) == haproxy_config(
        [PLAIN_ROUTE, FULL_ROUTE], SETTINGS
    )


def test_route_lines_cover_exactly_the_routes_sections() -> None:
    rendered = render_config([FULL_ROUTE, PLAIN_ROUTE], SETTINGS)
    lines = rendered.text.splitlines()
    for endpoint_id, (first, last) in rendered.route_lines.items():
        section = "\n".join(lines[first - 1 : last])
        assert f"frontend {frontend_name(endpoint_id)}" in section
        assert rendered.route_at_line(first) == endpoint_id and rendered.route_at_line(last) == endpoint_id
    assert rendered.route_at_line(2) is None, "the global section belongs to no route"


def test_proxy_names_map_back_to_the_endpoint() -> None:
    endpoint_id = "5f1c2a9e-1b2c-4d3e-8f90-123456789012"  # last UUID group all digits
    assert endpoint_of_proxy(frontend_name(endpoint_id)) == endpoint_id
    assert endpoint_of_proxy(backend_name(endpoint_id, 30001)) == endpoint_id
    assert endpoint_of_proxy("vpcep-health") is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {
                "listeners": [
                    Listener(gatewayPort=1, clientPort=1, backendHost="10.0.0.1:80\n server x", serverPort=1)
                ]
            },
            "listeners[0].backendHost",
        ),
        (
            {"listeners": [Listener(gatewayPort=1, clientPort=1, backendHost="a b", serverPort=1)]},
            "listeners[0].backendHost",
        ),
        ({"sourceCIDRs": ["10.0.0.300/8"]}, "sourceCIDRs[0]"),
        ({"endpointId": "bad id } frontend"}, "endpointId"),
        (
            {
                "listeners": [
                    Listener(gatewayPort=7, clientPort=1, backendHost="h", serverPort=1),
                    Listener(gatewayPort=7, clientPort=2, backendHost="h", serverPort=2),
                ]
            },
            "gatewayPort repeated",
        ),
    ],
)
def test_routes_that_would_break_the_file_are_refused_with_the_field_named(
    overrides: dict[str, object], expected: str
) -> None:
    bad = make_route("bad", **overrides) if "endpointId" not in overrides else make_route(**overrides)
    good = make_route(
        "good", listeners=[Listener(gatewayPort=30999, clientPort=1, backendHost="h", serverPort=1)]
    )
    plan = plan_routes([bad, good])
    assert [r.endpointId for r in plan.accepted] == ["good"]
    assert list(plan.rejected) == [bad.endpointId] and expected in plan.rejected[bad.endpointId]
    assert bad.endpointId not in haproxy_config([bad, good], SETTINGS)


def test_port_clash_the_live_route_keeps_its_port_R30() -> None:
    old = make_route("ffff-old")
    new = make_route("aaaa-new")  # same gatewayPort 30001, sorts first
    assert [r.endpointId for r in plan_routes([old, new], incumbents=frozenset({"ffff-old"})).accepted] == [
        "ffff-old"
    ]
    plan = plan_routes([old, new])
    assert [r.endpointId for r in plan.accepted] == ["aaaa-new"]
    assert "gatewayPort 30001 is already used by endpoint aaaa-new" in plan.rejected["ffff-old"]

"""Isolating a route HAProxy refuses: the others keep being served."""

from __future__ import annotations

import pathlib

from vpcep.api.routing import Listener
from vpcep.builders.haproxy_config import HaproxySettings, frontend_name
from vpcep.gateway.validator import CheckResult, check_config, parse_alerts, validate_routes

from .factories import make_route

SETTINGS = HaproxySettings(runtime_dir="/run/gw")
ROUTES = [
    make_route(
        f"ep-{n}",
        listeners=[Listener(gatewayPort=31000 + n, clientPort=80, backendHost="10.0.0.1", serverPort=80)],
    )
    for n in range(6)
]


def fake_haproxy_refusing(bad_endpoint: str, with_line: bool):
    """Behaves like ``haproxy -c`` for a route it cannot parse (message format as HAProxy 2.6 prints it)."""
    calls: list[str] = []

    def check(text: str) -> CheckResult:
        calls.append(text)
        marker = f"frontend {frontend_name(bad_endpoint)}\n"
        if marker not in text:
            return CheckResult(ok=True)
        line = text[: text.index(marker)].count("\n") + 2 if with_line else None
        return CheckResult(ok=False, alerts=((line, "'bind' : cannot parse it"),))

    check.calls = calls  # type: ignore[attr-defined]
    return check


def test_culprit_named_by_line_is_dropped_and_the_rest_served() -> None:
    check = fake_haproxy_refusing("ep-3", with_line=True)
    result = validate_routes(ROUTES, SETTINGS, check)
    assert [r.endpointId for r in result.routes] == ["ep-0", "ep-1", "ep-2", "ep-4", "ep-5"]
    assert list(result.rejected) == ["ep-3"] and "cannot parse" in result.rejected["ep-3"]
    assert len(check.calls) == 3, "the failing check, the base without routes, the passing check"


def test_culprit_without_a_line_is_found_by_bisection() -> None:
    check = fake_haproxy_refusing("ep-4", with_line=False)
    result = validate_routes(ROUTES, SETTINGS, check)
    assert "ep-4" in result.rejected and len(result.routes) == 5
    assert result.rendered is not None and "ep-4" not in result.rendered.text


def test_a_broken_gateway_setting_blames_no_route(haproxy_binary: str, tmp_path: pathlib.Path) -> None:
    bad_settings = HaproxySettings(runtime_dir=str(tmp_path), bind_address="999.1.1.1", health_port=8404)
    result = validate_routes(
        ROUTES[:2], bad_settings, lambda text: check_config(text, haproxy_binary, tmp_path)
    )
    assert result.rendered is None and result.rejected == {}
    assert "gateway configuration is invalid" in result.error and "999.1.1.1" in result.error


def test_real_haproxy_alerts_are_parsed_with_their_line(haproxy_binary: str, tmp_path: pathlib.Path) -> None:
    text = (
        "defaults\n    mode tcp\nfrontend f\n    bind 127.0.0.1:1\n"
        "    tcp-request connection reject unless { src 1.2.3.300/8 }\n"
    )
    result = check_config(text, haproxy_binary, tmp_path)
    assert not result.ok
    assert any(line == 5 and "1.2.3.300" in message for line, message in result.alerts), result.alerts
    assert list(tmp_path.iterdir()) == [], "the candidate file is removed"


def test_parse_alerts_ignores_the_summary_lines() -> None:
    output = (
        "[ALERT]    (1) : config : parsing [x.cfg:9] : unknown keyword 'foo'\n"
        "[ALERT]    (1) : config : Error(s) found in configuration file : x.cfg\n"
        "[ALERT]    (1) : config : Fatal errors found in configuration.\n"
        "[ALERT]    (1) : config : Proxy 'f': no bind\n"
    )
    assert parse_alerts(output) == [(9, "unknown keyword 'foo'"), (None, "Proxy 'f': no bind")]

"""R45, defence in depth in the gateway agent: whatever route it reads, it writes no server line aimed at
link-local, a cloud metadata address, the API server's ClusterIP or a CIDR it is configured to deny, and it
reports such a route as refused (its status is how the operator and the provider learn of it). The message
names no address (R46)."""

from __future__ import annotations

import pathlib

import pytest

from vpcep.api.denied_addresses import parse_networks
from vpcep.api.routing import Listener, Route
from vpcep.builders.haproxy_config import HaproxySettings
from vpcep.gateway.agent import denied_networks, parse_args
from vpcep.gateway.reloader import Applier

from .factories import make_route
from .test_refused_route_memory import FakeMaster, snapshot
from .test_validator import fake_haproxy_refusing


def aimed_at(n: int, host: str) -> Route:
    listener = Listener(gatewayPort=32000 + n, clientPort=80, backendHost=host, serverPort=80)
    return make_route(f"ep-{n}", listeners=[listener])


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("169.254.7.7", "link-local"),
        ("fe80::7", "link-local"),
        ("10.250.1.1", "a CIDR the cluster admin denies"),
        ("10.96.0.1", "a CIDR the cluster admin denies"),  # the API server's ClusterIP, from the pod's env
    ],
)
def test_no_server_line_is_aimed_at_a_denied_address_R45(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, host: str, why: str
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    args = parse_args(["--denied-cidr", "10.250.0.0/16"])
    check = fake_haproxy_refusing("nobody", with_line=True)
    applier = Applier(
        FakeMaster(tmp_path),  # type: ignore[arg-type]
        HaproxySettings(runtime_dir=str(tmp_path)),
        check,
        port_is_free=lambda _address, _port: True,
        denied=denied_networks(args),
    )
    state = applier.apply(snapshot(1, aimed_at(0, "10.244.0.5"), aimed_at(1, host)))
    assert set(state.live_routes) == {"ep-0"}
    assert why in state.rejected["ep-1"] and "R45" in state.rejected["ep-1"]
    assert host not in state.rejected["ep-1"]
    config = (tmp_path / "haproxy.cfg").read_text()
    assert "10.244.0.5:80" in config and host not in config
    assert all(host not in text for text in check.calls), "never even checked with HAProxy"


def test_a_bad_denied_cidr_is_refused_at_start() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--denied-cidr", "10.0.0.0/40"])
    assert parse_networks(["10.0.0.0/8"])[0].num_addresses == 1 << 24

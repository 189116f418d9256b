"""R49: a route HAProxy refused is remembered by its content: the next change, and the time passing, cost no
new ``haproxy -c`` of the whole file for it, while its changed content is judged afresh."""

from __future__ import annotations

import pathlib

from vpcep.api.routing import Listener, Route
from vpcep.builders.haproxy_config import HaproxySettings
from vpcep.gateway.haproxy_process import ProcessTable
from vpcep.gateway.reloader import Applier
from vpcep.gateway.route_source import RouteSnapshot

from .factories import make_route
from .test_validator import fake_haproxy_refusing


class FakeMaster:
    """Stands in for the HAProxy master: always running, every reload succeeds."""

    def __init__(self, runtime_dir: pathlib.Path) -> None:
        self.config_path = runtime_dir / "haproxy.cfg"
        self.reloads = 0

    def running(self) -> bool:
        return True

    def reload(self) -> ProcessTable:
        self.reloads += 1
        return ProcessTable(1, self.reloads, 0, 100 + self.reloads, ())

    def start(self) -> None:
        raise AssertionError("never started: it runs")


def route(n: int, **changes: object) -> Route:
    listener = Listener(gatewayPort=31000 + n, clientPort=80, backendHost="10.0.0.1", serverPort=80)
    return make_route(f"ep-{n}", listeners=[listener], **changes)


def snapshot(version: int, *routes: Route) -> RouteSnapshot:
    return RouteSnapshot(routes={r.endpointId: r for r in routes}, version=version, synced=True)


def test_a_refused_route_is_left_out_by_content_until_it_changes_R49(tmp_path: pathlib.Path) -> None:
    check = fake_haproxy_refusing("ep-1", with_line=True)
    applier = Applier(
        FakeMaster(tmp_path),  # type: ignore[arg-type]
        HaproxySettings(runtime_dir=str(tmp_path)),
        check,
        port_is_free=lambda _address, _port: True,
    )
    first = applier.apply(snapshot(1, route(0), route(1)))
    assert set(first.live_routes) == {"ep-0"} and "cannot parse" in first.rejected["ep-1"]
    assert not first.retry_wanted, "HAProxy's verdict on unchanged content will not change"
    checks_to_find_it = len(check.calls)
    assert checks_to_find_it >= 2

    # Another tenant's change: one check of the new file, the bad route is not looked for again.
    check.calls.clear()
    second = applier.apply(snapshot(2, route(0), route(1), route(2)))
    assert set(second.live_routes) == {"ep-0", "ep-2"}
    assert second.rejected["ep-1"] == first.rejected["ep-1"]
    assert len(check.calls) == 1 and "ep_ep-1" not in check.calls[0]

    # Nothing changed: re-applying checks nothing (HAProxy runs that very file).
    check.calls.clear()
    applier.apply(snapshot(2, route(0), route(1), route(2)))
    assert check.calls == []

    # The refused route's content changes (its owner fixed it): it is judged afresh and, now good, served.
    fixed = route(1, markerId=2002)
    check.calls.clear()
    passing = fake_haproxy_refusing("nobody", with_line=True)
    applier._check = passing  # HAProxy accepts the new content
    third = applier.apply(snapshot(3, route(0), fixed, route(2)))
    assert set(third.live_routes) == {"ep-0", "ep-1", "ep-2"} and not third.rejected


def test_the_memory_holds_only_what_current_routes_have_R49(tmp_path: pathlib.Path) -> None:
    check = fake_haproxy_refusing("ep-1", with_line=False)
    applier = Applier(
        FakeMaster(tmp_path),  # type: ignore[arg-type]
        HaproxySettings(runtime_dir=str(tmp_path)),
        check,
        port_is_free=lambda _address, _port: True,
    )
    applier.apply(snapshot(1, route(0), route(1)))
    assert len(applier._refused_content) == 1
    applier.apply(snapshot(2, route(0)))  # the bad route was deleted
    assert applier._refused_content == {}


def test_a_route_whose_port_another_process_holds_is_retried_unchanged(tmp_path: pathlib.Path) -> None:
    held = {31001}
    applier = Applier(
        FakeMaster(tmp_path),  # type: ignore[arg-type]
        HaproxySettings(runtime_dir=str(tmp_path)),
        fake_haproxy_refusing("nobody", with_line=True),
        port_is_free=lambda _address, port: port not in held,
    )
    first = applier.apply(snapshot(1, route(0), route(1)))
    assert "in use on the gateway by another process" in first.rejected["ep-1"] and first.retry_wanted
    held.clear()
    second = applier.apply(snapshot(1, route(0), route(1)))
    assert set(second.live_routes) == {"ep-0", "ep-1"} and not second.retry_wanted

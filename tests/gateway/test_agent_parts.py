"""The agent's own logic without HAProxy running: route store, directory source, stats parsing, debounce."""

from __future__ import annotations

import pathlib
import threading
import time

from vpcep.gateway.haproxy_process import parse_show_proc
from vpcep.gateway.health import unhealthy_backends
from vpcep.gateway.reloader import wait_for_quiet
from vpcep.gateway.route_source import DirectoryRouteSource, RouteStore

from .factories import make_route

# Captured from HAProxy 2.6 with one healthy, one refused and one unresolvable backend.
SHOW_STAT = (pathlib.Path(__file__).parent / "data" / "show_stat.csv").read_text()


def test_down_and_unresolved_backends_are_reported_per_endpoint_R32() -> None:
    report = {b.endpointId: b for b in unhealthy_backends(SHOW_STAT)}
    assert set(report) == {"ep1", "ep2"}
    assert not report["ep1"].reachable
    assert "gateway port 18003" in report["ep1"].message and "127.0.0.1:18199" in report["ep1"].message
    assert "Layer4 connection problem" in report["ep1"].message
    assert "18001" not in report["ep1"].message, "the healthy listener is not blamed"


def test_show_proc_finds_the_new_worker_and_failed_reloads() -> None:
    text = """#<PID>          <type>          <reloads>       <uptime>        <version>
7572            master          3 [failed: 1]   0d00h00m04s     2.6.12-1+deb12u4
# workers
7590            worker          0               0d00h00m01s     2.6.12-1+deb12u4
7573            worker          2               0d00h00m04s     2.6.12-1+deb12u4
# programs
"""
    table = parse_show_proc(text)
    assert (table.master_pid, table.reloads, table.failed_reloads) == (7572, 3, 1)
    assert table.current_worker == 7590 and table.old_workers == (7573,)


def test_store_reports_unreadable_routes_and_duplicates_by_key() -> None:
    store = RouteStore()
    store.replace_all(
        {
            "a": make_route("e1").model_dump_json(),
            "b": '{"endpointId": "e2"}',
            "c": None,
            "d": make_route("e1").model_dump_json(),
        },
        version=7,
    )
    snapshot = store.snapshot()
    assert list(snapshot.routes) == ["e1"] and snapshot.version == 7 and snapshot.synced
    assert "listeners" in snapshot.unreadable["b"] and "markerId" in snapshot.unreadable["b"]
    assert "route.json" in snapshot.unreadable["c"]
    assert "already used" in snapshot.unreadable["d"]
    store.delete("a", version=9)
    store.bump_version(8)
    assert store.snapshot().version == 9 and "e1" in store.snapshot().routes  # 'd' still carries e1


def test_directory_source_sees_new_changed_and_removed_files(tmp_path: pathlib.Path) -> None:
    store = RouteStore()
    source = DirectoryRouteSource(tmp_path, store)
    (tmp_path / "one.json").write_text(make_route("e1").model_dump_json())
    (tmp_path / "many.json").write_text("[" + make_route("e2").model_dump_json() + "]")
    assert source.scan_once()
    assert set(store.snapshot().routes) == {"e1", "e2"}
    assert not source.scan_once(), "nothing changed, nothing to do"
    (tmp_path / "one.json").unlink()
    (tmp_path / "bad.json").write_text("{")
    assert source.scan_once()
    snapshot = store.snapshot()
    assert set(snapshot.routes) == {"e2"} and "Invalid JSON" in snapshot.unreadable["bad.json"]
    assert snapshot.version == 2


def test_a_burst_of_changes_is_folded_into_one_wait() -> None:
    """The wait ends only once the burst is over (no change left pending), whatever the machine's speed."""
    changed = threading.Event()
    changes = 0

    def burst() -> None:
        nonlocal changes
        for _ in range(5):
            changed.set()
            changes += 1
            time.sleep(0.01)

    burster = threading.Thread(target=burst)
    burster.start()
    changed.wait()  # the first change, as the agent's loop sees it
    wait_for_quiet(changed, quiet_s=1.0, max_delay_s=60.0)
    assert changes == 5, "returned while the burst was still going"
    assert not changed.is_set(), "a change of the burst was left for another reload"
    burster.join()


def test_a_change_stream_never_postpones_the_reload_past_the_cap() -> None:
    """Changes keep coming, quicker than the quiet period: the wait still ends (at the cap), while they do."""
    changed = threading.Event()
    stop = threading.Event()

    def storm() -> None:
        while not stop.is_set():
            changed.set()
            time.sleep(0.01)

    storming = threading.Thread(target=storm, daemon=True)
    storming.start()
    returned = threading.Event()
    waiter = threading.Thread(
        target=lambda: (wait_for_quiet(changed, quiet_s=10.0, max_delay_s=0.3), returned.set()), daemon=True
    )
    waiter.start()
    waiter.join(timeout=120)  # a hang guard, not a timing assertion
    stop.set()
    assert returned.is_set(), "the wait never ended while changes kept coming"


def test_data_path_tuning_options_reach_the_haproxy_settings() -> None:
    """The agent's tuning flags (bench/README.md measures each) reach the settings of the config."""
    from vpcep.gateway.agent import parse_args, settings_from

    default = settings_from(parse_args([]))
    assert not default.busy_polling and default.threads is None
    tuned = settings_from(parse_args(["--busy-polling", "--threads", "1"]))
    assert tuned.busy_polling and tuned.threads == 1

"""The gateway's Prometheus ``/metrics``: per-endpoint figures read from HAProxy at scrape time.

Nothing is counted by the agent itself: every figure is HAProxy's own, read from the worker's stats
socket (``show stat`` of frontends and backends, ``show info``) and from the master CLI (``show proc``)
when Prometheus scrapes, then labelled with what the route carries (endpoint id, consumer namespace,
Endpoint name, service name). The exposition format is prometheus_client's.

Cardinality is bounded by the routes this gateway serves: a fixed set of series per endpoint (no
per-port, per-client or per-status series), plus a few per gateway process. The figures carry only
``endpoint_id``; the names (namespace, endpoint, service) are on one ``vpcep_gateway_endpoint_info``
series per endpoint, joined in queries with ``* on(endpoint_id) group_left(namespace, endpoint, service)``
(the kube-state-metrics pattern): with the names on every series a scrape at 1,000 endpoints measured
2.1 MB instead of 1.1 MB and took half as long again (docs/observability.md, bench/README.md).
Routes HAProxy refused are not in ``show stat`` and have no series; ``vpcep_gateway_routes`` counts them.

Counters are the current worker's: a reload starts a new worker whose counters start at zero, which
Prometheus' ``rate()``/``increase()`` read as a counter reset. Sessions still served by old workers
(R30) are reported apart (``vpcep_gateway_haproxy_old_worker_sessions``).

The labels name consumer namespaces and Endpoints (R46): the metrics port is for the cluster's
monitoring only (docs/observability.md), and the labels go nowhere else (not into haproxy.cfg).
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from vpcep.api.routing import Route
from vpcep.builders.haproxy_config import endpoint_of_proxy
from vpcep.gateway.haproxy_process import HaproxyError, HaproxyMaster, ProcessTable, unix_command
from vpcep.gateway.reloader import AppliedState

log = logging.getLogger(__name__)

# ``show stat <proxy> <type mask> <server>``: -1 all proxies, 3 = frontends (1) + backends (2), no servers.
SHOW_STAT_PROXIES = "show stat -1 3 -1"
UP_STATES = ("UP", "OPEN")


@dataclass
class EndpointFigures:
    """One endpoint's figures, summed over its frontend and its backends (one per port mapping)."""

    active: int = 0
    total: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    refused_by_cap: int = 0
    refused_by_source: int = 0
    backends: int = 0
    backends_up: int = 0
    connect_seconds: float = 0.0  # the slowest backend's average over its last 1024 connections


@dataclass(frozen=True)
class ProcessFigures:
    reloads: int
    failed_reloads: int
    old_workers: int
    old_worker_sessions: int
    sessions: int
    max_connections: int


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def endpoint_figures(show_stat_csv: str) -> dict[str, EndpointFigures]:
    """Fold ``show stat`` rows (frontends and backends) into one EndpointFigures per endpoint id.

    csv.reader with the header's column positions, not DictReader: 20,000 rows of ~100 columns at
    10,000 endpoints cost seconds as dicts (bench/gateway_metrics.py).
    """
    rows = csv.reader(io.StringIO(show_stat_csv.lstrip("# ")))
    header = next(rows, None)
    if header is None:
        return {}
    column = {name: index for index, name in enumerate(header)}
    pxname, svname, status, ctime = column["pxname"], column["svname"], column["status"], column["ctime"]
    scur, stot, bytes_in, bytes_out = column["scur"], column["stot"], column["bin"], column["bout"]
    dcon, dses = column["dcon"], column["dses"]
    figures: dict[str, EndpointFigures] = {}
    for row in rows:
        if len(row) < len(header):
            continue
        endpoint_id = endpoint_of_proxy(row[pxname])
        if endpoint_id is None:
            continue
        entry = figures.setdefault(endpoint_id, EndpointFigures())
        kind = row[svname]
        if kind == "FRONTEND":
            entry.active = _int(row[scur])
            entry.total = _int(row[stot])
            entry.bytes_in = _int(row[bytes_in])  # from consumers
            entry.bytes_out = _int(row[bytes_out])  # to consumers
            entry.refused_by_source = _int(row[dcon])  # tcp-request connection: R34
            entry.refused_by_cap = _int(row[dses])  # tcp-request session: R21
        elif kind == "BACKEND":
            entry.backends += 1
            if row[status].startswith(UP_STATES):
                entry.backends_up += 1
            entry.connect_seconds = max(entry.connect_seconds, _int(row[ctime]) / 1000.0)
    return figures


def parse_show_info(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, separator, value = line.partition(":")
        if separator:
            fields[name.strip()] = value.strip()
    return fields


def endpoint_metrics(figures: Mapping[str, EndpointFigures], routes: Mapping[str, Route]) -> list[Metric]:
    """The per-endpoint families: figures by endpoint_id, names once per endpoint in the info series."""
    by_id = ["endpoint_id"]
    info = InfoMetricFamily(
        "vpcep_gateway_endpoint",
        "The consumer namespace, Endpoint name and service of each endpoint id (join on endpoint_id).",
        labels=by_id,
    )
    families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
        "active": GaugeMetricFamily(
            "vpcep_gateway_endpoint_active_connections",
            "Connections open now through this gateway process.",
            labels=by_id,
        ),
        "cap": GaugeMetricFamily(
            "vpcep_gateway_endpoint_max_connections",
            "Concurrent connection cap of the endpoint (R21); the next connection is refused.",
            labels=by_id,
        ),
        "total": CounterMetricFamily(
            "vpcep_gateway_endpoint_connections",
            "Connections accepted (not refused) since the HAProxy worker started.",
            labels=by_id,
        ),
        "in": CounterMetricFamily(
            "vpcep_gateway_endpoint_received_bytes", "Bytes received from consumers.", labels=by_id
        ),
        "out": CounterMetricFamily(
            "vpcep_gateway_endpoint_sent_bytes",
            "Bytes sent to consumers (the backend's answers).",
            labels=by_id,
        ),
        "refused": CounterMetricFamily(
            "vpcep_gateway_endpoint_refused_connections",
            "Connections refused: reason=cap (R21, the cap was reached) or reason=source "
            "(R34, the source is outside accessControl.sourceCIDRs).",
            labels=[*by_id, "reason"],
        ),
        "up": GaugeMetricFamily(
            "vpcep_gateway_endpoint_backend_up",
            "1 when every port's backend passes HAProxy's health check (R32), else 0.",
            labels=by_id,
        ),
        "connect": GaugeMetricFamily(
            "vpcep_gateway_endpoint_backend_connect_seconds",
            "Average time to connect to the backend over the last 1024 connections (slowest port).",
            labels=by_id,
        ),
    }
    for endpoint_id, entry in sorted(figures.items()):
        route = routes.get(endpoint_id)
        if route is not None:
            names = {
                "namespace": route.consumerNamespace,
                "endpoint": route.endpointName,
                "service": route.serviceName,
            }
            info.add_metric([endpoint_id], names)
            families["cap"].add_metric([endpoint_id], route.maxConnections)
        families["active"].add_metric([endpoint_id], entry.active)
        families["total"].add_metric([endpoint_id], entry.total)
        families["in"].add_metric([endpoint_id], entry.bytes_in)
        families["out"].add_metric([endpoint_id], entry.bytes_out)
        families["refused"].add_metric([endpoint_id, "cap"], entry.refused_by_cap)
        families["refused"].add_metric([endpoint_id, "source"], entry.refused_by_source)
        families["up"].add_metric(
            [endpoint_id], 1 if entry.backends and entry.backends_up == entry.backends else 0
        )
        families["connect"].add_metric([endpoint_id], entry.connect_seconds)
    return [info, *families.values()]


def process_metrics(process: ProcessFigures) -> list[Metric]:
    return [
        CounterMetricFamily(
            "vpcep_gateway_haproxy_reloads", "Reloads of the HAProxy master.", value=process.reloads
        ),
        CounterMetricFamily(
            "vpcep_gateway_haproxy_failed_reloads",
            "Reloads the HAProxy master refused (the previous configuration kept serving).",
            value=process.failed_reloads,
        ),
        GaugeMetricFamily(
            "vpcep_gateway_haproxy_old_workers",
            "Workers of earlier configurations still serving their open sessions (R30).",
            value=process.old_workers,
        ),
        GaugeMetricFamily(
            "vpcep_gateway_haproxy_old_worker_sessions",
            "Sessions still served by old workers.",
            value=process.old_worker_sessions,
        ),
        GaugeMetricFamily(
            "vpcep_gateway_haproxy_sessions",
            "Sessions of the current worker, all endpoints together.",
            value=process.sessions,
        ),
        GaugeMetricFamily(
            "vpcep_gateway_haproxy_max_connections",
            "The worker's global maxconn: sessions beyond it wait in the kernel backlog (R49).",
            value=process.max_connections,
        ),
    ]


class GatewayCollector(Collector):
    """Reads HAProxy when Prometheus scrapes; a HAProxy that does not answer gives up=0, not an error page."""

    def __init__(
        self,
        master: HaproxyMaster,
        applied: Callable[[], AppliedState],
        wanted: Callable[[], Mapping[str, Route]],
    ) -> None:
        self.master = master
        self.applied = applied
        self.wanted = wanted

    def collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        state = self.applied()
        live, rejected = len(state.live_routes), len(state.rejected)
        # Labels from the routes wanted now, else from those applied: a new worker serves (and shows in
        # 'show stat') a moment before the agent records what it applied.
        labelled = {**state.live_routes, **self.wanted()}
        routes_family = GaugeMetricFamily(
            "vpcep_gateway_routes",
            "Routes this gateway serves (state=live) or refused (state=rejected, see its status).",
            labels=["state"],
        )
        routes_family.add_metric(["live"], live)
        routes_family.add_metric(["rejected"], rejected)
        yield routes_family
        try:
            stat = self.master.worker_command(SHOW_STAT_PROXIES)
            info = parse_show_info(self.master.worker_command("show info"))
            table = self.master.process_table(patience_s=0.5)
            process = ProcessFigures(
                reloads=table.reloads,
                failed_reloads=table.failed_reloads,
                old_workers=len(table.old_workers),
                old_worker_sessions=self._old_worker_sessions(table),
                sessions=_int(info.get("CurrConns")),
                max_connections=_int(info.get("Maxconn")),
            )
        except (OSError, HaproxyError) as error:
            log.warning("metrics: HAProxy did not answer: %s", error)
            yield GaugeMetricFamily("vpcep_gateway_haproxy_up", "1 when HAProxy answered the scrape.", 0)
            return
        yield GaugeMetricFamily("vpcep_gateway_haproxy_up", "1 when HAProxy answered the scrape.", 1)
        yield from process_metrics(process)
        yield from endpoint_metrics(endpoint_figures(stat), labelled)
        yield GaugeMetricFamily(
            "vpcep_gateway_scrape_seconds",
            "Time this scrape took to read HAProxy and build the series.",
            value=time.monotonic() - started,
        )

    def _old_worker_sessions(self, table: ProcessTable) -> int:
        sessions = 0
        for pid in table.old_workers:
            try:  # the master CLI forwards '@!<pid> <command>' to that worker
                answer = unix_command(str(self.master.master_socket), f"@!{pid} show info")
            except OSError:
                continue  # it just exited
            sessions += _int(parse_show_info(answer).get("CurrConns"))
        return sessions


def serve_metrics(collector: Collector, port: int, address: str = "0.0.0.0") -> None:
    """Serve ``/metrics`` from a daemon thread (prometheus_client's own HTTP server)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    try:
        start_http_server(port, addr=address, registry=registry)
    except OSError as error:  # traffic matters more than figures: never a crash loop over the metrics port
        log.error("cannot serve metrics on %s:%d: %s; running without /metrics", address, port, error)
        return
    log.info("serving metrics on %s:%d/metrics", address, port)

"""Routes -> haproxy.cfg, as a pure function (no I/O, no clock).

One HAProxy frontend per route (endpoint) with one ``bind`` per listener, and one backend per
listener. A frontend per endpoint (not per listener) makes ``fe_conn`` count the endpoint's
connections across all of its ports, which is what R21 caps.

Choices that are not obvious from the config alone:
- R21: ``maxconn`` on a frontend only stops *accepting*; the excess waits in the kernel backlog
  ("queued forever" from the client's view). The route's session is tracked in a one-entry stick table
  of its frontend, and ``tcp-request session reject if { sc0_conn_cur gt N }`` closes the (N+1)th
  connection at once (the tracked count includes the connection being evaluated). Not ``fe_conn``: with
  more than one thread, a thread looping in accept() raises ``fe_conn`` for the connection it may
  accept next, so another thread can read one too many and refuse a session below the cap (measured on
  HAProxy 2.6, 2 threads: 11 of 1,000 runs of N sequential sessions lost one; 0 with the stick table).
- R33: HAProxy 2.6 cannot send custom TLV types (that needs >= 2.9), so the marker travels as
  the PP2_TYPE_UNIQUE_ID TLV (0x05), whose value is a static ``unique-id-format`` per frontend:
  the ASCII decimal markerId. docs/proxy-protocol.md describes the bytes.
- Throughput: the default 16 KB ``tune.bufsize`` limits one stream to about a quarter of direct
  loopback; larger buffers and kernel splicing close most of the gap (bench/README.md). Buffers
  are allocated only while data is in flight, so idle sessions do not pay for the size.
- Backend host names (Service DNS names) are re-resolved through ``resolvers``; a name that does
  not resolve yet starts the server disabled (``init-addr last,libc,none``) instead of failing the
  whole configuration, and health checks (R32) then report it as down.

``plan_routes`` refuses, before HAProxy sees them, routes that would break the file for everyone
(syntax injection through a host name, clashing ports, bad CIDRs). ``render_config`` also returns
which line ranges belong to which route, so the agent can blame the right route for an error
HAProxy reports by line.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from vpcep.api.routing import Listener, Route
from vpcep.builders.gateway_capacity import session_budget

HOSTNAME_PATTERN = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
ENDPOINT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
RESOLVERS_NAME = "cluster-dns"
# R34: the ACL of a route's admitted sources, and how many CIDRs go on one of its lines (HAProxy's
# limit is 64 words per line; "acl <name> src" takes three).
SOURCE_ACL = "vpcep_sources"
CIDRS_PER_ACL_LINE = 40
# R21: the endpoint's open sessions in this process, counted by the frontend's own stick table.
CAP_COUNTER = "conn_cur"


@dataclass(frozen=True)
class HaproxySettings:
    """Gateway-wide knobs; the defaults are what the gateway pod runs with."""

    runtime_dir: str = "/var/run/vpcep-gateway"
    bind_address: str = "0.0.0.0"
    # None lets HAProxy derive maxconn from the file-descriptor limit it is given, or (R49) from
    # ``memory_limit_bytes`` when that is set (gateway_capacity.py).
    max_connections: int | None = None
    # The HAProxy container's memory limit: bounds sessions, buffers and pipes so that a flood is refused
    # instead of OOM-killing the gateway (R49). None: no bound beyond the file-descriptor limit.
    memory_limit_bytes: int | None = None
    # The HAProxy container's hard open-file limit: with the memory limit, it bounds maxconn so that HAProxy
    # can raise its own limit far enough to start (gateway_capacity.py). None: not known.
    open_files_limit: int | None = None
    threads: int | None = None
    buffer_size: int = 65536
    # "always": the kernel moves data between the two sockets without copying it through HAProxy
    # (measured best here, bench/README.md); "auto": only when HAProxy's heuristics think it pays; "off".
    splice: str = "always"
    # Kernel pipe size used for splicing; None keeps the kernel default (64 KB).
    pipe_size: int | None = None
    # Threads spin in the poller instead of sleeping: no wake-up to wait for (a VM's idle CPU takes tens of
    # microseconds to wake), at the price of a CPU kept busy; only for a gateway with CPUs of its own
    # (bench/README.md, same-run A/B with a core of its own: round trip +147 -> +46 us over direct).
    busy_polling: bool = False
    connect_timeout_ms: int = 5000
    idle_timeout_s: int = 3600
    half_closed_timeout_s: int = 30
    health_check_interval_ms: int = 2000
    health_check_fall: int = 3
    health_check_rise: int = 2
    # None: old workers stay until their last session ends (R30: a reload never cuts a connection).
    hard_stop_after_s: int | None = None
    resolve_host_names: bool = True
    # Where the gateway answers liveness probes ("/healthz"); None binds a unix socket in runtime_dir.
    health_port: int | None = None

    @property
    def stats_socket(self) -> str:
        return f"{self.runtime_dir}/haproxy.sock"

    @property
    def master_socket(self) -> str:
        return f"{self.runtime_dir}/master.sock"


@dataclass(frozen=True)
class RoutePlan:
    """Routes split into those that go into the file and those refused, with the reason."""

    accepted: tuple[Route, ...]
    rejected: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RenderedConfig:
    text: str
    # endpointId -> (first line, last line), 1-based and inclusive, of that route's sections.
    route_lines: dict[str, tuple[int, int]]

    def route_at_line(self, line: int) -> str | None:
        for endpoint_id, (first, last) in self.route_lines.items():
            if first <= line <= last:
                return endpoint_id
        return None


def frontend_name(endpoint_id: str) -> str:
    return f"ep_{endpoint_id}"


def backend_name(endpoint_id: str, gateway_port: int) -> str:
    return f"ep_{endpoint_id}_{gateway_port}"


def endpoint_of_proxy(proxy_name: str) -> str | None:
    """The endpointId a frontend/backend name belongs to (inverse of the two names above).

    '_' never occurs in an endpointId (ENDPOINT_ID_PATTERN), so it separates unambiguously.
    """
    if not proxy_name.startswith("ep_"):
        return None
    return proxy_name[len("ep_") :].split("_")[0] or None


def route_problem(route: Route) -> str | None:
    """Why this route cannot go into any haproxy.cfg, or None. Names the field and the fix."""
    if not ENDPOINT_ID_PATTERN.match(route.endpointId):
        return f"endpointId {route.endpointId!r} must be letters, digits and '-' (a UUID)"
    ports = [listener.gatewayPort for listener in route.listeners]
    if len(set(ports)) != len(ports):
        return f"listeners: gatewayPort repeated within the route ({sorted(ports)}); each must be unique"
    for index, listener in enumerate(route.listeners):
        if not _is_host(listener.backendHost):
            return (
                f"listeners[{index}].backendHost {listener.backendHost!r} is neither an IP address "
                "nor a DNS name"
            )
    for index, cidr in enumerate(route.sourceCIDRs):
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return f"sourceCIDRs[{index}] {cidr!r} is not a CIDR such as 10.0.0.0/8"
    return None


def plan_routes(routes: Iterable[Route], incumbents: frozenset[str] = frozenset()) -> RoutePlan:
    """Keep every route that can be served; refuse the rest with a reason.

    Two routes claiming one gatewayPort is an allocation bug upstream; the route already live
    (in ``incumbents``) keeps the port so that a new route can never take down an old one (R30),
    otherwise the lower endpointId wins, so the outcome does not depend on arrival order.
    """
    rejected: dict[str, str] = {}
    candidates: list[Route] = []
    for route in routes:
        problem = route_problem(route)
        if problem:
            rejected[route.endpointId] = problem
        else:
            candidates.append(route)
    candidates.sort(key=lambda r: (r.endpointId not in incumbents, r.endpointId))
    port_owner: dict[int, str] = {}
    accepted: list[Route] = []
    for route in candidates:
        clashes = [p.gatewayPort for p in route.listeners if p.gatewayPort in port_owner]
        if route.endpointId in {r.endpointId for r in accepted}:
            rejected[route.endpointId] = "endpointId appears in two routes"
            continue
        if clashes:
            owner = port_owner[clashes[0]]
            rejected[route.endpointId] = f"gatewayPort {clashes[0]} is already used by endpoint {owner}"
            continue
        for listener in route.listeners:
            port_owner[listener.gatewayPort] = route.endpointId
        accepted.append(route)
    accepted.sort(key=lambda r: r.endpointId)
    return RoutePlan(accepted=tuple(accepted), rejected=rejected)


def haproxy_config(routes: Sequence[Route], settings: HaproxySettings) -> str:
    """The whole haproxy.cfg for these routes (routes ``plan_routes`` refuses are left out)."""
    return render_config(routes, settings).text


def render_config(routes: Sequence[Route], settings: HaproxySettings) -> RenderedConfig:
    lines: list[str] = []
    accepted = plan_routes(routes).accepted
    lines += _global_section(settings, sum(len(route.listeners) for route in accepted))
    lines += _defaults_section(settings)
    names_in_use = any(not _is_ip(p.backendHost) for route in accepted for p in route.listeners)
    if settings.resolve_host_names and names_in_use:
        lines += _resolvers_section()
    lines += _health_frontend(settings)
    route_lines: dict[str, tuple[int, int]] = {}
    for route in accepted:
        first = len(lines) + 1
        lines += _route_sections(route, settings)
        route_lines[route.endpointId] = (first, len(lines))
    return RenderedConfig(text="\n".join(lines) + "\n", route_lines=route_lines)


def _global_section(settings: HaproxySettings, listeners: int) -> list[str]:
    lines = [
        "# Generated by vpcep-gateway from the vpcep.io routes; do not edit.",
        "global",
        # expose-fd lets each new worker take the listening sockets over from the old one,
        # so a reload never refuses a connection (R30).
        f"    stats socket {settings.stats_socket} mode 600 level admin expose-fd listeners",
        "    stats timeout 30s",
        f"    tune.bufsize {settings.buffer_size}",
    ]
    if settings.pipe_size is not None:
        lines.append(f"    tune.pipesize {settings.pipe_size}")
    if settings.busy_polling:
        lines.append("    busy-polling")
    max_connections = settings.max_connections
    if settings.memory_limit_bytes is not None:  # R49
        budget = session_budget(
            settings.memory_limit_bytes,
            listeners,
            settings.buffer_size,
            settings.pipe_size,
            settings.open_files_limit,
        )
        max_connections = max_connections or budget.max_connections
        lines.append(f"    tune.buffers.limit {budget.buffers}")
        lines.append(f"    maxpipes {budget.pipes}")
    if max_connections is not None:
        lines.append(f"    maxconn {max_connections}")
    if settings.threads is not None:
        lines.append(f"    nbthread {settings.threads}")
    if settings.hard_stop_after_s is not None:
        lines.append(f"    hard-stop-after {settings.hard_stop_after_s}s")
    return [*lines, ""]


def _defaults_section(settings: HaproxySettings) -> list[str]:
    lines = [
        "defaults",
        "    mode tcp",
        f"    timeout connect {settings.connect_timeout_ms}ms",
        f"    timeout client {settings.idle_timeout_s}s",
        f"    timeout server {settings.idle_timeout_s}s",
        f"    timeout client-fin {settings.half_closed_timeout_s}s",
        f"    timeout server-fin {settings.half_closed_timeout_s}s",
        "    timeout check 2s",
    ]
    if settings.splice == "auto":
        lines.append("    option splice-auto")
    elif settings.splice == "always":
        lines += ["    option splice-request", "    option splice-response"]
    return [*lines, ""]


def _resolvers_section() -> list[str]:
    return [
        f"resolvers {RESOLVERS_NAME}",
        "    parse-resolv-conf",
        "    hold valid 10s",
        "",
    ]


def _health_frontend(settings: HaproxySettings) -> list[str]:
    # HAProxy refuses to start without a listener, and a gateway with no routes yet must run.
    bind = (
        f"{settings.bind_address}:{settings.health_port}"
        if settings.health_port is not None
        else f"unix@{settings.runtime_dir}/health.sock"
    )
    return [
        "frontend vpcep-health",
        "    mode http",
        f"    bind {bind}",
        "    monitor-uri /healthz",
        "    http-request deny",
        "",
    ]


def _route_sections(route: Route, settings: HaproxySettings) -> list[str]:
    ports = sorted(route.listeners, key=lambda listener: listener.gatewayPort)
    lines = [
        f"# endpoint {route.endpointId} marker {route.markerId}",
        f"frontend {frontend_name(route.endpointId)}",
    ]
    lines += [f"    bind {settings.bind_address}:{listener.gatewayPort}" for listener in ports]
    if route.sourceCIDRs:  # R34
        lines += _source_acl_lines(route.sourceCIDRs)
        lines.append(f"    tcp-request connection reject unless {SOURCE_ACL}")
    # R21 at the session stage, R34 at the connection stage: HAProxy counts the two refusals apart
    # (dses, dcon), which the gateway's metrics report as reason="cap" and reason="source".
    lines += [  # R21
        f"    stick-table type integer size 1 store {CAP_COUNTER}",
        "    tcp-request session track-sc0 int(0)",
        f"    tcp-request session reject if {{ sc0_{CAP_COUNTER} gt {route.maxConnections} }}",
    ]
    if route.proxyProtocolV2:  # R33: the marker rides in TLV 0x05 (unique id)
        lines.append(f"    unique-id-format {route.markerId}")
    for listener in ports[1:]:
        lines.append(
            f"    use_backend {backend_name(route.endpointId, listener.gatewayPort)}"
            f" if {{ dst_port {listener.gatewayPort} }}"
        )
    lines.append(f"    default_backend {backend_name(route.endpointId, ports[0].gatewayPort)}")
    lines.append("")
    for listener in ports:
        lines += _backend_section(route, listener, settings)
    return lines


def _source_acl_lines(source_cidrs: Sequence[str]) -> list[str]:
    """R34 for any count the CRD allows: HAProxy refuses a line of more than 64 words ("too many
    words"), which one inline ``{ src ... }`` list reaches at ~57 CIDRs; ``acl`` lines with one name
    add up (a source matches if any line matches), so the list is cut into lines of few words."""
    networks = [str(ipaddress.ip_network(cidr, strict=False)) for cidr in source_cidrs]
    return [
        f"    acl {SOURCE_ACL} src {' '.join(networks[start : start + CIDRS_PER_ACL_LINE])}"
        for start in range(0, len(networks), CIDRS_PER_ACL_LINE)
    ]


def _backend_section(route: Route, listener: Listener, settings: HaproxySettings) -> list[str]:
    options = [
        # R32: reachability is checked continuously and read back from the stats socket.
        f"check inter {settings.health_check_interval_ms}ms"
        f" fall {settings.health_check_fall} rise {settings.health_check_rise}",
    ]
    if route.proxyProtocolV2:
        # check-send-proxy: health checks carry a PROXY header too (LOCAL command), so a backend
        # that insists on one does not log them as garbage.
        options.append("send-proxy-v2 proxy-v2-options unique-id check-send-proxy")
    if not _is_ip(listener.backendHost):
        if settings.resolve_host_names:
            options.append(f"resolvers {RESOLVERS_NAME}")
        options.append("init-addr last,libc,none")
    address = _server_address(listener.backendHost, listener.serverPort)
    return [
        f"backend {backend_name(route.endpointId, listener.gatewayPort)}",
        f"    server backend {address} {' '.join(options)}",
        "",
    ]


def _server_address(host: str, port: int) -> str:
    if _is_ip(host) and ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_host(host: str) -> bool:
    return _is_ip(host) or bool(HOSTNAME_PATTERN.match(host))

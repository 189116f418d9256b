"""vpcep-gateway: keeps one HAProxy serving every route of the operator's namespace.

Threads: a route source (ConfigMap list+watch, or a directory poller) fills a RouteStore; the
main loop folds bursts of changes into one apply (render, ``haproxy -c``, reload), supervises
HAProxy, and reports a GatewayStatus at every apply and every heartbeat. A route that leaves the
source is a revoked endpoint: its open sessions are cut after the drain period, in every HAProxy
process (revocation.py, R43).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import pathlib
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from vpcep.api.denied_addresses import Network, as_address, parse_networks
from vpcep.builders.gateway_capacity import session_budget
from vpcep.builders.haproxy_config import HaproxySettings
from vpcep.gateway.drain import GatewayDrain
from vpcep.gateway.haproxy_process import HaproxyMaster, raise_file_limit
from vpcep.gateway.health import unhealthy_backends
from vpcep.gateway.reloader import Applier, wait_for_quiet
from vpcep.gateway.revocation import RevocationDrainer
from vpcep.gateway.route_source import DirectoryRouteSource, KubeRouteSource, RouteSnapshot, RouteStore
from vpcep.gateway.status import (
    ConfigMapStatusWriter,
    FileStatusWriter,
    StatusWriter,
    bounded_status,
    rfc3339_now,
)
from vpcep.gateway.validator import check_config

log = logging.getLogger("vpcep.gateway")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="vpcep-gateway", description=__doc__)
    parser.add_argument(
        "--name",
        default=env("GATEWAY_NAME") or env("POD_NAME") or "gateway",
        help="gateway name; the status ConfigMap is vpcep-gateway-<name> (env GATEWAY_NAME, POD_NAME)",
    )
    parser.add_argument(
        "--namespace",
        default=env("POD_NAMESPACE") or "vpcep-system",
        help="namespace of the route ConfigMaps and of the status (env POD_NAMESPACE)",
    )
    parser.add_argument(
        "--address",
        default=env("POD_IP") or "127.0.0.1",
        help="address consumers' traffic is sent to, reported in the status (env POD_IP)",
    )
    parser.add_argument(
        "--pod-uid", default=env("POD_UID"), help="owner of the status ConfigMap (env POD_UID)"
    )
    parser.add_argument(
        "--api-server",
        default=env("GATEWAY_API_SERVER"),
        help="reach the Kubernetes API through this URL, the operator's gateway channel (R45), not the "
        "API server itself (env GATEWAY_API_SERVER)",
    )
    parser.add_argument(
        "--api-ca-file",
        default=env("GATEWAY_API_CA_FILE"),
        help="PEM CA bundle that verifies --api-server (env GATEWAY_API_CA_FILE)",
    )
    parser.add_argument(
        "--bind-address",
        default=env("GATEWAY_BIND_ADDRESS") or "0.0.0.0",
        help="address the route listeners bind",
    )
    parser.add_argument("--haproxy", default=env("HAPROXY_BINARY") or "haproxy", help="HAProxy binary")
    parser.add_argument(
        "--external-haproxy",
        action="store_true",
        default=(env("GATEWAY_EXTERNAL_HAPROXY") or "").lower() in ("1", "true", "yes"),
        help="HAProxy runs in another container (vpcep.gateway.haproxy_container) sharing --runtime-dir: "
        "write its config and drive it through the master CLI, never start or stop it (R47; env "
        "GATEWAY_EXTERNAL_HAPROXY). Default: run HAProxy as the agent's child",
    )
    parser.add_argument(
        "--runtime-dir",
        default=env("GATEWAY_RUNTIME_DIR") or "/var/run/vpcep-gateway",
        help="writable directory for haproxy.cfg, sockets and the pid file",
    )
    parser.add_argument(
        "--routes-dir",
        type=pathlib.Path,
        default=None,
        help="read Route JSON files from this directory (or file) instead of the cluster",
    )
    parser.add_argument(
        "--status-file",
        type=pathlib.Path,
        default=None,
        help="write the GatewayStatus here instead of a ConfigMap (default with --routes-dir: "
        "<runtime-dir>/status.json)",
    )
    parser.add_argument("--health-port", type=int, default=None, help="HTTP port answering /healthz")
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(env("GATEWAY_METRICS_PORT") or 0) or None,
        help="HTTP port serving Prometheus /metrics on the bind address (env GATEWAY_METRICS_PORT; "
        "default: none); must lie outside the gateway port range",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help="HAProxy global maxconn (default: derived from --memory-limit-bytes, else from the "
        "file-descriptor limit)",
    )
    parser.add_argument(
        "--memory-limit-bytes",
        type=int,
        default=int(env("GATEWAY_MEMORY_LIMIT_BYTES") or 0) or None,
        help="the HAProxy container's memory limit: HAProxy's maxconn, buffer and pipe pools are derived "
        "from it so that a flood is refused, never OOM-killed (R49; env GATEWAY_MEMORY_LIMIT_BYTES, the "
        "chart sets it from the downward API; builders/gateway_capacity.py gives the formula)",
    )
    parser.add_argument("--threads", type=int, default=None, help="HAProxy nbthread (default: one per CPU)")
    parser.add_argument("--buffer-size", type=int, default=65536, help="HAProxy tune.bufsize")
    parser.add_argument("--pipe-size", type=int, default=None, help="HAProxy tune.pipesize (splicing)")
    parser.add_argument(
        "--splice", choices=("auto", "always", "off"), default="always", help="kernel splicing of TCP data"
    )
    parser.add_argument(
        "--busy-polling",
        action="store_true",
        help="HAProxy busy-polling: threads spin instead of sleeping, keeping their CPUs busy; only for a "
        "gateway with CPUs of its own (the chart's gateway.busyPolling)",
    )
    parser.add_argument("--health-check-interval-ms", type=int, default=2000)
    parser.add_argument(
        "--heartbeat-interval", type=float, default=5.0, help="seconds between status reports"
    )
    parser.add_argument(
        "--debounce",
        type=float,
        default=0.1,
        help="seconds without route changes before a reload (bursts give one reload)",
    )
    parser.add_argument("--max-debounce", type=float, default=0.5, help="longest a change waits for a reload")
    parser.add_argument(
        "--retry-interval", type=float, default=5.0, help="seconds between new attempts at refused routes"
    )
    parser.add_argument(
        "--revocation-drain-seconds",
        type=non_negative_seconds,
        default=non_negative_seconds(env("GATEWAY_REVOCATION_DRAIN_SECONDS") or "5"),
        help="seconds a revoked endpoint's open sessions may go on before they are cut, in every "
        "HAProxy process; 0 cuts them at once (R43; env GATEWAY_REVOCATION_DRAIN_SECONDS)",
    )
    parser.add_argument(
        "--denied-cidr",
        action="append",
        type=cidr_argument,
        default=[],
        help="a CIDR no backend line may point into, besides link-local, cloud metadata and the API server's "
        "ClusterIP (env KUBERNETES_SERVICE_HOST); repeatable; a route aimed there is refused and reported "
        "(R45: defence in depth behind the operator's check)",
    )
    parser.add_argument(
        "--drain-leave-seconds",
        type=non_negative_seconds,
        default=non_negative_seconds(env("GATEWAY_DRAIN_LEAVE_SECONDS") or "0"),
        help="on SIGTERM the gateway reports itself draining and keeps accepting connections this long, "
        "while the operator removes its address from every EndpointSlice and kube-proxy follows (R52; env "
        "GATEWAY_DRAIN_LEAVE_SECONDS; the chart sets gateway.drain.leaveSeconds, 10)",
    )
    parser.add_argument(
        "--drain-seconds",
        type=non_negative_seconds,
        default=non_negative_seconds(env("GATEWAY_DRAIN_SECONDS") or "10"),
        help="then HAProxy stops listening and its open sessions may go on this long before they are cut "
        "(R52; env GATEWAY_DRAIN_SECONDS; the chart sets gateway.drain.sessionSeconds, 45); the pod's "
        "terminationGracePeriodSeconds must cover both. SIGINT, or a second SIGTERM, stops at once",
    )
    parser.add_argument("--log-level", default=env("LOG_LEVEL") or "INFO")
    args = parser.parse_args(argv)
    if args.api_server is not None and not (args.api_server.startswith("https://") and args.api_ca_file):
        parser.error("--api-server must be an https:// URL, and --api-ca-file the CA that verifies it")
    return args


def cidr_argument(text: str) -> Network:
    try:
        [network] = parse_networks([text])
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return network


def denied_networks(args: argparse.Namespace) -> tuple[Network, ...]:
    """What the agent refuses to dial besides the built-in ranges: the configured CIDRs, and the API
    server's ClusterIP, which every container is told (KUBERNETES_SERVICE_HOST)."""
    api_server = os.environ.get("KUBERNETES_SERVICE_HOST", "")
    extra = parse_networks([api_server]) if as_address(api_server) is not None else ()
    return (*args.denied_cidr, *extra)


# As the chart's schema: a revoked tenant keeping its sessions for more than an hour is no drain.
MAX_DRAIN_S = 3600


def non_negative_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= MAX_DRAIN_S:
        raise argparse.ArgumentTypeError(f"{text!r}: seconds must lie between 0 and {MAX_DRAIN_S}")
    return value


def hard_open_files_limit() -> int | None:
    """This container's hard RLIMIT_NOFILE, which the HAProxy container shares (one runtime, one pod spec);
    None when unlimited."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return None if hard == resource.RLIM_INFINITY else hard


def settings_from(args: argparse.Namespace) -> HaproxySettings:
    return HaproxySettings(
        runtime_dir=str(pathlib.Path(args.runtime_dir).resolve()),
        bind_address=args.bind_address,
        max_connections=args.max_connections,
        memory_limit_bytes=args.memory_limit_bytes,
        open_files_limit=hard_open_files_limit(),
        threads=args.threads,
        buffer_size=args.buffer_size,
        splice=args.splice,
        pipe_size=args.pipe_size,
        busy_polling=args.busy_polling,
        health_check_interval_ms=args.health_check_interval_ms,
        health_port=args.health_port,
    )


class Agent:
    def __init__(
        self,
        args: argparse.Namespace,
        store: RouteStore,
        source_run: Callable[[threading.Event], None],
        writer: StatusWriter,
    ) -> None:
        self.args = args
        self.settings = settings_from(args)
        runtime_dir = pathlib.Path(self.settings.runtime_dir)
        runtime_dir.mkdir(parents=True, exist_ok=True)
        self.store = store
        self.source_run = source_run
        self.writer = writer
        self.master = HaproxyMaster(args.haproxy, runtime_dir, external=args.external_haproxy)
        self.applier = Applier(
            self.master,
            self.settings,
            lambda text: check_config(text, args.haproxy, runtime_dir),
            denied=denied_networks(args),
        )
        self.drainer = RevocationDrainer(self.master, args.revocation_drain_seconds)
        if self.settings.memory_limit_bytes is not None:
            budget = session_budget(
                self.settings.memory_limit_bytes,
                0,
                self.settings.buffer_size,
                self.settings.pipe_size,
                self.settings.open_files_limit,
            )
            log.log(
                logging.INFO if budget.fits else logging.WARNING,
                "memory limit %d MiB: at most %d sessions, %d buffers, %d pipes before any route (R49)%s%s",
                self.settings.memory_limit_bytes // (1 << 20),
                budget.max_connections,
                budget.buffers,
                budget.pipes,
                f"; sessions bounded by the open-file limit {self.settings.open_files_limit}"
                if budget.bounded_by_open_files
                else "",
                "" if budget.fits else "; the limit is too small, floors apply: raise it",
            )
        self.stop = threading.Event()
        self.drain = GatewayDrain(args.drain_leave_seconds, args.drain_seconds)

    def begin_drain(self) -> None:
        """SIGTERM (R52): report draining at once, serve on for the leave delay, then stop listening and let
        open sessions end within the drain period. Safe from a signal handler."""
        self.drain.begin()
        self.store.changed.set()

    def _drain_step(self) -> bool:
        """Advance the drain; True when it is over (HAProxy gone, or the drain period spent)."""
        if self.drain.stop_listening_due():
            log.info("draining: listeners stop; open sessions have %.0f s (R52)", self.drain.sessions_s)
            self.master.soft_stop()
        if self.drain.listening:
            return False
        if not self.master.running():
            log.info("drained: HAProxy has closed its last session")
            return True
        if self.drain.overdue():
            log.warning("drain period over: cutting the sessions still open")
            return True
        return False

    def run(self) -> None:
        raise_file_limit()
        adopted = self.master.adopt()
        source = threading.Thread(target=self.source_run, args=(self.stop,), name="route-source", daemon=True)
        source.start()
        # R43: revoked endpoints' sessions are cut on a thread of their own, so that a long sweep never
        # delays an apply ("show sess" of an old worker holding 4,000 sessions: 0.2 s to read, 0.1 to parse).
        drainer = threading.Thread(
            target=self.drainer.run,
            args=(self.stop, self.master.running),
            name="revocation-drainer",
            daemon=True,
        )
        drainer.start()
        # Only apply once the source listed everything: applying an empty set first would drop
        # the routes a surviving (adopted) HAProxy still serves.
        while not self.stop.is_set() and not self.store.snapshot().synced:
            self.store.changed.wait(0.5)
        if adopted:
            log.info("rebuilding the configuration of the adopted HAProxy from the route source")
            self.applier.adopt(self.master.config_path.read_text())
        next_heartbeat = 0.0
        next_retry = time.monotonic() + self.args.retry_interval
        while not self.stop.is_set():
            if self.drain.started is not None:
                if not self.drain.reported:
                    log.info("SIGTERM: draining; out of the EndpointSlices, still serving for %.0f s (R52)",
                             self.drain.leave_s)  # fmt: skip
                    self.drain.reported = True
                    next_heartbeat = 0.0
                if self._drain_step():
                    self.report()
                    break
            if not self.drain.listening:
                # HAProxy is stopping: never restart or reload it; the heartbeat goes on (still draining).
                if self.store.changed.is_set():
                    self.store.changed.clear()
                    # R43 holds while draining: a revoked endpoint's sessions are cut after its own drain.
                    listed = served_endpoints(self.store.snapshot())
                    self.drainer.observe(listed, self.applier.state.live_routes)
                if time.monotonic() >= next_heartbeat:
                    self.report()
                    next_heartbeat = time.monotonic() + self.args.heartbeat_interval
                self.store.changed.wait(0.2)
                continue
            if self.applier.state.retry_wanted and time.monotonic() >= next_retry:
                # A route whose port another process held may be fine now: try again, unchanged. Routes
                # HAProxy refused wait for a change of their own content (reloader.py, R49).
                self.store.changed.set()
                next_retry = time.monotonic() + self.args.retry_interval
            if self.store.changed.is_set() or not self.master.running():
                if self.master.running():
                    wait_for_quiet(self.store.changed, self.args.debounce, self.args.max_debounce)
                self.store.changed.clear()
                snapshot = self.store.snapshot()
                try:
                    self.applier.apply(snapshot)
                except Exception as error:  # never a crash loop: log, report, retry at the next change
                    log.exception("applying routes failed")
                    self.applier.state.error = f"applying routes failed: {error}"
                # After the apply: the reload has closed a revoked endpoint's listeners already.
                self.drainer.observe(served_endpoints(snapshot), self.applier.state.live_routes)
                next_heartbeat = 0.0
            if time.monotonic() >= next_heartbeat:
                self.report()
                next_heartbeat = time.monotonic() + self.args.heartbeat_interval
            self.store.changed.wait(min(1.0, max(0.0, next_heartbeat - time.monotonic())))

    def report(self) -> None:
        state = self.applier.state
        try:
            unhealthy = (
                unhealthy_backends(self.master.worker_command("show stat")) if self.master.running() else []
            )
        except OSError as error:
            log.warning("cannot read HAProxy stats: %s", error)
            unhealthy = []
        status = bounded_status(
            gateway=self.args.name,
            address=self.args.address,
            heartbeat=rfc3339_now(),
            applied_resource_version=state.version,
            rejected=state.rejected,
            unhealthy=[b for b in unhealthy if b.endpointId in state.live_routes],
            error=state.error,
            draining=self.drain.started is not None,
        )
        try:
            self.writer.write(status)
        except Exception as error:  # the API may be away for a while; the next heartbeat retries
            log.warning("cannot write gateway status: %s", error)

    def shutdown(self, graceful: bool = True) -> None:
        self.stop.set()
        self.master.stop(graceful=graceful)


def served_endpoints(snapshot: RouteSnapshot) -> set[str]:
    """Endpoints the source still lists. An unreadable route object is broken, not revoked: for the
    cluster source its key is the endpointId, and it keeps its sessions until the object goes."""
    return set(snapshot.routes) | set(snapshot.unreadable)


def kube_core_api(api_server: str | None = None, ca_file: str | None = None) -> Any:
    """A client with the pod's ServiceAccount (or the kubeconfig's) credentials; with ``api_server``, aimed
    at the operator's gateway channel, which passes the same token on to the API server (R45)."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    if api_server is None:
        return client.CoreV1Api()
    settings: Any = client.Configuration.get_default_copy()
    refresh_token = settings.refresh_api_key_hook

    def aim_at_the_channel(configuration: Any) -> None:
        # The kubeconfig loader's token refresh, run before every request, also resets the server it read
        # and installs itself again as the hook: undo both.
        if refresh_token is not None:
            refresh_token(configuration)
        configuration.host = api_server
        configuration.ssl_ca_cert = ca_file
        configuration.verify_ssl = True  # the token goes there: never to an unverified server
        configuration.cert_file = configuration.key_file = None  # the channel passes on a bearer token only
        configuration.refresh_api_key_hook = aim_at_the_channel

    aim_at_the_channel(settings)
    return client.CoreV1Api(client.ApiClient(settings))


def build_agent(args: argparse.Namespace) -> Agent:
    store = RouteStore()
    writer: StatusWriter
    source_run: Callable[[threading.Event], None]
    if args.routes_dir is not None:
        source_run = DirectoryRouteSource(args.routes_dir, store).run
        status_file = args.status_file or pathlib.Path(args.runtime_dir) / "status.json"
        writer = FileStatusWriter(status_file)
    else:
        core_api = functools.partial(kube_core_api, args.api_server, args.api_ca_file)
        source_run = KubeRouteSource(args.namespace, store, core_api).run
        writer = (
            FileStatusWriter(args.status_file)
            if args.status_file
            else ConfigMapStatusWriter(args.namespace, args.name, core_api, args.pod_uid)
        )
    return Agent(args, store, source_run, writer)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    agent = build_agent(args)
    if args.metrics_port:
        # Imported only when asked for: prometheus_client brings an HTTP stack the data path never needs.
        from vpcep.gateway.metrics import GatewayCollector, serve_metrics

        serve_metrics(
            GatewayCollector(
                agent.master, lambda: agent.applier.state, lambda: agent.store.snapshot().routes
            ),
            args.metrics_port,
            args.bind_address,
        )

    def on_signal(signum: int, _frame: object) -> None:
        if signum == signal.SIGTERM and agent.drain.started is None:
            agent.begin_drain()  # the kubelet's stop: drain (R52)
            return
        log.info("signal %d: stopping now", signum)  # Ctrl-C, or a second signal: no drain
        agent.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        agent.run()
    finally:
        # After a drain what is left is cut (its period is over); otherwise sessions get the usual grace.
        agent.shutdown(graceful=agent.drain.started is None)
    return 0


if __name__ == "__main__":
    sys.exit(main())

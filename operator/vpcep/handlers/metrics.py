"""The operator's Prometheus ``/metrics`` (docs/observability.md).

Two kinds of figure:
- Events, counted where they happen through small hooks: reconciles per kind (count, errors, duration),
  the work queue's wait, webhook calls and denials by reason.
- State, computed when Prometheus scrapes, from the caches the operator keeps anyway: Endpoints and
  EndpointServices by phase, connections pending acceptance, quota used and limits per account, ready
  gateways, queue depth. Nothing is stored for metrics alone, so memory does not grow with them.

Every label set is bounded by something small: kinds, phases, reasons, and accounts or provider
namespaces (tenants, not objects). Nothing is labelled per Endpoint: per-endpoint figures come from
the gateways.

The state is read on the operator's event loop (``run_coroutine_threadsafe``), never from the HTTP
thread, so a scrape never sees a cache in the middle of a change.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import json
import logging
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import kopf
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vpcep.api.endpoint import EndpointPhase
from vpcep.api.endpoint_service import ServicePhase

if TYPE_CHECKING:
    from vpcep.controllers.context import Operator

log = logging.getLogger(__name__)

RECONCILES = Counter("vpcep_reconciles", "Reconciles run, per kind of key.", ["kind"])
RECONCILE_ERRORS = Counter(
    "vpcep_reconcile_errors", "Reconciles that failed and were retried with backoff, per kind.", ["kind"]
)
RECONCILE_SECONDS = Histogram(
    "vpcep_reconcile_duration_seconds",
    "Time one reconcile took, per kind.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUEUE_WAIT_SECONDS = Histogram(
    "vpcep_workqueue_wait_seconds",
    "Time a key waited in the work queue before a worker took it.",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
WEBHOOK_REQUESTS = Counter(
    "vpcep_webhook_requests", "Admission requests judged, per kind and operation.", ["kind", "operation"]
)
WEBHOOK_DENIALS = Counter(
    "vpcep_webhook_denials",
    "Admission requests refused, per kind and reason (QuotaExceeded, NotPermitted, InvalidSpec, ...).",
    ["kind", "reason"],
)
CHANNEL_REFUSALS = Counter(
    "vpcep_gateway_channel_refusals",
    "Requests the gateway channel refused (R45), per HTTP status: 401 without a token, 403 not a gateway's.",
    ["code"],
)
LEADER = Gauge("vpcep_leader", "1 while this replica holds the leader Lease and reconciles (R50).")
# Every kind's series exist from the start (at 0), so dashboards and alerts see them before the first error.
for _code in ("401", "403"):
    CHANNEL_REFUSALS.labels(_code)
for _kind in ("Endpoint", "EndpointService", "Whitelist", "Quota", "Orphans"):  # the controllers' names
    RECONCILES.labels(_kind)
    RECONCILE_ERRORS.labels(_kind)
    RECONCILE_SECONDS.labels(_kind)
STATE_TIMEOUT_SECONDS = 10.0
# Phases an Endpoint waits in; the alert on endpoints stuck there reads the oldest one's age.
WAITING_PHASES = (EndpointPhase.CREATING.value, EndpointPhase.PENDING_ACCEPTANCE.value)


@contextlib.contextmanager
def reconciling(kind: str) -> Iterator[None]:
    """Count and time one reconcile; an exception counts as an error (the queue retries it)."""
    started = time.perf_counter()
    try:
        yield
    except Exception as error:
        if type(error).__name__ != "RetryLater":  # a planned retry is not a failure
            RECONCILE_ERRORS.labels(kind).inc()
        raise
    finally:
        RECONCILES.labels(kind).inc()
        RECONCILE_SECONDS.labels(kind).observe(time.perf_counter() - started)


def observe_queue_wait(seconds: float) -> None:
    QUEUE_WAIT_SECONDS.observe(seconds)


def observe_leading(leading: bool) -> None:
    LEADER.set(1 if leading else 0)


class Denied(kopf.AdmissionError):
    """An admission refusal that says which rule refused (the reason label of the denial counter)."""

    def __init__(self, reason: str, message: str, code: int) -> None:
        super().__init__(message, code=code)
        self.reason = reason


Handler = TypeVar("Handler", bound=Callable[..., Awaitable[None]])
REASON_OF_CODE = {422: "InvalidSpec", 503: "OperatorStarting"}


def observe_admission(kind: str) -> Callable[[Handler], Handler]:
    """Count a validating handler's calls and its denials by reason."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def judged(**kwargs: Any) -> None:
            WEBHOOK_REQUESTS.labels(kind, str(kwargs.get("operation") or "")).inc()
            try:
                await handler(**kwargs)
            except kopf.AdmissionError as error:
                reason = getattr(error, "reason", None) or REASON_OF_CODE.get(error.code or 0, "Refused")
                WEBHOOK_DENIALS.labels(kind, reason).inc()
                raise

        return judged  # type: ignore[return-value]

    return decorate


# --- state, computed at scrape time on the event loop
def _phase(status_json: str | None, field: str = "phase") -> str:
    if not status_json:
        return "None"
    try:
        value = json.loads(status_json).get(field)
    except (ValueError, AttributeError):
        return "None"
    return str(value) if value else "None"


def _since(status_json: str | None, created: str, now: datetime.datetime) -> float:
    """Seconds since the Ready condition last changed (else since creation): time spent in the phase."""
    moment = created
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        for condition in json.loads(status_json or "{}").get("conditions") or []:
            if condition.get("type") == "Ready" and condition.get("lastTransitionTime"):
                moment = condition["lastTransitionTime"]
    try:
        start = datetime.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, (now - start).total_seconds())


def state_metrics(rt: Operator) -> list[Metric]:
    observed = rt.observed
    now = datetime.datetime.now(datetime.UTC)
    endpoint_phases: Tally[str] = Tally()
    oldest_waiting: dict[str, float] = dict.fromkeys(WAITING_PHASES, 0.0)
    used: Tally[tuple[str, str]] = Tally()
    for record in observed.records("endpoints", "ep"):
        phase = _phase(record.status_json)
        endpoint_phases[phase] += 1
        if phase in oldest_waiting:
            age = _since(record.status_json, record.meta.created, now)
            oldest_waiting[phase] = max(oldest_waiting[phase], age)
        if not record.meta.deleting:
            used[(observed.account(record.meta.namespace), "endpoints")] += 1
    service_phases: Tally[str] = Tally()
    for service in observed.records("services", "es"):
        service_phases[service.status.phase.value if service.status and service.status.phase else "None"] += 1
        if not service.meta.deleting and not observed.is_system(service):
            used[(observed.account(service.meta.namespace), "services")] += 1
    pending: Tally[str] = Tally()
    for connection in observed.records("connections", "ec"):
        if not connection.deleting and _phase(connection.status_json, "state") == "PendingAcceptance":
            pending[connection.namespace] += 1

    endpoints = GaugeMetricFamily("vpcep_endpoints", "Endpoints by phase.", labels=["phase"])
    for phase in {*EndpointPhase.__members__.values(), *endpoint_phases}:
        endpoints.add_metric([str(phase)], endpoint_phases.get(str(phase), 0))
    services = GaugeMetricFamily("vpcep_endpoint_services", "EndpointServices by phase.", labels=["phase"])
    for phase in {*ServicePhase.__members__.values(), *service_phases}:
        services.add_metric([str(phase)], service_phases.get(str(phase), 0))
    waiting = GaugeMetricFamily(
        "vpcep_endpoint_oldest_waiting_seconds",
        "How long the oldest Endpoint in Creating or PendingAcceptance has been there (0: none).",
        labels=["phase"],
    )
    for phase, age in oldest_waiting.items():
        waiting.add_metric([phase], age)
    pending_family = GaugeMetricFamily(
        "vpcep_connections_pending_acceptance",
        "EndpointConnections waiting for the provider's decision, per provider namespace (R10).",
        labels=["namespace"],
    )
    for namespace, count in sorted(pending.items()):
        pending_family.add_metric([namespace], count)
    for whitelist in observed.records("whitelists", "wl"):
        if not whitelist.meta.deleting:
            used[(observed.account(whitelist.meta.namespace), "whitelists")] += 1
    quota_used = GaugeMetricFamily(
        "vpcep_quota_used",
        "Objects (gateway ports) counted against the account's quota (R9, R22, R49).",
        labels=["account", "kind"],
    )
    quota_limit = GaugeMetricFamily(
        "vpcep_quota_limit", "The account's quota (R9, R22, R49).", labels=["account", "kind"]
    )
    policy = rt.quota
    for account in sorted({account for account, _ in used}):
        used[(account, "gatewayPorts")] = rt.gateway_port_quota.held_by_account(account)
        for kind, limit in (
            ("endpoints", policy.endpoint_limit(account)),
            ("services", policy.service_limit(account)),
            ("gatewayPorts", policy.gateway_port_limit(account)),
            ("whitelists", policy.whitelist_limit(account)),
        ):
            quota_used.add_metric([account, kind], used.get((account, kind), 0))
            quota_limit.add_metric([account, kind], limit)
    fleet = rt.fleet_view()
    return [
        endpoints,
        services,
        waiting,
        pending_family,
        quota_used,
        quota_limit,
        GaugeMetricFamily(
            "vpcep_gateways_ready",
            "Gateways counted ready: believed, with a fresh heartbeat or held static (R30, R52).",
            value=len(fleet.ready),
        ),
        GaugeMetricFamily(
            "vpcep_gateways_held_static",
            "1 while no gateway status is fresh and the last good gateways are kept in EndpointSlices (fail "
            "static, R52): check the API server and the gateway agents.",
            value=1 if fleet.held_static else 0,
        ),
        GaugeMetricFamily(
            "vpcep_gateway_statuses_distrusted",
            "Gateway status reports not believed: not from a Ready gateway pod at its IP (R47).",
            value=len(fleet.distrusted),
        ),
        GaugeMetricFamily(
            "vpcep_gateways_known",
            "Gateways with a status report, fresh or not.",
            value=len(observed.gateways()),
        ),
        GaugeMetricFamily("vpcep_workqueue_depth", "Keys queued or being reconciled.", value=len(rt.queue)),
        GaugeMetricFamily(
            "vpcep_caches_primed", "1 once every watched kind has been listed.", value=1 if rt.primed else 0
        ),
    ]


class StateCollector(Collector):
    """Runs ``state_metrics`` on the operator's loop; before start-up (no operator yet) it reports nothing."""

    def __init__(self) -> None:
        self.operator: Operator | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def collect(self) -> Iterator[Metric]:
        if self.operator is None or self.loop is None or self.loop.is_closed():
            return
        operator = self.operator

        async def compute() -> list[Metric]:
            return state_metrics(operator)

        try:
            families = asyncio.run_coroutine_threadsafe(compute(), self.loop).result(STATE_TIMEOUT_SECONDS)
        except Exception as error:  # a busy or stopping loop: this scrape lacks the state, the next has it
            log.warning("metrics: operator state not available: %s", error)
            return
        yield from families


STATE = StateCollector()
REGISTRY.register(STATE)


def watch_operator(operator: Operator) -> None:
    """Called once from start-up, on the event loop: the state figures come from this operator."""
    STATE.operator = operator
    STATE.loop = asyncio.get_running_loop()


def serve_metrics(port: int, address: str = "0.0.0.0") -> None:
    start_http_server(port, addr=address)
    log.info("serving metrics on %s:%d/metrics", address, port)

"""The gateway fleet as the operator sees it: which gateways are ready and what each has applied (R30, R32),
which gateway reports it believes (R47), how it judges them alive without trusting their clocks (R52), and
which endpoints a gateway report concerns.

Liveness (R52). A gateway rewrites its status ConfigMap at every heartbeat; the operator counts a gateway
alive while it has seen that object change (a new resourceVersion) within the heartbeat timeout, timed on its
own monotonic clock, as client-go's leader election times a Lease's renewals: the time the gateway writes into
its report is never compared with the operator's, so clock skew neither withdraws nor keeps a gateway. When
every believed gateway goes stale at once (an API outage, refused status writes, paused agents: causes that
hit all gateways together and say nothing about their HAProxy), the last good set is kept (fail static),
logged, and exported as a metric; one stale gateway among fresh ones is withdrawn as before. A gateway that is
really gone is withdrawn by pod readiness, judged by kubelet and the API server (R47 trust,
vpcep.domain.fleet_trust).

Every gateway rewrites its status ConfigMap on each heartbeat. Waking every waiting endpoint on every report
made a bulk create quadratic; instead an endpoint waiting for its route wakes when the fleet has applied the
route version it waits for, established endpoints wake when the set of ready gateways changes (their
EndpointSlice lists them), and an endpoint wakes when a gateway starts or stops reporting a problem with it (a
refused route, an unreachable backend).
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from vpcep.api.routing import LISTED_PROBLEMS, SHORT_ID_CHARS, GatewayStatus, short_id
from vpcep.domain.fleet_trust import GatewayPod, StatusClaim, TrustVerdict, judge_statuses
from vpcep.state.records import GatewayRecord

logger = logging.getLogger(__name__)


def _in_digest(digest: list[str], endpoint_id: str) -> bool:
    """The digests are sorted short ids (vpcep.gateway.status.bounded_status)."""
    wanted = short_id(endpoint_id)
    at = bisect.bisect_left(digest, wanted)
    return at < len(digest) and digest[at] == wanted


def _unlisted(gateway: GatewayStatus) -> str:
    return (
        f"gateway {gateway.gateway} reports {gateway.unlistedProblems} problem(s) more than its status can "
        "name; this endpoint may be among them: see that gateway's log"
    )


def refusal(gateway: GatewayStatus, endpoint_id: str) -> str | None:
    """Why this gateway refused the endpoint's route, as far as its bounded status tells (R52)."""
    if endpoint_id in gateway.rejectedRoutes:
        return gateway.rejectedRoutes[endpoint_id]
    if _in_digest(gateway.moreRejectedRoutes, endpoint_id):
        return (
            f"refused, one of {gateway.rejectedRoutesTotal} refused routes (the first {LISTED_PROBLEMS} are "
            "reported with a reason): see the gateway's log"
        )
    return _unlisted(gateway) if gateway.unlistedProblems else None


def unreachability(gateway: GatewayStatus, endpoint_id: str) -> str | None:
    """Why this gateway cannot reach the endpoint's backend, as far as its bounded status tells (R32, R52)."""
    for health in gateway.unhealthyBackends:
        if health.endpointId == endpoint_id and not health.reachable:
            return health.message or "no answer"
    if _in_digest(gateway.moreUnhealthyBackends, endpoint_id):
        return (
            f"one of {gateway.unhealthyBackendsTotal} unreachable backends (the first {LISTED_PROBLEMS} are "
            "reported with details): see the gateway's log"
        )
    return _unlisted(gateway) if gateway.unlistedProblems else None


@dataclass(frozen=True)
class FleetView:
    # Gateways that take new connections: their addresses are in every EndpointSlice.
    ready: tuple[GatewayStatus, ...]
    # R52: no believed gateway reported within the timeout; `ready` is the last good set, kept.
    held_static: bool = False
    # R47: status reports not believed, with the reason (they count for nothing).
    distrusted: tuple[TrustVerdict, ...] = ()
    # R52: gateways that are terminating (their report says so, or their pod has a deletionTimestamp): out of
    # every EndpointSlice at once, never waited for, but still serving the sessions they hold.
    draining: tuple[GatewayStatus, ...] = ()

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(sorted({gateway.address for gateway in self.ready}))

    @property
    def cap_sharers(self) -> int:
        """The gateways R21's cap is shared by (vpcep.domain.connection_cap): the ready ones and the draining
        ones. A draining gateway still holds up to its share of an endpoint's sessions, so counting it keeps
        the total at or under the cap; and a drain then rewrites no route, so the slices are left at once
        (the share changes when the drained gateway's report goes, as for any gateway that leaves)."""
        return len(self.ready) + len(self.draining)

    def applied(self, route_resource_version: int | None) -> bool:
        """Every ready gateway serves the route (its ConfigMap version is covered by each one's report)."""
        if route_resource_version is None or not self.ready:
            return False
        return all(gateway.appliedResourceVersion >= route_resource_version for gateway in self.ready)

    def rejected(self, endpoint_id: str) -> str | None:
        for gateway in self.ready:
            why = refusal(gateway, endpoint_id)
            if why is not None:
                return f"{gateway.gateway}: {why}"
        return None

    def blocking_error(self, route_resource_version: int | None) -> str | None:
        """Why a ready gateway has not applied this route yet, when it says: a gateway-wide error, or no
        fresh report at all (held static, R52)."""
        for gateway in self.ready:
            behind = route_resource_version is None or gateway.appliedResourceVersion < route_resource_version
            if behind and self.held_static:
                return (
                    f"gateway {gateway.gateway}: no fresh status report from any gateway (API server "
                    "unreachable, status writes refused or agents stopped?); the last known gateways keep "
                    "serving existing endpoints"
                )
            if gateway.error and behind:
                return f"gateway {gateway.gateway}: {gateway.error}"
        return None

    def unreachable(self, endpoint_id: str) -> str | None:
        for gateway in self.ready:
            why = unreachability(gateway, endpoint_id)
            if why is not None:
                return f"backend unreachable from gateway {gateway.gateway}: {why}"
        return None


def claim_of(record: GatewayRecord) -> StatusClaim | None:
    if record.status is None:
        return None
    return StatusClaim(object_name=record.name, gateway=record.status.gateway, address=record.status.address)


def gateway_pod(body: dict[str, Any]) -> GatewayPod:
    """The few fields of a pod that decide whether its gateway's report is believed (R47)."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    owners: list[dict[str, Any]] = meta.get("ownerReferences") or []
    controller = next((ref for ref in owners if ref.get("controller")), {})
    ips = [str(status["podIP"])] if status.get("podIP") else []
    ips += [str(entry.get("ip")) for entry in status.get("podIPs") or [] if entry.get("ip") not in ips]
    ready = any(
        condition.get("type") == "Ready" and condition.get("status") == "True"
        for condition in status.get("conditions") or []
    )
    return GatewayPod(
        name=str(meta.get("name", "")),
        ips=tuple(ips),
        phase=str(status.get("phase") or ""),
        ready=ready,
        terminating=bool(meta.get("deletionTimestamp")),
        controller_kind=str(controller.get("kind") or ""),
        controller_name=str(controller.get("name") or ""),
        pod_template_hash=str((meta.get("labels") or {}).get("pod-template-hash") or ""),
    )


GATEWAY_PODS_KEY = ("gateway-pods",)


def index_gateway_pods(body: dict[str, Any], **_: Any) -> dict[tuple[str, ...], Any]:
    """The gateway pods' cache: every pod under one key (the fleet is read whole, and is a few pods)."""
    return {GATEWAY_PODS_KEY: gateway_pod(body)}


class FleetObserver:
    """What this process has seen of the gateway fleet over time: when each status object last changed (its
    own monotonic clock), the last good set, the distrust already reported (R47, R52)."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, float]] = {}  # status object -> (resourceVersion, when it changed)
        self._last_good: frozenset[str] = frozenset()  # status objects fresh at the last fresh moment
        self._held = False
        self._reported: set[tuple[str, str]] = set()  # (status object, reason) logged already
        self._draining: frozenset[str] = frozenset()  # status objects draining at the last view (logged)

    def view(
        self,
        records: Iterable[GatewayRecord],
        now: float,
        timeout_seconds: float,
        pods: Iterable[GatewayPod] | None = None,
        deployment: str = "",
    ) -> FleetView:
        """The ready gateways: believed (with `pods`: reported by a Ready pod of `deployment` at its IP,
        R47), and fresh -- or, when none is fresh, the last good set (R52). `now`: this process's monotonic
        clock."""
        known = list(records)
        believed, distrusted, terminating = self._believed(known, pods, deployment)
        for record in believed:
            seen = self._seen.get(record.name)
            if seen is None or seen[0] != record.version:
                self._seen[record.name] = (record.version, now)
        for gone in set(self._seen) - {record.name for record in known}:
            del self._seen[gone]

        def fresh_ones() -> list[GatewayRecord]:
            return [r for r in believed if now - self._seen[r.name][1] <= timeout_seconds]

        fresh = fresh_ones()
        if fresh and self._held:
            # The first report after an outage ends the hold; the others held so far get a full timeout to
            # report too (nothing could be judged meanwhile), so they are not withdrawn for being second.
            for record in believed:
                if record.name in self._last_good:
                    self._seen[record.name] = (record.version, now)
            fresh = fresh_ones()
        if fresh or not believed:
            kept, held = fresh, False
            self._last_good = frozenset(r.name for r in fresh)
        else:
            kept = [r for r in believed if r.name in self._last_good]
            held = bool(kept)
        self._note_hold(held, kept, believed)
        draining = {r.name for r in kept if r.name in terminating or (r.status and r.status.draining)}
        self._note_draining(draining)

        def statuses(leaving: bool) -> tuple[GatewayStatus, ...]:
            chosen = (r.status for r in kept if r.status is not None and (r.name in draining) is leaving)
            return tuple(sorted(chosen, key=lambda status: status.gateway))

        return FleetView(
            ready=statuses(False), held_static=held, distrusted=distrusted, draining=statuses(True)
        )

    def _believed(
        self, records: list[GatewayRecord], pods: Iterable[GatewayPod] | None, deployment: str
    ) -> tuple[list[GatewayRecord], tuple[TrustVerdict, ...], frozenset[str]]:
        """The believed records, the verdicts against the others, and the believed ones whose pod is
        terminating (R52: draining)."""
        readable = [record for record in records if record.status is not None]
        if pods is None:  # trust not enforced (config verifyGatewayPods: false)
            return readable, (), frozenset()
        claims = {record.name: claim for record in readable if (claim := claim_of(record)) is not None}
        verdicts = judge_statuses(claims.values(), pods, deployment)
        trusted = {verdict.object_name for verdict in verdicts if verdict.trusted}
        distrusted = tuple(verdict for verdict in verdicts if not verdict.trusted)
        terminating = frozenset(verdict.object_name for verdict in verdicts if verdict.draining)
        return [record for record in readable if record.name in trusted], distrusted, terminating

    def _note_draining(self, draining: set[str]) -> None:
        for name in sorted(draining - self._draining):
            logger.info("gateway %s drains: out of every EndpointSlice, serving its sessions (R52)", name)
        self._draining = frozenset(draining)

    def _note_hold(self, held: bool, kept: list[GatewayRecord], believed: list[GatewayRecord]) -> None:
        if held and not self._held:
            logger.warning(
                "no fresh status report from any of %d gateway(s): keeping the last good set %s in every "
                "EndpointSlice (fail static, R52); check the API server and the gateway agents",
                len(believed),
                ", ".join(sorted(r.name for r in kept)) or "(empty)",
            )
        elif self._held and not held:
            logger.info("gateway status reports are fresh again: fail static over (R52)")
        self._held = held

    def unreported(self, view: FleetView) -> list[TrustVerdict]:
        """Distrust verdicts not reported before (each is logged and evented once per status and reason)."""
        news = [v for v in view.distrusted if (v.object_name, str(v.reason)) not in self._reported]
        self._reported.update((v.object_name, str(v.reason)) for v in news)
        current = {(v.object_name, str(v.reason)) for v in view.distrusted}
        self._reported &= current  # a status trusted again is reported again when it next is not
        return news


Ref = tuple[str, str]  # (namespace, name) of an Endpoint
Problem = tuple[str, str, str]  # (gateway, endpoint id, problem)


def problem_endpoints(fleet: FleetView) -> frozenset[Problem]:
    """(gateway, endpoint id, problem) for every refused route and unreachable backend the fleet reports;
    past the listed ones (R52), (gateway, short id, kind) and (gateway, "", count of unlisted problems)."""
    problems: set[Problem] = set()
    for gateway in fleet.ready:
        problems.update(
            (gateway.gateway, endpoint_id, why) for endpoint_id, why in gateway.rejectedRoutes.items()
        )
        problems.update(
            (gateway.gateway, health.endpointId, health.message or "unreachable")
            for health in gateway.unhealthyBackends
            if not health.reachable
        )
        problems.update((gateway.gateway, short, "refused") for short in gateway.moreRejectedRoutes)
        problems.update((gateway.gateway, short, "unreachable") for short in gateway.moreUnhealthyBackends)
        if gateway.unlistedProblems:
            problems.add((gateway.gateway, "", f"{gateway.unlistedProblems} unlisted"))
    return frozenset(problems)


def _named_by_id(endpoint_id: str) -> bool:
    """A full endpoint id; a short id (a digest entry) or "" (unlisted problems) names no one endpoint."""
    return len(endpoint_id) > SHORT_ID_CHARS


class GatewayFleet:
    """Which endpoints depend on the fleet, and what the fleet looked like when they were last woken."""

    def __init__(self) -> None:
        # endpoint -> the route resourceVersion it waits for the fleet to apply (None: any gateway report)
        self._waiting: dict[Ref, int | None] = {}
        self._established: set[Ref] = set()  # Creating or Accepted: its EndpointSlice lists the gateways
        # What established endpoints were last woken for: the slice addresses and R21's cap share (R52).
        self._shape: tuple[tuple[str, ...], int] = ((), 0)
        self._problems: frozenset[Problem] = frozenset()

    def track(self, ref: Ref, *, waiting: bool, awaited_version: int | None, established: bool) -> None:
        """After an endpoint's reconcile: what it waits for from the fleet; whether it is established."""
        if waiting:
            self._waiting[ref] = awaited_version
        else:
            self._waiting.pop(ref, None)
        if established:
            self._established.add(ref)
        else:
            self._established.discard(ref)

    def forget(self, ref: Ref) -> None:
        self._waiting.pop(ref, None)
        self._established.discard(ref)

    def moved(self, fleet: FleetView) -> bool:
        """The set of ready gateways (their slices) or the number sharing the cap (their routes) differs from
        what dependents last saw (a heartbeat went stale, a gateway began draining or went)."""
        return (fleet.addresses, fleet.cap_sharers) != self._shape

    def concerned(self, fleet: FleetView, endpoint_by_id: Callable[[str], Ref | None]) -> set[Ref]:
        """The endpoints a new fleet report concerns; remembers the report as seen."""
        refs = {ref for ref, awaited in self._waiting.items() if awaited is None or fleet.applied(awaited)}
        if self.moved(fleet):
            self._shape = (fleet.addresses, fleet.cap_sharers)
            refs |= set(self._waiting) | self._established
        problems = problem_endpoints(fleet)
        if problems != self._problems:
            for _gateway, endpoint_id, _why in problems ^ self._problems:
                if not _named_by_id(endpoint_id):
                    # Past the listed problems (more than LISTED_PROBLEMS of them): which endpoint a short id
                    # names is not indexed; every dependent looks again (rare, and one pass per change).
                    refs |= set(self._waiting) | self._established
                    continue
                ref = endpoint_by_id(endpoint_id)
                if ref is not None:
                    refs.add(ref)
            self._problems = problems
        return refs

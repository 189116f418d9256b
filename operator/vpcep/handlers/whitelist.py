"""Reconcile one Whitelist: its own status (R12: malformed entries named), then the service's
endpoints (R13, R14).
"""

from __future__ import annotations

from vpcep.domain.whitelist import WhitelistFacts, decide_whitelist
from vpcep.handlers.runtime import WHITELIST_KEY, Runtime, involved, rfc3339, utc_now
from vpcep.handlers.service import wake_endpoints_of
from vpcep.k8s.resources import WHITELIST


async def reconcile_whitelist(rt: Runtime, namespace: str, name: str) -> None:
    record = rt.observed.whitelist(namespace, name)
    if record is None or record.meta.deleting:
        return
    target = involved(WHITELIST, namespace, name, record.meta.uid)
    if record.spec is None:
        phase, reason = "Failed", "InvalidSpec"
        message = f"Whitelist {namespace}/{name}: {record.spec_error}; fix the spec"
        conditions = [{"type": "Ready", "status": "False", "reason": reason, "message": message}]
    else:
        service = rt.observed.service(namespace, record.spec.endpointService)
        decision = decide_whitelist(
            WhitelistFacts(
                namespace=namespace,
                name=name,
                spec=record.spec,
                service_exists=service is not None and not service.meta.deleting,
            )
        )
        phase, reason, message = decision.phase, decision.reason.value, decision.message
        conditions = [
            {"type": c.type, "status": c.status_text, "reason": c.reason, "message": c.message}
            for c in decision.conditions
        ]
        if service is not None:
            wake_endpoints_of(rt, service)  # permission may have changed (R13 recovery, R14)
    if (record.status_phase, record.status_reason, record.observed_generation) == (
        phase,
        reason,
        record.meta.generation,
    ):
        return
    now = rfc3339(utc_now())
    status = {
        "phase": phase,
        "reason": reason,
        "message": message,
        "observedGeneration": record.meta.generation,
        "conditions": [
            {**c, "lastTransitionTime": now, "observedGeneration": record.meta.generation} for c in conditions
        ],
    }
    answer = await rt.api.patch_status(WHITELIST, namespace, name, status)
    if answer is not None and record.status_reason != reason:
        rt.event(target, phase != "Active", reason, message)


__all__ = ["WHITELIST_KEY", "reconcile_whitelist"]

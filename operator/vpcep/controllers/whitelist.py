"""The Whitelist controller: its own status (R12: malformed entries named), then the service's endpoints
(R13, R14). What wakes a whitelist is declared once, in CONTROLLER at the end of this module.
"""

from __future__ import annotations

from vpcep.controllers.context import Operator, involved, rfc3339, utc_now
from vpcep.controllers.keys import WhitelistKey
from vpcep.controllers.service import wake_endpoints_of
from vpcep.controllers.sources import NAMESPACES, SERVICES, WHITELISTS
from vpcep.domain.whitelist import WhitelistFacts, decide_whitelist
from vpcep.k8s.resources import WHITELIST
from vpcep.runtime.controller import Controller, Watches
from vpcep.runtime.source import Event
from vpcep.state.observed import account_changed, service_changed_for_readers


async def reconcile_whitelist(rt: Operator, key: WhitelistKey) -> None:
    namespace, name = key.namespace, key.name
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



# --- what wakes a whitelist


def _itself(rt: Operator, event: Event) -> list[WhitelistKey]:
    return [WhitelistKey(event.namespace, event.name)]


def _of_service(rt: Operator, event: Event) -> list[WhitelistKey]:
    """Whether the service a whitelist names exists (its status says so)."""
    if event.deleted or not service_changed_for_readers(event):
        return []
    return _in_namespace(rt, event.namespace)


def _of_relabelled_namespace(rt: Operator, event: Event) -> list[WhitelistKey]:
    if not account_changed(event) or not rt.observed.service_names_in(event.name):
        return []
    return _in_namespace(rt, event.name)


def _in_namespace(rt: Operator, namespace: str) -> list[WhitelistKey]:
    return [WhitelistKey(namespace, name) for name in rt.observed.whitelist_keys_in(namespace)]


CONTROLLER = Controller(
    name="Whitelist",
    key=WhitelistKey,
    reconcile=reconcile_whitelist,
    watches=(
        Watches(WHITELISTS, _itself),
        Watches(SERVICES, _of_service),
        Watches(NAMESPACES, _of_relabelled_namespace),
    ),
)

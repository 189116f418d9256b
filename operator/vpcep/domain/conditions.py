"""Kubernetes-style conditions (Ready, Permitted, Accepted, BackendReachable ...) from a decision.

A decision says what each condition should be (`ConditionSpec`); `merge_conditions` turns that into the
status list, keeping lastTransitionTime when a condition's status did not change, so that a reconcile
that changes nothing writes nothing new (level-triggered, idempotent). `now` is passed in: no clock here.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Literal

from vpcep.api.common import CommonStatus, Condition
from vpcep.domain.facts import Frozen


class ConditionType(StrEnum):
    READY = "Ready"
    PERMITTED = "Permitted"
    ACCEPTED = "Accepted"
    BACKEND_FOUND = "BackendFound"
    BACKEND_REACHABLE = "BackendReachable"
    WITHIN_QUOTA = "WithinQuota"
    DATA_PATH_READY = "DataPathReady"


class ConditionSpec(Frozen):
    type: str
    status: bool | None = None  # None is "Unknown"
    reason: str
    message: str = ""

    @property
    def status_text(self) -> Literal["True", "False", "Unknown"]:
        if self.status is None:
            return "Unknown"
        return "True" if self.status else "False"


def condition(type_: str, status: bool | None, reason: str, message: str = "") -> ConditionSpec:
    return ConditionSpec(type=type_, status=status, reason=reason, message=message)


def merge_conditions(
    existing: Sequence[Condition], desired: Sequence[ConditionSpec], *, now: str, generation: int | None
) -> list[Condition]:
    """Desired conditions in order, then any existing ones the decision does not speak about (kept as is)."""
    previous = {c.type: c for c in existing}
    merged: list[Condition] = []
    for spec in desired:
        old = previous.pop(spec.type, None)
        changed = old is None or old.status != spec.status_text
        merged.append(
            Condition(
                type=spec.type,
                status=spec.status_text,
                reason=spec.reason,
                message=spec.message,
                lastTransitionTime=now if changed or old is None else (old.lastTransitionTime or now),
                observedGeneration=generation,
            )
        )
    merged.extend(previous.values())
    return merged


def common_status_fields(
    previous: CommonStatus | None,
    wanted: Sequence[ConditionSpec],
    reason: str | None,
    message: str | None,
    *,
    now: str,
    generation: int | None,
) -> dict[str, Any]:
    """The status fields all four kinds share; createdAt is the first time the operator saw the object."""
    existing: Sequence[Condition] = previous.conditions if previous else ()
    return {
        "observedGeneration": generation,
        "conditions": merge_conditions(existing, wanted, now=now, generation=generation),
        "reason": reason,
        "message": message,
        "createdAt": previous.createdAt if previous and previous.createdAt else now,
    }

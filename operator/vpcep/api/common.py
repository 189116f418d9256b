"""Shapes shared by every kind: conditions and the status fields all four kinds carry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

CATEGORY = "vpcep"


@dataclass(frozen=True)
class PrinterColumn:
    """One `kubectl get` column (additionalPrinterColumns)."""

    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class CrdInfo:
    """The CRD facts a model cannot express as a schema: names, short names, printer columns."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    printer_columns: tuple[PrinterColumn, ...] = ()
    categories: tuple[str, ...] = (CATEGORY,)
    extra_validations: tuple[dict[str, str], ...] = field(default=())

    @property
    def singular(self) -> str:
        return self.kind.lower()


def cel(
    rule: str, message: str, *, message_expression: str | None = None, reason: str | None = None
) -> dict[str, str]:
    """One `x-kubernetes-validations` entry. `message` names the field and the fix."""
    entry = {"rule": rule, "message": message}
    if message_expression is not None:
        entry["messageExpression"] = message_expression
    if reason is not None:
        entry["reason"] = reason
    return entry


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    """json_schema_extra carrying CEL rules into the generated CRD schema."""
    return {"x-kubernetes-validations": list(rules)}


def immutable(field_path: str, fix: str) -> dict[str, str]:
    """A transition rule: the field keeps the value it was created with."""
    return cel("self == oldSelf", f"{field_path} is immutable: {fix}")


class ApiModel(BaseModel):
    """Base of every CRD model: camelCase on the wire, unknown fields refused like the API server does."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)


class KindModel(ApiModel):
    """Base of the four top-level kinds; each declares its CRD names and columns in `crd`."""

    crd: ClassVar[CrdInfo]


class Condition(ApiModel):
    """A Kubernetes-style condition (metav1.Condition)."""

    type: str = Field(description="Condition type, e.g. Ready, Permitted, Accepted, BackendReachable.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(default="", description="CamelCase reason for the condition's last transition.")
    message: str = Field(default="", description="Human-readable, actionable detail.")
    lastTransitionTime: str | None = Field(default=None, description="RFC 3339 time of the last change.")
    observedGeneration: int | None = Field(
        default=None, description="metadata.generation this condition was computed from."
    )


class CommonStatus(ApiModel):
    """Status fields every kind reports (observedGeneration, conditions, phase, reason, message)."""

    observedGeneration: int | None = Field(
        default=None, description="The metadata.generation the operator last reconciled."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready and related conditions.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    reason: str | None = Field(default=None, description="Why the object is in its phase (CamelCase).")
    message: str | None = Field(default=None, description="What happened and what to do about it.")
    createdAt: str | None = Field(
        default=None, description="RFC 3339 time the operator first saw the object."
    )

"""Shapes shared by every kind: conditions and the status fields all four kinds carry."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ApiModel(BaseModel):
    """Base of every CRD model: camelCase on the wire, unknown fields refused like the API server does."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)


class Condition(ApiModel):
    """A Kubernetes-style condition (metav1.Condition)."""

    type: str = Field(description="Condition type, e.g. Ready, Permitted, Accepted, BackendReachable.")
    status: str = Field(description="True, False or Unknown.", pattern="^(True|False|Unknown)$")
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
    conditions: list[Condition] = Field(default_factory=list, description="Ready and related conditions.")
    reason: str | None = Field(default=None, description="Why the object is in its phase (CamelCase).")
    message: str | None = Field(default=None, description="What happened and what to do about it.")
    createdAt: str | None = Field(default=None, description="RFC 3339 time the operator first saw the object.")

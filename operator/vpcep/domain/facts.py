"""Small frozen projections of cluster objects that the decisions read (never raw dicts).

Controllers build these from the caches; tests build them directly.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from vpcep.api.endpoint import EndpointPhase, GatewayPort
from vpcep.api.endpoint_connection import Decision
from vpcep.api.endpoint_service import EndpointServiceSpec, ServicePhase, ServiceType
from vpcep.domain.reasons import Reason


class Frozen(BaseModel):
    """Base of domain values: immutable, hashable-by-content, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ObjectRef(Frozen):
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


# Endpoints in these phases were permitted and accepted, and hold (or are building) a data path.
ESTABLISHED_PHASES = frozenset({EndpointPhase.CREATING, EndpointPhase.ACCEPTED})


def is_established(phase: EndpointPhase | None) -> bool:
    """The one predicate for "established": an Endpoint in Creating or Accepted was permitted and accepted.

    It keeps going when its account leaves the whitelists (R14, the documented choice) and when approval is
    switched on (R11); its service cannot be deleted while it exists (R7).
    """
    return phase in ESTABLISHED_PHASES


class ServiceView(Frozen):
    """What an endpoint decision needs to know about its target EndpointService."""

    namespace: str
    name: str
    uid: str
    account: str = Field(description="Account of the provider namespace.")
    spec: EndpointServiceSpec
    service_name: str | None = Field(default=None, description="status.serviceName once published (R5).")
    service_id: str | None = None
    phase: ServicePhase | None = None
    reason: str | None = Field(
        default=None, description="status.reason, quoted to consumers when not Available."
    )
    system: bool = Field(default=False, description="A cloud service declared by the operator (R8, R37).")
    service_type: ServiceType = ServiceType.INTERFACE
    deleting: bool = Field(default=False, description="metadata.deletionTimestamp is set.")
    last_marker_id: int = Field(
        default=0,
        description="status.lastMarkerId: the highest marker id the service has on record (R33). Once an "
        "endpoint is gone only this remembers its marker, so the endpoint's finalizer waits for it.",
    )

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(namespace=self.namespace, name=self.name)


class EndpointView(Frozen):
    """What a service decision, a quota count or an allocation needs to know about one Endpoint."""

    namespace: str
    name: str
    uid: str
    account: str
    created: str = Field(description="metadata.creationTimestamp (RFC 3339, orders quota holders).")
    phase: EndpointPhase | None = None
    endpoint_id: str | None = None
    marker_id: int | None = None
    gateway_ports: tuple[GatewayPort, ...] = ()
    deleting: bool = False

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(namespace=self.namespace, name=self.name)

    @property
    def established(self) -> bool:
        return is_established(self.phase)


class WhitelistView(Frozen):
    """One Whitelist of a service; several add up (R12)."""

    namespace: str
    name: str
    endpoint_service: str
    accounts: tuple[str, ...] = ()


class ConnectionView(Frozen):
    """The provider's decision on one endpoint, from its EndpointConnection (R10, R11)."""

    decision: Decision = Decision.PENDING


class Refusal(Frozen):
    """An admission refusal: the webhook returns `message`; `field` is the JSON path it is about."""

    reason: Reason
    message: str
    field: str | None = None

    def __str__(self) -> str:
        return self.message

"""The contract between the operator and the gateway agents.

The operator writes one Route per Accepted endpoint into a ConfigMap in the operator's own
namespace (tenants cannot read it, so backend addresses never leak to consumers). Each gateway
agent reports what it serves in a GatewayStatus ConfigMap of its own.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from vpcep.api.common import ApiModel

ROUTE_LABEL = "vpcep.io/route"
ROUTE_DATA_KEY = "route.json"
ROUTE_NAME_PREFIX = "vpcep-route-"
GATEWAY_STATUS_LABEL = "vpcep.io/gateway-status"
GATEWAY_STATUS_DATA_KEY = "status.json"
GATEWAY_STATUS_NAME_PREFIX = "vpcep-gateway-"

# R52: the status object stays far below the API server's 1 MiB object limit whatever the number of routes
# (docs/security.md, "Gateway status size"). The first problems are listed with their messages; every
# further problem endpoint is named by a short id (so none is reported healthy by omission); only beyond
# DIGEST_ENTRIES, more than any port range can hold routes for at the defaults, are problems only counted.
LISTED_PROBLEMS = 100
PROBLEM_MESSAGE_CHARS = 300
ERROR_CHARS = 2000
DIGEST_ENTRIES = 50_000
SHORT_ID_CHARS = 10  # 40 bits: a healthy endpoint sharing a problem one's short id is a 1-in-20-million case


def short_id(endpoint_id: str) -> str:
    """What a status's digest names an endpoint by: the first hex digits of its UUID."""
    return endpoint_id.replace("-", "")[:SHORT_ID_CHARS].lower()


class Listener(ApiModel):
    """One port mapping of one endpoint, as served by every gateway."""

    gatewayPort: int = Field(ge=1, le=65535, description="Port the gateway listens on.")
    clientPort: int = Field(ge=1, le=65535, description="Port the consumer dials on the node IP.")
    backendHost: str = Field(min_length=1, description="Backend address the gateway connects to.")
    serverPort: int = Field(ge=1, le=65535, description="Backend port.")


class Route(ApiModel):
    endpointId: str = Field(description="The endpoint's UUID.")
    markerId: int = Field(ge=0, description="Sent in the PROXY v2 header (R33).")
    listeners: list[Listener] = Field(min_length=1)
    proxyProtocolV2: bool = False
    sourceCIDRs: list[str] = Field(default_factory=list, description="Empty means any source (R34).")
    maxConnections: int = Field(default=3000, ge=1, description="Concurrent connection cap (R21).")
    # Metric labels only (docs/observability.md): the gateway puts them on its /metrics series and nowhere
    # else (never into haproxy.cfg, so never into a PROXY header a provider reads: R46).
    consumerNamespace: str = Field(default="", description="The Endpoint's namespace.")
    endpointName: str = Field(default="", description="The Endpoint's name.")
    serviceName: str = Field(default="", description="The published service name the Endpoint targets.")


class BackendHealth(ApiModel):
    endpointId: str
    reachable: bool
    message: str = ""


class GatewayStatus(ApiModel):
    """Written by each gateway agent; read by the operator to decide Accepted.

    Unknown fields are ignored, not refused: during a rolling upgrade an operator reads the reports of newer
    gateways, and refusing them would withdraw every gateway at once (R52)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    gateway: str = Field(description="Gateway pod name.")
    address: str = Field(description="Pod IP consumers' node-IP traffic is sent to.")
    heartbeat: str = Field(
        description="RFC 3339 time of the report, for people: it changes at every report, and the operator "
        "judges liveness by when it last saw the object change, on its own clock (R52), never by this time."
    )
    appliedResourceVersion: int = Field(
        default=0, description="Every route whose ConfigMap resourceVersion is <= this is live in HAProxy."
    )
    rejectedRoutes: dict[str, str] = Field(
        default_factory=dict,
        description="endpointId -> why HAProxy refused that route (kept out of the live config); the first "
        "LISTED_PROBLEMS only.",
    )
    unhealthyBackends: list[BackendHealth] = Field(
        default_factory=list,
        description="Routes whose backend the gateway cannot reach (R32); the first LISTED_PROBLEMS only.",
    )
    moreRejectedRoutes: list[str] = Field(
        default_factory=list, description="short_id of every further refused route (sorted)."
    )
    moreUnhealthyBackends: list[str] = Field(
        default_factory=list, description="short_id of every further unreachable backend (sorted)."
    )
    rejectedRoutesTotal: int = Field(
        default=0, ge=0, description="Refused routes, listed or not; 0 when all are listed."
    )
    unhealthyBackendsTotal: int = Field(
        default=0, ge=0, description="Unreachable backends, listed or not; 0 when all are listed."
    )
    unlistedProblems: int = Field(
        default=0,
        ge=0,
        description="Problems past DIGEST_ENTRIES, not even named by short id: the operator then cannot tell "
        "which endpoints they concern and treats every endpoint the gateway does not list as possibly "
        "affected (never as healthy).",
    )
    error: str = Field(
        default="",
        description="Why the gateway could not apply the newest routes at all (HAProxy refused the "
        "configuration or the reload failed; it keeps serving the last good one); empty after a good apply.",
    )
    draining: bool = Field(
        default=False,
        description="The gateway is terminating (R52): it keeps serving the sessions it holds for the drain "
        "period but must be sent no new ones; the operator removes its address from every EndpointSlice at "
        "once and keeps counting it in R21's share of the cap while it holds sessions.",
    )


# Fields an operator older than the bounded status (R52) does not know and refuses: written only when set.
BOUNDED_STATUS_FIELDS = (
    "moreRejectedRoutes",
    "moreUnhealthyBackends",
    "rejectedRoutesTotal",
    "unhealthyBackendsTotal",
    "unlistedProblems",
)
# Written only when set, as the bounded fields: a report without them reads the same to any operator.
OPTIONAL_STATUS_FIELDS = (*BOUNDED_STATUS_FIELDS, "draining")

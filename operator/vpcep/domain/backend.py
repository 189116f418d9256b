"""Is a backend something the provider owns? (R45)

The gateway dials whatever the backend resolves to, and every provider's backend already admits the gateways
(R31). So a backend whose address the provider does not own would let a provider aim the gateway at another
tenant's backend, the API server or a metadata address:
- an `ExternalName` Service resolves to any DNS name;
- a Service without a selector gets its Endpoints from whoever writes them -- allowed only in namespaces the
  cluster admin vouches for (OperatorConfig `selectorlessBackendNamespaces`);
- a Pod that is not Running has no address of its own (a finished Pod's IP may already be someone else's);
- a hostNetwork Pod's address is its node's: every port of the node, not the provider's;
- whatever the kind, an address the gateway's packets would go to (a Service's ClusterIPs, the addresses
  of EndpointSlices written by hand for it, a Pod's IPs) must not be link-local, a cloud metadata
  address, an admin-denied CIDR or the API server's (`check_backend_addresses`).
Cloud services (R37) are declared by the cluster admin and not judged here.
"""

from __future__ import annotations

from pydantic import Field

from vpcep.api.denied_addresses import Network, as_address, why_denied
from vpcep.api.endpoint_service import BackendKind
from vpcep.domain.facts import Frozen
from vpcep.domain.reasons import Reason


class BackendFacts(Frozen):
    """The few fields of a backend object the check reads (a projection of a GET, never a whole body)."""

    kind: BackendKind
    namespace: str
    name: str
    service_type: str | None = Field(default=None, description="Service spec.type (ClusterIP when unset).")
    has_selector: bool = Field(default=True, description="Service spec.selector is non-empty.")
    pod_phase: str | None = Field(default=None, description="Pod status.phase.")
    host_network: bool = Field(default=False, description="Pod spec.hostNetwork.")


class BackendRefusal(Frozen):
    reason: Reason
    message: str


def check_backend(
    facts: BackendFacts, selectorless_allowed: bool, *, judge_phase: bool = True
) -> BackendRefusal | None:
    """None when the provider owns what the backend resolves to; else why not and how to fix it (R45).
    `judge_phase=False` (admission): a Pod created with its service is Pending for a moment; only what
    does not pass by itself is refused there, the reconcile judges the phase."""
    ref = f"{facts.kind.value} {facts.namespace}/{facts.name}"
    if facts.kind is BackendKind.SERVICE:
        if facts.service_type == "ExternalName":
            return BackendRefusal(
                reason=Reason.BACKEND_EXTERNAL_NAME,
                message=f"backend {ref} is an ExternalName Service, which can point anywhere: publish a "
                "Service with a selector for your pods, or a Pod, instead (see docs/rules.md#r45)",
            )
        if not facts.has_selector and not selectorless_allowed:
            return BackendRefusal(
                reason=Reason.BACKEND_WITHOUT_SELECTOR,
                message=f"backend {ref} has no selector, so its endpoints could point anywhere: give it a "
                "selector for your pods, or ask a cluster admin to allow selector-less backends in this "
                "namespace (operator config selectorlessBackendNamespaces) (see docs/rules.md#r45)",
            )
        return None
    if facts.host_network:
        return BackendRefusal(
            reason=Reason.BACKEND_HOST_NETWORK,
            message=f"backend {ref} uses hostNetwork, so its address is the node's: run it without "
            "hostNetwork, or publish it through a Service with a selector (see docs/rules.md#r45)",
        )
    if judge_phase and facts.pod_phase != "Running":
        return BackendRefusal(
            reason=Reason.BACKEND_POD_NOT_RUNNING,
            message=f"backend {ref} is {facts.pod_phase or 'not yet scheduled'}, not Running: a Pod "
            "backend serves only while it runs (a finished Pod's address may be reused by another pod); "
            "this recovers by itself when it runs, or publish a Service for its replacement pods "
            "(see docs/rules.md#r45)",
        )
    return None


class BackendAddresses(Frozen):
    """Where the gateway's packets to a backend would go, and the cluster's addresses none may be."""

    addresses: tuple[tuple[str, str], ...] = Field(
        default=(), description="(address, where it was read: 'clusterIP', 'EndpointSlice <name>', 'podIP')."
    )
    api_server: frozenset[str] = Field(
        default=frozenset(),
        description="The API server's addresses: the default/kubernetes Service's ClusterIPs and its "
        "EndpointSlice addresses.",
    )
    admin_denied: tuple[Network, ...] = Field(default=(), description="CIDRs the cluster admin denies.")


def check_backend_addresses(facts: BackendFacts, where: BackendAddresses) -> BackendRefusal | None:
    """None when no address of the backend is one a gateway must never dial (R45); else which, and the fix.
    The message names the address: it is the provider's own object, and it goes to the provider only (the
    consumer's Endpoint says ServiceNotAvailable, R46)."""
    ref = f"{facts.kind.value} {facts.namespace}/{facts.name}"
    api_server = {as_address(text) for text in where.api_server} - {None}  # one spelling per address
    for address, source in where.addresses:
        api = as_address(address) in api_server
        why = "the API server's" if api else why_denied(address, where.admin_denied)
        if why is None:
            continue
        fix = (
            "point its EndpointSlice at your own pods (or give the Service a selector)"
            if source.startswith("EndpointSlice")
            else "publish a backend that runs as your own pods"
        )
        return BackendRefusal(
            reason=Reason.BACKEND_ADDRESS_DENIED,
            message=f"backend {ref} resolves to {address} ({source}), which is {why}: gateways never dial "
            f"link-local, cloud metadata, API server or admin-denied addresses; {fix} "
            "(see docs/rules.md#r45)",
        )
    return None

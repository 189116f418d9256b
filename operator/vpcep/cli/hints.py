"""What a person should check for each reason the operator reports (R39); used by `kubectl vpcep describe`."""

from __future__ import annotations

# Keys are the CamelCase reasons of vpcep.domain.reasons.Reason (a test keeps the two in step).
HINTS: dict[str, str] = {
    "Available": "",
    "Accepted": "",
    "Active": "",
    "Permitted": "",
    "AutoAccepted": "",
    "ManuallyAccepted": "",
    "BackendReachable": "",
    "Creating": (
        "The operator is building the data path; it should turn Accepted within seconds. If it stays, "
        "check the gateways: kubectl -n vpcep-system get pods -l app.kubernetes.io/name=vpcep-gateway."
    ),
    "Deleting": (
        "The finalizer is removing the node IP, route and connection; if it stays, read the events and "
        "the operator's log."
    ),
    "BackendNotFound": (
        "The service's backend Service or Pod does not exist in the provider namespace; create it (or fix"
        " spec.backend.name) and the service recovers by itself."
    ),
    "HasActiveEndpoints": (
        "Endpoints in Accepted or Creating still use this service; they must be deleted first "
        "(see docs/rules.md#r7)."
    ),
    "SystemService": (
        "Cloud services are managed by the cluster operator through Helm values and cannot be changed or "
        "deleted by tenants."
    ),
    "PortsImmutable": ("Port mappings cannot change after creation; create a new EndpointService instead."),
    "BackendImmutable": ("The backend cannot change after creation; create a new EndpointService instead."),
    "DataPlaneNotReady": (
        "No gateway reports a fresh heartbeat: check the gateway pods in the operator namespace."
    ),
    "ServiceNotFound": (
        "No service has this name: check spec.serviceName against the provider's status.serviceName "
        "(`kubectl vpcep verify NAME`), including the region prefix."
    ),
    "ServiceDeleted": (
        "The provider deleted the service; delete this endpoint, or point it at another service."
    ),
    "ServiceNotAvailable": (
        "The service exists but is not Available (e.g. its backend is missing); ask the provider to look "
        "at `kubectl describe vpces` on their side."
    ),
    "NotPermitted": (
        "Your account is not on the service's whitelist: ask the provider to add iam:domain::<your "
        "account> to a Whitelist of the service. `kubectl vpcep quota` shows your account."
    ),
    "PendingAcceptance": (
        "The service requires approval: the provider must accept the connection (`kubectl vpcep accept "
        "<endpointId>` in their namespace) or list your account in autoAcceptAccounts."
    ),
    "Rejected": ("The provider rejected the connection; only the provider can accept it again."),
    "TargetImmutable": ("An endpoint's target service cannot change; create a new Endpoint instead."),
    "AccountUnclear": (
        "This namespace has no vpcep.io/account label, and either its name is an account that other "
        "namespaces hold by label or the operator requires the label: ask a cluster administrator to label "
        "the namespace with its account (`kubectl label namespace <ns> vpcep.io/account=<account>`)."
    ),
    "QuotaExceeded": (
        "The account has reached its limit (`kubectl vpcep quota`); delete unused objects or ask the "
        "cluster operator to raise the quota for the account (Helm value quotas.overrides.<account>.<kind>)."
    ),
    "GatewayPortQuotaExceeded": (
        "Each port mapping of an endpoint takes one gateway port from the account's quota "
        "(`kubectl vpcep quota`). The endpoint waits and is set up by itself when the account's other "
        "endpoints free ports; delete unused endpoints, or ask the cluster operator to raise Helm value "
        "quotas.overrides.<account>.gatewayPorts."
    ),
    "InvalidSpec": ("The spec is invalid: the message names the field to fix."),
    "GatewayNotReady": (
        "No gateway is ready: check the gateway pods and their logs in the operator namespace."
    ),
    "NodeIPPending": (
        "The node IP Service has no ClusterIP yet; check that Services can be created in this namespace "
        "(ResourceQuota on services?)."
    ),
    "RoutePending": (
        "Not every ready gateway has loaded the route yet; it should clear within seconds. If not, read "
        "the gateway status ConfigMaps (vpcep-gateway-*) in the operator namespace."
    ),
    "IngressPolicyPending": (
        "The gateway ingress NetworkPolicy of this namespace (vpcep-ingress-<namespace>, operator namespace) "
        "does not admit this endpoint's gateway ports yet; it should clear within a second. If not, the "
        "cluster operator should read the operator's log."
    ),
    "RouteRejected": (
        "A gateway refused this route's configuration; the message tells why. Report it to the cluster "
        "operator with the endpoint ID."
    ),
    "PortsExhausted": (
        "The gateways have no free listen port left; the cluster operator must widen gateway.ports in the"
        " Helm values."
    ),
    "BackendUnreachable": (
        "The gateways cannot reach the backend: check that it listens on serverPort, and that no "
        "NetworkPolicy in the provider namespace denies the gateways (networkPolicy.enabled in Helm "
        "values)."
    ),
    "BackendExternalName": (
        "An ExternalName Service sends the gateways wherever DNS points; publish a Service with a selector "
        "over pods of this namespace instead (see docs/rules.md#r45)."
    ),
    "BackendWithoutSelector": (
        "A Service without a selector can point anywhere; add a selector, or ask the cluster operator to "
        "allow selector-less backends in this namespace (backends.selectorlessNamespaces) "
        "(see docs/rules.md#r45)."
    ),
    "BackendPodNotRunning": (
        "The backend Pod is not Running (still starting, or finished); the service recovers by itself once "
        "it runs. A finished Pod's address may belong to someone else, so it is never routed to "
        "(see docs/rules.md#r45)."
    ),
    "BackendHostNetwork": (
        "A Pod on the host network shares the node's address; use a Pod without hostNetwork, or a Service "
        "over such pods (see docs/rules.md#r45)."
    ),
    "BackendAddressDenied": (
        "The backend resolves to an address no gateway may dial: link-local, cloud metadata, the API "
        "server, or a CIDR the cluster operator denies (gateway.egressPolicy.deniedCIDRs). Point the "
        "Service (or its EndpointSlice) at your own pods (see docs/rules.md#r45)."
    ),
    "NotCreatedByOperator": (
        "This EndpointConnection was not created by the operator and is ignored: only the one the operator "
        "creates in the service's namespace carries the provider's decision "
        "(see docs/rules.md#r44). Delete it."
    ),
    "EndpointServiceNotFound": (
        "This whitelist names an EndpointService that does not exist in its namespace."
    ),
    "InvalidAccountEntry": (
        "Whitelist entries must be iam:domain::<account> or *; the message names the entry."
    ),
}

NO_STATUS_HINT = (
    "The operator has not reported on this object yet: is it running? "
    "kubectl -n vpcep-system get deploy -l app.kubernetes.io/name=vpcep-operator"
)
STALE_HINT = "The operator has not processed the latest change yet (observedGeneration < generation)."


def hint_for(reason: str | None) -> str:
    """The advice for a reason; unknown reasons get a pointer to the events rather than nothing."""
    if not reason:
        return ""
    return HINTS.get(reason, f"Unrecognised reason {reason}: read the events and the message above.")

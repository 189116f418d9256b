"""Every reason the operator writes into status, conditions, Events and admission refusals (R39).

One CamelCase constant per cause, so that tests, dashboards and `kubectl get -o jsonpath` can rely on them.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # Healthy / progressing states.
    AVAILABLE = "Available"
    ACCEPTED = "Accepted"
    ACTIVE = "Active"
    CREATING = "Creating"
    DELETING = "Deleting"
    PERMITTED = "Permitted"
    AUTO_ACCEPTED = "AutoAccepted"
    MANUALLY_ACCEPTED = "ManuallyAccepted"
    BACKEND_REACHABLE = "BackendReachable"
    # Services (R1-R9).
    BACKEND_NOT_FOUND = "BackendNotFound"
    # A backend the provider does not own (R45).
    BACKEND_EXTERNAL_NAME = "BackendExternalName"
    BACKEND_WITHOUT_SELECTOR = "BackendWithoutSelector"
    BACKEND_POD_NOT_RUNNING = "BackendPodNotRunning"
    BACKEND_HOST_NETWORK = "BackendHostNetwork"
    BACKEND_ADDRESS_DENIED = "BackendAddressDenied"
    HAS_ACTIVE_ENDPOINTS = "HasActiveEndpoints"
    SYSTEM_SERVICE = "SystemService"
    PORTS_IMMUTABLE = "PortsImmutable"
    BACKEND_IMMUTABLE = "BackendImmutable"
    DATA_PLANE_NOT_READY = "DataPlaneNotReady"
    # Endpoints (R10-R23).
    SERVICE_NOT_FOUND = "ServiceNotFound"
    SERVICE_DELETED = "ServiceDeleted"
    SERVICE_NOT_AVAILABLE = "ServiceNotAvailable"
    NOT_PERMITTED = "NotPermitted"
    PENDING_ACCEPTANCE = "PendingAcceptance"
    REJECTED = "Rejected"
    TARGET_IMMUTABLE = "TargetImmutable"
    NOT_CREATED_BY_OPERATOR = "NotCreatedByOperator"  # an EndpointConnection someone else made (R44)
    # Shared.
    ACCOUNT_UNCLEAR = "AccountUnclear"  # the namespace's account cannot be trusted (R48)
    QUOTA_EXCEEDED = "QuotaExceeded"
    GATEWAY_PORT_QUOTA_EXCEEDED = "GatewayPortQuotaExceeded"  # waits for the account's ports to free (R49)
    INVALID_SPEC = "InvalidSpec"
    # Data path (R18, R30, R32).
    GATEWAY_NOT_READY = "GatewayNotReady"
    NODE_IP_PENDING = "NodeIPPending"
    ROUTE_PENDING = "RoutePending"
    ROUTE_REJECTED = "RouteRejected"
    PORTS_EXHAUSTED = "PortsExhausted"
    BACKEND_UNREACHABLE = "BackendUnreachable"
    INGRESS_POLICY_PENDING = "IngressPolicyPending"  # R42
    # Whitelists.
    ENDPOINT_SERVICE_NOT_FOUND = "EndpointServiceNotFound"
    INVALID_ACCOUNT_ENTRY = "InvalidAccountEntry"

"""Builders of domain facts for the unit tests: sensible defaults, override what the case is about."""

from __future__ import annotations

from typing import Any

from vpcep.api.endpoint import EndpointPhase, EndpointSpec, EndpointStatus
from vpcep.api.endpoint_service import EndpointServiceSpec, ServicePhase, ServiceType
from vpcep.domain.endpoint import AllocationFacts, DataPathFacts, EndpointFacts
from vpcep.domain.facts import EndpointView, ServiceView, WhitelistView
from vpcep.domain.quota import QuotaStanding
from vpcep.domain.service import ServiceFacts

REGION = "local-1"
SERVICE_UID = "0b0e8a52-6c43-4c5a-9a55-5ed4f39c2f6a"
SERVICE_NAME = f"{REGION}.web.{SERVICE_UID}"
PROVIDER = "provider"
CONSUMER = "consumer"


def service_spec(**overrides: Any) -> EndpointServiceSpec:
    data: dict[str, Any] = {
        "backend": {"kind": "Service", "name": "web"},
        "ports": [{"serverPort": 8080, "clientPort": 80}, {"serverPort": 8443, "clientPort": 443}],
    }
    data.update(overrides)
    return EndpointServiceSpec.model_validate(data)


def service_view(**overrides: Any) -> ServiceView:
    data: dict[str, Any] = {
        "namespace": "prov",
        "name": "web",
        "uid": SERVICE_UID,
        "account": PROVIDER,
        "spec": service_spec(),
        "service_name": SERVICE_NAME,
        "service_id": SERVICE_UID,
        "phase": ServicePhase.AVAILABLE,
        "service_type": ServiceType.INTERFACE,
    }
    data.update(overrides)
    return ServiceView.model_validate(data)


def whitelist(*accounts: str, name: str = "wl") -> WhitelistView:
    return WhitelistView(namespace="prov", name=name, endpoint_service="web", accounts=accounts)


# The namespace's gateway ingress policy admits the low end of the port range, where ports are handed out.
LIVE_PATH = DataPathFacts(
    ready_gateways=2,
    route_applied=True,
    node_ip="10.96.0.10",
    dns_name="e1.cons.svc",
    admitted_ports=frozenset(range(20000, 20100)),
)


def endpoint_facts(**overrides: Any) -> EndpointFacts:
    data: dict[str, Any] = {
        "namespace": "cons",
        "name": "e1",
        "uid": "11111111-2222-3333-4444-555555555555",
        "generation": 1,
        "account": CONSUMER,
        "region": REGION,
        "spec": EndpointSpec(serviceName=SERVICE_NAME),
        "service": service_view(),
        "whitelists": (whitelist(f"iam:domain::{CONSUMER}"),),
        "quota": QuotaStanding(rank=0, limit=50),
        "allocation": AllocationFacts(),
        "data_path": LIVE_PATH,
    }
    data.update(overrides)
    return EndpointFacts.model_validate(data)


def status(phase: EndpointPhase | None, **fields: Any) -> EndpointStatus:
    return EndpointStatus.model_validate({"phase": phase, **fields})


def endpoint_view(name: str, phase: EndpointPhase | None, **overrides: Any) -> EndpointView:
    data: dict[str, Any] = {
        "namespace": "cons",
        "name": name,
        "uid": f"uid-{name}",
        "account": CONSUMER,
        "created": "2026-01-01T00:00:00Z",
        "phase": phase,
    }
    data.update(overrides)
    return EndpointView.model_validate(data)


def service_facts(**overrides: Any) -> ServiceFacts:
    data: dict[str, Any] = {
        "namespace": "prov",
        "name": "web",
        "uid": SERVICE_UID,
        "generation": 1,
        "account": PROVIDER,
        "region": REGION,
        "spec": service_spec(),
        "backend_exists": True,
        "quota": QuotaStanding(rank=0, limit=20),
    }
    data.update(overrides)
    return ServiceFacts.model_validate(data)

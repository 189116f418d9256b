"""R46: consumers never see backend addresses: gateway health text is cleaned before an Endpoint quotes it."""

from __future__ import annotations

import pytest
from domain_factories import LIVE_PATH, endpoint_facts

from vpcep.domain.endpoint import decide_endpoint
from vpcep.domain.redaction import BACKEND_ADDRESS, without_addresses

# What the gateway agent writes (vpcep.gateway.health) and what HAProxy says, with the secret parts.
CASES = [
    (
        "gateway port 20001: backend 10.244.0.9:9000 unreachable from gateway (DOWN: Layer4 timeout)",
        "10.244.0.9",
    ),
    ("gateway port 20001: backend 10.96.4.2 unreachable from gateway (DOWN: L4CON)", "10.96.4.2"),
    ("backend [2001:db8::5]:443 unreachable", "2001:db8::5"),
    ("backend fd00:10:244::7 unreachable", "fd00:10:244::7"),
    ("backend db.team-provider.svc.cluster.local:5432 unreachable (DOWN)", "team-provider"),
    ("could not resolve address 'db.team-provider.svc.cluster.local'", "team-provider"),
]


@pytest.mark.parametrize(("text", "secret"), CASES)
def test_r46_addresses_and_service_host_names_are_removed(text: str, secret: str) -> None:
    cleaned = without_addresses(text)
    assert secret not in cleaned and BACKEND_ADDRESS in cleaned


@pytest.mark.parametrize(
    "text", ["gateway port 20001: DOWN 1/2 (Layer4 timeout)", "version 1.2.3 after 2.5s", "HAProxy 3.0"]
)
def test_text_without_addresses_is_kept(text: str) -> None:
    assert without_addresses(text) == text


def test_r46_r32_the_consumers_condition_says_unreachable_but_not_where() -> None:
    health = "backend unreachable from gateway gw-1: gateway port 20001: backend 10.244.0.9:9000 unreachable"
    decision = decide_endpoint(
        endpoint_facts(data_path=LIVE_PATH.model_copy(update={"backend_unreachable": health}))
    )
    reachable = {c.type: c for c in decision.conditions}["BackendReachable"]
    assert reachable.status is False and "unreachable" in reachable.message
    assert "10.244.0.9" not in reachable.message and "10.244.0.9" not in decision.message


def test_r46_a_gateways_route_refusal_is_quoted_without_the_backend_address() -> None:
    """HAProxy's refusal of a route names the line it refused, the backend's server line included."""
    refusal = "haproxy -c: [ALERT] parsing [routes/ep.cfg:9] : 'server b1 10.244.0.9:9000' : cannot resolve"
    decision = decide_endpoint(
        endpoint_facts(data_path=LIVE_PATH.model_copy(update={"route_rejected": refusal}))
    )
    assert decision.reason == "RouteRejected" and "refused this endpoint's route" in decision.message
    assert "10.244.0.9" not in decision.message
    assert all("10.244.0.9" not in condition.message for condition in decision.conditions)

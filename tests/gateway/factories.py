"""Route factories for the gateway unit tests."""

from __future__ import annotations

from typing import Any

from vpcep.api.routing import Listener, Route


def make_route(endpoint_id: str = "11111111-2222-4333-8444-555555555555", **overrides: Any) -> Route:
    fields: dict[str, Any] = {
        "endpointId": endpoint_id,
        "markerId": 1001,
        "listeners": [Listener(gatewayPort=30001, clientPort=80, backendHost="10.96.0.10", serverPort=8080)],
    }
    fields.update(overrides)
    return Route(**fields)

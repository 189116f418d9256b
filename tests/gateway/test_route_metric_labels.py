"""The route's metric labels (consumer namespace, Endpoint name, service) reach the gateway's /metrics and
nothing else: not haproxy.cfg, so never a PROXY v2 header or anything else a provider's backend sees (R46)."""

from __future__ import annotations

from vpcep.api.routing import Listener, Route
from vpcep.builders.haproxy_config import HaproxySettings, haproxy_config


def test_metric_labels_stay_out_of_the_haproxy_configuration_R46() -> None:
    route = Route(
        endpointId="6f1c7f2e-0b55-4c55-9d0e-1f2a3b4c5d6e",
        markerId=77,
        listeners=[Listener(gatewayPort=20001, clientPort=5432, backendHost="10.0.0.9", serverPort=5432)],
        proxyProtocolV2=True,
        consumerNamespace="secret-consumer-team",
        endpointName="payroll-db-link",
        serviceName="local-1.pg.0f7d2c9e-5b1a-4c8e-9d3f-2a1b0c9d8e7f",
    )
    text = haproxy_config([route], HaproxySettings())
    for label in ("secret-consumer-team", "payroll-db-link", "local-1.pg."):
        assert label not in text
    assert route.endpointId in text  # the route itself is there


def test_routes_written_before_the_labels_existed_still_load() -> None:
    route = Route.model_validate_json(
        '{"endpointId":"e1","markerId":1,"listeners":[{"gatewayPort":20001,"clientPort":80,'
        '"backendHost":"10.0.0.9","serverPort":8080}]}'
    )
    assert (route.consumerNamespace, route.endpointName, route.serviceName) == ("", "", "")

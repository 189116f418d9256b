"""The gateway's /metrics, scraped from a live agent while real connections cross real namespaces.

Every figure is checked against what the test itself did: connections opened and held, bytes sent
and received, connections refused by the cap (R21) and by the source ACL (R34), a backend that
cannot be reached (R32), and a reload.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import GATEWAY_METRICS_PORT, PLAIN_BACKEND_PORT, GatewayAgent
from .helpers import greeting, read_line, refused, route, wait_served
from .netns import connect, wait_until

pytestmark = pytest.mark.netns

LABELS = {"namespace": "team-consumer", "endpoint": "db", "service": "local-1.db.0000-svc"}


class Scrape:
    """One scrape of the gateway's /metrics, parsed by prometheus_client's own parser."""

    def __init__(self, agent: GatewayAgent) -> None:
        with connect(agent.topology.gateway, "127.0.0.1", GATEWAY_METRICS_PORT, timeout=5) as sock:
            sock.sendall(b"GET /metrics HTTP/1.0\r\nHost: gateway\r\n\r\n")
            answer = b""
            while chunk := sock.recv(1 << 20):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200"), head[:200]
        assert b"text/plain" in head
        self.text = body.decode()
        self.samples = [
            sample for family in text_string_to_metric_families(self.text) for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        found = [s.value for s in self.samples if s.name == name and labels.items() <= s.labels.items()]
        present = [line for line in self.text.splitlines() if line.startswith(name)]
        assert len(found) == 1, f"{name}{labels}: {len(found)} series in the scrape, which has {present}"
        return found[0]

    def endpoint(self, name: str, endpoint_id: str, **labels: str) -> float:
        return self.value(name, endpoint_id=endpoint_id, **labels)


def wait_idle(agent: GatewayAgent, endpoint_id: str) -> None:
    wait_until(
        lambda: Scrape(agent).endpoint("vpcep_gateway_endpoint_active_connections", endpoint_id) == 0,
        timeout=5,
        what=f"{endpoint_id}'s closed connections to leave the gauge",
    )


@pytest.fixture
def metered(agent: GatewayAgent) -> Iterator[str]:
    """An endpoint capped at 3 connections, open to the consumer's first address only."""
    net = agent.topology
    agent.put_route(
        route(
            "e-metered",
            31,
            (30031, net.provider_ip, PLAIN_BACKEND_PORT),
            maxConnections=3,
            sourceCIDRs=[f"{net.consumer_ip}/32"],
            consumerNamespace=LABELS["namespace"],
            endpointName=LABELS["endpoint"],
            serviceName=LABELS["service"],
        )
    )
    wait_served(agent, 30031)
    yield "e-metered"
    agent.remove_route("e-metered")


def test_counters_follow_real_connections_bytes_and_refusals_R21_R34(
    agent: GatewayAgent, metered: str
) -> None:
    net = agent.topology
    wait_idle(agent, metered)  # wait_served's probe connection has gone
    before = Scrape(agent)
    # The info series names the namespace, Endpoint and service; the figures join on endpoint_id.
    assert before.endpoint("vpcep_gateway_endpoint_info", metered, **LABELS) == 1
    assert before.endpoint("vpcep_gateway_endpoint_active_connections", metered) == 0
    assert before.endpoint("vpcep_gateway_endpoint_max_connections", metered) == 3
    assert before.endpoint("vpcep_gateway_endpoint_backend_up", metered) == 1
    payload = b"x" * 100_000 + b"\n"
    held: list[socket.socket] = []
    try:
        for _ in range(3):
            sock = connect(net.consumer, net.gateway_consumer_ip, 30031, source=net.consumer_ip)
            held.append(sock)
            greeting(sock)
        held[0].sendall(payload)
        assert len(read_line(held[0], limit=1 << 20)) == len(payload)  # the backend echoes it
        during = Scrape(agent)
        assert during.endpoint("vpcep_gateway_endpoint_active_connections", metered) == 3
        # The fourth is refused by the cap, a stranger's by the source ACL, each counted apart.
        assert refused(net.consumer, net.gateway_consumer_ip, 30031, source=net.consumer_ip) is not None
        assert refused(net.consumer, net.gateway_consumer_ip, 30031, source=net.consumer_other_ip) is not None
        assert refused(net.consumer, net.gateway_consumer_ip, 30031, source=net.consumer_other_ip) is not None
        after = Scrape(agent)
    finally:
        for sock in held:
            sock.close()

    def moved(name: str, later: Scrape = after, **labels: str) -> float:
        return later.endpoint(name, metered, **labels) - before.endpoint(name, metered, **labels)

    assert moved("vpcep_gateway_endpoint_connections_total") == 3, "only accepted connections count"
    assert moved("vpcep_gateway_endpoint_refused_connections_total", reason="cap") == 1
    assert moved("vpcep_gateway_endpoint_refused_connections_total", reason="source") == 2
    wait_idle(agent, metered)
    # HAProxy adds a spliced stream's bytes to the counters as the stream ends.
    closed = Scrape(agent)
    assert moved("vpcep_gateway_endpoint_received_bytes_total", closed) >= len(payload)
    assert moved("vpcep_gateway_endpoint_sent_bytes_total", closed) >= len(payload)  # echo plus greetings
    assert after.value("vpcep_gateway_haproxy_up") == 1
    assert after.value("vpcep_gateway_haproxy_sessions") >= 3
    assert after.value("vpcep_gateway_haproxy_max_connections") > 3


def test_an_unreachable_backend_shows_as_down_R32(agent: GatewayAgent) -> None:
    net = agent.topology
    agent.put_route(route("e-metrics-dead", 32, (30032, net.provider_ip, 8098)))
    try:
        wait_until(
            lambda: Scrape(agent).endpoint("vpcep_gateway_endpoint_backend_up", "e-metrics-dead") == 0,
            timeout=10,
            what="the dead backend to show as down",
        )
    finally:
        agent.remove_route("e-metrics-dead")


def test_a_reload_is_counted_and_old_workers_sessions_are_reported_R30(agent: GatewayAgent) -> None:
    net = agent.topology
    agent.put_route(route("e-metrics-keep", 34, (30034, net.provider_ip, PLAIN_BACKEND_PORT)))
    wait_served(agent, 30034)
    before = Scrape(agent)
    agent.put_route(route("e-metrics-new", 33, (30033, net.provider_ip, PLAIN_BACKEND_PORT)))
    wait_served(agent, 30033)
    after = Scrape(agent)
    assert after.value("vpcep_gateway_haproxy_reloads_total") > before.value(
        "vpcep_gateway_haproxy_reloads_total"
    )
    given = len(list(agent.routes_dir.glob("*.json")))
    wait_until(  # the agent records what it applied a moment after the new worker serves
        lambda: Scrape(agent).value("vpcep_gateway_routes", state="live") == given,
        timeout=5,
        what=f"{given} routes to count as live",
    )
    # A session open across a reload stays on the old worker (R30), which the scrape reports.
    with connect(net.consumer, net.gateway_consumer_ip, 30034) as held:
        greeting(held)
        agent.remove_route("e-metrics-new")
        wait_until(
            lambda: "e-metrics-new" not in Scrape(agent).text,
            timeout=10,
            what="the removed endpoint's series to go",
        )
        during = Scrape(agent)
        assert during.value("vpcep_gateway_haproxy_old_workers") >= 1
        assert during.value("vpcep_gateway_haproxy_old_worker_sessions") >= 1
    wait_until(
        lambda: Scrape(agent).value("vpcep_gateway_haproxy_old_worker_sessions") == 0,
        timeout=10,
        what="the old worker's session to end",
    )
    agent.remove_route("e-metrics-keep")

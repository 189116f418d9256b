"""Real bytes through a real HAProxy between network namespaces (R18-R21, R32-R34).

consumer netns --veth-- gateway netns (vpcep-gateway + HAProxy) --veth-- provider netns (backends).
"""

from __future__ import annotations

import socket
import subprocess

import pytest

from vpcep.builders.haproxy_config import frontend_name
from vpcep.gateway.haproxy_process import unix_command

from .conftest import PLAIN_BACKEND_PORT, PROXY_BACKEND_PORT, GatewayAgent
from .helpers import call, connect, greeting, read_line, refused, route, wait_refused, wait_served
from .netns import in_netns, listen, wait_until

pytestmark = pytest.mark.netns


def test_bytes_reach_the_backend_and_come_back_R18(agent: GatewayAgent, basic_port: int) -> None:
    net = agent.topology
    with connect(net.consumer, net.gateway_consumer_ip, basic_port) as sock:
        hello = greeting(sock)
        assert hello["server"] == "provider-backend"
        assert hello["client"].startswith(net.gateway_provider_ip + ":"), "backends see the gateway (R31)"
        payload = bytes(range(256)) * 4096  # 1 MiB, both ways
        sock.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = sock.recv(1 << 20)
            assert chunk, "connection closed mid-transfer"
            received += chunk
        assert received == payload


def test_harness_sanity_the_consumer_has_no_path_to_the_provider_but_the_gateway(agent: GatewayAgent) -> None:
    """A check of this harness, not of the product: the topology gives the consumer no route to the provider
    and the gateway namespace forwards nothing, so whatever the other tests see reach a backend went through
    HAProxy. (In a cluster that isolation is the network plugin's; R42 is the product's part of it.)"""
    net = agent.topology
    assert (
        refused(net.consumer, net.provider_ip, PLAIN_BACKEND_PORT, timeout=1.0)
        == "unreachable (Network is unreachable)"
    )
    # Even a consumer that routes the provider's range via the gateway gets nowhere: no forwarding.
    net.ip(net.consumer, "route", "add", f"{net.provider_ip}/32", "via", net.gateway_consumer_ip)
    try:
        outcome = refused(net.consumer, net.provider_ip, PLAIN_BACKEND_PORT, timeout=1.0)
        assert outcome is not None and outcome.startswith("unreachable"), outcome
    finally:
        net.ip(net.consumer, "route", "del", f"{net.provider_ip}/32")


def test_the_provider_cannot_open_a_connection_into_the_consumer_R19(agent: GatewayAgent) -> None:
    net = agent.topology
    agent.put_route(route("e-oneway", 12, (30002, net.provider_ip, PLAIN_BACKEND_PORT)))
    wait_served(agent, 30002)
    with listen(net.consumer, "0.0.0.0", 9999) as consumer_service:
        consumer_service.settimeout(0.5)
        assert refused(net.provider, net.consumer_ip, 9999, timeout=1.0).startswith("unreachable")
        # Through the gateway, from the provider side: every port leads to a backend, never to the consumer.
        for address in (net.gateway_provider_ip, net.gateway_consumer_ip):
            for port in (30002, 9999):
                outcome = refused(net.provider, address, port, timeout=1.0)
                if outcome is None:
                    assert call(net.provider, address, port)["server"] == "provider-backend"
        with pytest.raises(TimeoutError):
            consumer_service.accept()


def test_an_unmapped_port_is_refused_R19(agent: GatewayAgent) -> None:
    net = agent.topology
    assert refused(net.consumer, net.gateway_consumer_ip, 30999) == "refused at connect"
    assert refused(net.consumer, net.gateway_consumer_ip, 22) == "refused at connect"


def test_overlapping_address_ranges_on_both_sides_R20(agent: GatewayAgent) -> None:
    net = agent.topology
    # Consumer and provider both own 172.30.0.10; the consumer's own copy answers locally...
    assert call(net.consumer, net.overlap_ip, PLAIN_BACKEND_PORT)["server"] == "consumer-decoy"
    # ...and the endpoint still reaches the provider's.
    agent.put_route(route("e-overlap", 13, (30003, net.overlap_ip, PLAIN_BACKEND_PORT)))
    wait_served(agent, 30003)
    assert call(net.consumer, net.gateway_consumer_ip, 30003)["server"] == "provider-backend"


def test_a_source_outside_the_cidrs_is_refused_R34(agent: GatewayAgent) -> None:
    net = agent.topology
    agent.put_route(
        route(
            "e-cidr", 14, (30004, net.provider_ip, PLAIN_BACKEND_PORT), sourceCIDRs=[f"{net.consumer_ip}/32"]
        )
    )
    wait_served(agent, 30004)
    assert (
        call(net.consumer, net.gateway_consumer_ip, 30004, source=net.consumer_ip)["server"]
        == "provider-backend"
    )
    assert refused(net.consumer, net.gateway_consumer_ip, 30004, source=net.consumer_other_ip) in (
        "reset at once",
        "closed at once",
    )


def test_a_hundred_source_cidrs_all_count_and_nothing_else_passes_R34_R49(agent: GatewayAgent) -> None:
    """As many sourceCIDRs as the CRD allows: the one admitting the consumer is the last of 100 (on the last
    of the route's acl lines), so a renderer that dropped or mangled a line would refuse it."""
    net = agent.topology
    decoys = [f"10.{i}.0.0/16" for i in range(60)] + [f"fd00:{i:x}::/32" for i in range(39)]
    agent.put_route(
        route(
            "e-cidr-100",
            15,
            (30014, net.provider_ip, PLAIN_BACKEND_PORT),
            sourceCIDRs=[*decoys, f"{net.consumer_ip}/32"],
        )
    )
    wait_served(agent, 30014)
    assert "e-cidr-100" not in agent.status().get("rejectedRoutes", {})
    assert (
        call(net.consumer, net.gateway_consumer_ip, 30014, source=net.consumer_ip)["server"]
        == "provider-backend"
    )
    assert refused(net.consumer, net.gateway_consumer_ip, 30014, source=net.consumer_other_ip) in (
        "reset at once",
        "closed at once",
    )


def test_the_backend_reads_client_address_and_marker_from_proxy_v2_R33(agent: GatewayAgent) -> None:
    net = agent.topology
    agent.put_route(
        route("e-proxy", 424242, (30005, net.provider_ip, PROXY_BACKEND_PORT), proxyProtocolV2=True)
    )
    wait_served(agent, 30005)
    with connect(net.consumer, net.gateway_consumer_ip, 30005, source=net.consumer_other_ip) as sock:
        local_port = sock.getsockname()[1]
        hello = greeting(sock)
    assert hello["command"] == "PROXY"
    assert hello["client"] == f"{net.consumer_other_ip}:{local_port}"
    assert hello["destination"] == f"{net.gateway_consumer_ip}:30005"
    assert hello["marker"] == "424242"
    assert hello["via"].startswith(net.gateway_provider_ip + ":")


def test_the_3001st_connection_is_refused_while_3000_are_open_R21(
    agent: GatewayAgent, basic_port: int
) -> None:
    net = agent.topology
    agent.put_route(route("e-cap", 15, (30006, net.provider_ip, PLAIN_BACKEND_PORT), maxConnections=3000))
    wait_served(agent, 30006)
    held: list[socket.socket] = []
    try:
        with in_netns(net.consumer):
            for _ in range(3000):
                sock = socket.create_connection((net.gateway_consumer_ip, 30006), timeout=5)
                held.append(sock)
        for sock in held:  # every one of them is really connected to the backend
            assert b"provider-backend" in read_line(sock)
        assert refused(net.consumer, net.gateway_consumer_ip, 30006, timeout=2.0) in (
            "reset at once",
            "closed at once",
        )
        held.pop().close()
        wait_served(agent, 30006, timeout=5)  # a freed slot is usable again: refused, not banned
        assert call(net.consumer, net.gateway_consumer_ip, basic_port)["server"] == "provider-backend", (
            "others unaffected"
        )
    finally:
        for sock in held:
            sock.close()


def test_sessions_up_to_the_cap_are_never_refused_R21(agent: GatewayAgent) -> None:
    """Below the cap nothing is refused, also while HAProxy's threads race on accepting: the cap is counted
    per session tracked, not by fe_conn, which a thread looping in accept() raises ahead of time (with
    fe_conn, 11 of 1,000 rounds here lost one session below the cap)."""
    net = agent.topology
    cap, rounds = 5, 300
    agent.put_route(route("e-exact", 16, (30015, net.provider_ip, PLAIN_BACKEND_PORT), maxConnections=cap))
    wait_served(agent, 30015)
    refused_below_cap = 0
    with in_netns(net.consumer):
        for _ in range(rounds):
            held: list[socket.socket] = []
            try:
                for _ in range(cap):
                    sock = socket.create_connection((net.gateway_consumer_ip, 30015), timeout=5)
                    held.append(sock)
                    try:
                        served = b"provider-backend" in read_line(sock)
                    except OSError:
                        served = False
                    refused_below_cap += not served
            finally:
                for sock in held:
                    sock.close()
            wait_until(
                lambda: _open_sessions(agent, "e-exact") == 0, timeout=5, what="the round's sessions to end"
            )
    assert refused_below_cap == 0, (
        f"{refused_below_cap} of {rounds} rounds lost a session below the cap of {cap}"
    )


def _open_sessions(agent: GatewayAgent, endpoint_id: str) -> int:
    answer = unix_command(
        str(agent.runtime_dir / "haproxy.sock"), f"show stat {frontend_name(endpoint_id)} 1 -1"
    )
    rows = [line.split(",") for line in answer.splitlines() if line and not line.startswith("#")]
    return sum(int(row[4]) for row in rows)


def test_unreachable_backend_is_reported_R32(agent: GatewayAgent) -> None:
    net = agent.topology
    agent.put_route(route("e-dead", 16, (30007, net.provider_ip, 8099)))

    def reported() -> bool:
        return any(
            b["endpointId"] == "e-dead" and not b["reachable"] for b in agent.status()["unhealthyBackends"]
        )

    wait_until(reported, timeout=10, what="e-dead in unhealthyBackends")
    message = next(b["message"] for b in agent.status()["unhealthyBackends"] if b["endpointId"] == "e-dead")
    assert f"{net.provider_ip}:8099" in message and "30007" in message
    assert all(b["endpointId"] != "e-basic" for b in agent.status()["unhealthyBackends"])
    agent.remove_route("e-dead")
    wait_until(
        lambda: all(b["endpointId"] != "e-dead" for b in agent.status()["unhealthyBackends"]), timeout=10
    )


def test_a_bad_route_is_isolated_and_reported(agent: GatewayAgent, basic_port: int) -> None:
    net = agent.topology
    agent.put_route(route("e-good", 17, (30008, net.provider_ip, PLAIN_BACKEND_PORT)))
    # A port already held by another process in the gateway: HAProxy could not bind it on reload.
    squatter = subprocess.Popen(
        ["ip", "netns", "exec", net.gateway, "python3", "-c",
         "import socket,time;s=socket.socket();s.bind(('0.0.0.0',30009));s.listen();"
         "print('up',flush=True);time.sleep(60)"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert squatter.stdout is not None and squatter.stdout.readline().strip() == b"up"
        agent.put_route(route("e-squatted", 18, (30009, net.provider_ip, PLAIN_BACKEND_PORT)))
        (agent.routes_dir / "garbage.json").write_text('{"endpointId": "e-garbage"')
        wait_until(
            lambda: {"e-squatted", "garbage.json"} <= set(agent.status()["rejectedRoutes"]), timeout=10
        )
        assert "30009 is in use" in agent.status()["rejectedRoutes"]["e-squatted"]
        wait_served(agent, 30008)
        assert call(net.consumer, net.gateway_consumer_ip, basic_port)["server"] == "provider-backend"
    finally:
        squatter.kill()
        squatter.wait()
        (agent.routes_dir / "garbage.json").unlink(missing_ok=True)
    # Once the port is free the agent's periodic retry puts the route live without any change to it.
    wait_served(agent, 30009, timeout=15)
    wait_until(lambda: "e-squatted" not in agent.status()["rejectedRoutes"], timeout=5)


def test_removing_a_route_closes_only_its_port(agent: GatewayAgent, basic_port: int) -> None:
    net = agent.topology
    agent.put_route(route("e-temp", 19, (30010, net.provider_ip, PLAIN_BACKEND_PORT)))
    wait_served(agent, 30010)
    with connect(net.consumer, net.gateway_consumer_ip, basic_port) as long_lived:
        assert greeting(long_lived)["server"] == "provider-backend"
        agent.remove_route("e-temp")
        wait_refused(agent, 30010)
        long_lived.sendall(b"still here\n")
        assert read_line(long_lived) == b"still here\n", "another endpoint's open connection survived (R30)"

"""Small client-side helpers shared by the data-plane tests."""

from __future__ import annotations

import json
import pathlib
import socket
import subprocess
from typing import Any

import yaml

from .conftest import GatewayAgent
from .netns import connect, wait_until


def route(endpoint_id: str, marker: int, *listeners: tuple[int, str, int], **extra: Any) -> dict[str, Any]:
    """A Route document; listeners are (gatewayPort, backendHost, serverPort)."""
    return {
        "endpointId": endpoint_id,
        "markerId": marker,
        "listeners": [
            {"gatewayPort": gateway_port, "clientPort": 80, "backendHost": host, "serverPort": server_port}
            for gateway_port, host, server_port in listeners
        ],
        **extra,
    }


def read_line(sock: socket.socket, limit: int = 4096) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < limit:
        chunk = sock.recv(limit)
        if not chunk:
            break
        data += chunk
    return data


def greeting(sock: socket.socket) -> dict[str, Any]:
    line = read_line(sock)
    if not line:
        raise ConnectionError("closed without a greeting")
    return json.loads(line)


def call(ns: str, host: str, port: int, source: str | None = None, timeout: float = 2.0) -> dict[str, Any]:
    """Connect, read the backend's greeting, check one echo, close."""
    with connect(ns, host, port, timeout=timeout, source=source) as sock:
        hello = greeting(sock)
        sock.sendall(b"ping\n")
        assert read_line(sock) == b"ping\n"
        return hello


def refused(ns: str, host: str, port: int, source: str | None = None, timeout: float = 2.0) -> str | None:
    """How the connection was refused ('refused at connect', 'closed at once'), or None if it was served."""
    try:
        sock = connect(ns, host, port, timeout=timeout, source=source)
    except ConnectionRefusedError:
        return "refused at connect"
    except ConnectionResetError:
        return "reset at once"
    except OSError as error:
        return f"unreachable ({error.strerror or error})"
    with sock:
        try:
            data = sock.recv(4096)
        except ConnectionResetError:
            return "reset at once"
        except TimeoutError:
            return None  # hanging is not refusing: the caller asserts on it
        return "closed at once" if not data else None


def wait_served(agent: GatewayAgent, port: int, timeout: float = 10.0) -> None:
    topology = agent.topology
    wait_until(
        lambda: call(topology.consumer, topology.gateway_consumer_ip, port, timeout=1.0),
        timeout=timeout,
        what=f"gateway port {port} to serve",
    )


def wait_refused(agent: GatewayAgent, port: int, timeout: float = 10.0) -> None:
    topology = agent.topology
    wait_until(
        lambda: (
            refused(topology.consumer, topology.gateway_consumer_ip, port, timeout=1.0)
            == "refused at connect"
        ),
        timeout=timeout,
        what=f"gateway port {port} to be closed",
    )


def render_chart(release: str, namespace: str, *sets: str) -> list[dict[str, Any]]:
    """The chart's objects, rendered by hack/render-chart for a release in `namespace` (with `--set` values):
    the tests enforce the chart's own policies on the pods the chart's own labels name."""
    repo = pathlib.Path(__file__).resolve().parents[2]
    rendered = subprocess.run(
        [str(repo / "hack" / "render-chart"), release, "--namespace", namespace,
         *(arg for value in sets for arg in ("--set", value))],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def chart_network_policy(release: str, namespace: str, name: str, *sets: str) -> str:
    """One NetworkPolicy of the chart (render_chart), as JSON for kubectl apply."""
    [policy] = [
        doc
        for doc in render_chart(release, namespace, *sets)
        if doc["kind"] == "NetworkPolicy" and doc["metadata"]["name"] == name
    ]
    return json.dumps(policy)

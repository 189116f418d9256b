"""Backend reachability (R32), read from HAProxy's own health checks (``show stat``)."""

from __future__ import annotations

import csv
import io

from vpcep.api.routing import BackendHealth
from vpcep.builders.haproxy_config import endpoint_of_proxy

DOWN_STATES = ("DOWN", "MAINT", "NOLB")


def unhealthy_backends(show_stat_csv: str) -> list[BackendHealth]:
    """One entry per endpoint with at least one backend server HAProxy considers down."""
    text = show_stat_csv.lstrip("# ")
    problems: dict[str, list[str]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        proxy = row.get("pxname") or ""
        server = row.get("svname") or ""
        if server in ("FRONTEND", "BACKEND"):
            continue
        endpoint_id = endpoint_of_proxy(proxy)
        status = row.get("status") or ""
        if endpoint_id is None or not status.startswith(DOWN_STATES):
            continue
        gateway_port = proxy.rsplit("_", 1)[-1]
        address = row.get("addr") or "unresolved address"
        detail = row.get("check_desc") or row.get("last_chk") or row.get("check_status") or status
        problems.setdefault(endpoint_id, []).append(
            f"gateway port {gateway_port}: backend {address} unreachable from gateway ({status}: {detail})"
        )
    return [
        BackendHealth(endpointId=endpoint_id, reachable=False, message="; ".join(messages))
        for endpoint_id, messages in sorted(problems.items())
    ]

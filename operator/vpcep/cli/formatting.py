"""Pure text for the plugin's answers: kubectl-style tables, ages and the `describe` report.

Input is plain JSON dicts as the API server returns them; `now` is passed in so output is testable.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from vpcep.cli.hints import NO_STATUS_HINT, STALE_HINT, hint_for

Obj = dict[str, Any]
NONE = "<none>"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Columns padded like kubectl get: three spaces between columns, no trailing blanks."""
    cells = [list(headers)] + [[NONE if v is None or v == "" else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["   ".join(value.ljust(widths[i]) for i, value in enumerate(row)).rstrip() for row in cells]
    return "\n".join(lines)


def parse_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def age(value: str | None, now: datetime.datetime) -> str:
    """kubectl's short ages: 45s, 12m, 5h, 3d."""
    moment = parse_time(value)
    if moment is None:
        return NONE
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "d" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def effective_decision(conn: Obj) -> tuple[str, str]:
    """(decision, decided by) as the operator reports it in status (R10): Accept also when nobody had to
    decide; an operator that predates status.decision only has the provider's own spec.decision."""
    status = conn.get("status") or {}
    if status.get("decision"):
        return status["decision"], status.get("decidedBy") or ""
    spec_decision = (conn.get("spec") or {}).get("decision", "Pending")
    return spec_decision, "Provider" if spec_decision != "Pending" else ""


def connections_table(connections: Sequence[Obj], now: datetime.datetime) -> str:
    """The console's connection table (R10): endpoint ID, marker ID, state, decision, owner, created."""
    rows = []
    for conn in sorted(connections, key=lambda c: c.get("status", {}).get("createdAt") or ""):
        status = conn.get("status") or {}
        rows.append(
            (
                conn["metadata"]["name"],
                status.get("endpointId"),
                status.get("markerId"),
                status.get("state"),
                *effective_decision(conn),
                status.get("ownerAccount"),
                age(status.get("createdAt") or conn["metadata"].get("creationTimestamp"), now),
            )
        )
    return table(
        ("NAME", "ENDPOINT ID", "MARKER ID", "STATE", "DECISION", "DECIDED BY", "OWNER", "CREATED"), rows
    )


def _int(data: dict[str, str], key: str) -> int | None:
    try:
        return int(data[key])
    except (KeyError, ValueError):
        return None


def quota_report(configmap: Obj, namespace: str) -> str:
    """R41: the account's usage and limits from the operator's vpcep-quota ConfigMap."""
    data: dict[str, str] = configmap.get("data") or {}
    rows = []
    account = data.get("account", NONE)
    header = f"Account: {account} (namespace {namespace})"
    for resource, key in QUOTA_ROWS:
        used, limit = _int(data, f"{key}Used"), _int(data, f"{key}Limit")
        if used is None and limit is None and key in NEWER_QUOTAS:
            continue  # written by an operator that does not count them yet
        free = None if used is None or limit is None else max(0, limit - used)
        rows.append((resource, used, limit, free, f"quotas.overrides.{account}.{key}"))
    footer = (
        "\nOver a limit: delete what you no longer use, or ask the cluster operator to raise the Helm value "
        "in the last column (or quotas.default.<key> for every account)."
    )
    return header + "\n" + table(("RESOURCE", "USED", "LIMIT", "AVAILABLE", "RAISED BY"), rows) + footer


# R41, R49: what the vpcep-quota ConfigMap counts (`<key>Used`, `<key>Limit`), as the chart names its limit.
QUOTA_ROWS = (
    ("endpointservices", "services"),
    ("endpoints", "endpoints"),
    ("gateway ports", "gatewayPorts"),
    ("whitelists", "whitelists"),
)
NEWER_QUOTAS = frozenset({"gatewayPorts", "whitelists"})


@dataclass(frozen=True)
class EndpointFacts:
    """Everything `describe` gathered; None or a note where the user may not read something."""

    endpoint: Obj
    events: Sequence[Obj] = ()
    connection: Obj | None = None
    connection_note: str = ""
    node_service: Obj | None = None
    gateway_addresses: Sequence[str] | None = None
    notes: Sequence[str] = field(default_factory=tuple)


def _field(label: str, value: object) -> str:
    return f"{label + ':':<22}{NONE if value is None or value == '' else value}"


def likely_causes(facts: EndpointFacts) -> list[str]:
    """Advice, most useful first: the phase's reason, then each failing condition, then data-path gaps."""
    endpoint = facts.endpoint
    status = endpoint.get("status") or {}
    causes: list[str] = []

    def add(text: str) -> None:
        if text and text not in causes:
            causes.append(text)

    if not status.get("phase"):
        add(NO_STATUS_HINT)
    generation = endpoint["metadata"].get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and observed < generation:
        add(STALE_HINT)
    add(hint_for(status.get("reason")))
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            add(hint_for(condition.get("reason")))
    serves_node_ip = status.get("phase") == "Accepted" and status.get("serviceType") != "Gateway"
    if serves_node_ip and facts.gateway_addresses is not None and not facts.gateway_addresses:
        add(hint_for("GatewayNotReady"))
    return causes


def describe_endpoint(facts: EndpointFacts, now: datetime.datetime) -> str:
    endpoint = facts.endpoint
    meta, spec, status = endpoint["metadata"], endpoint.get("spec") or {}, endpoint.get("status") or {}
    target = spec.get("serviceName") or (
        f"cloud service {spec['cloudService']}" if spec.get("cloudService") else None
    )
    sources = ((spec.get("accessControl") or {}).get("sourceCIDRs")) or []
    ports = ", ".join(
        f"{p['clientPort']} -> gateway {p['gatewayPort']}" for p in status.get("gatewayPorts") or []
    )
    lines = [
        _field("Name", meta["name"]),
        _field("Namespace", meta.get("namespace")),
        _field("Service", target),
        _field("Phase", status.get("phase")),
        _field("Reason", status.get("reason")),
        _field("Message", status.get("message")),
        _field("Endpoint ID", status.get("endpointId")),
        _field("Marker ID", status.get("markerId")),
        _field("Type", status.get("serviceType")),
        _field("Node IP", status.get("nodeIP")),
        _field("DNS name", status.get("dnsName")),
        _field("Ports", ports),
        _field("Allowed sources", ", ".join(sources) if sources else "any"),
        _field("Created", status.get("createdAt") or meta.get("creationTimestamp")),
        _field("Generation", f"{meta.get('generation')} (observed {status.get('observedGeneration', NONE)})"),
        "",
        "Conditions:",
    ]
    conditions = status.get("conditions") or []
    if conditions:
        rows = [
            (
                c.get("type"),
                c.get("status"),
                c.get("reason"),
                age(c.get("lastTransitionTime"), now),
                c.get("message"),
            )
            for c in conditions
        ]
        lines += [
            "  " + line for line in table(("TYPE", "STATUS", "REASON", "AGE", "MESSAGE"), rows).splitlines()
        ]
    else:
        lines.append(f"  {NONE}")

    lines += ["", "Connection (provider side):"]
    if facts.connection is not None:
        conn_status = facts.connection.get("status") or {}
        decision, decided_by = effective_decision(facts.connection)
        lines += [
            "  " + _field("Namespace", facts.connection["metadata"].get("namespace")),
            "  " + _field("Decision", f"{decision} (by {decided_by})" if decided_by else decision),
            "  " + _field("State", conn_status.get("state")),
            "  " + _field("Owner account", conn_status.get("ownerAccount")),
        ]
    else:
        lines.append("  " + (facts.connection_note or NONE))

    lines += ["", "Data path:"]
    if status.get("serviceType") == "Gateway":
        lines.append(
            "  Gateway-type endpoint: no node IP; egress to the service is opened in this namespace."
        )
    elif facts.node_service is not None:
        svc = facts.node_service
        svc_ports = ", ".join(
            f"{p.get('port')}->{p.get('targetPort')}" for p in (svc.get("spec") or {}).get("ports") or []
        )
        cluster_ip = (svc.get("spec") or {}).get("clusterIP")
        lines.append(f"  Service {svc['metadata']['name']}: ClusterIP {cluster_ip}, ports {svc_ports}")
        if facts.gateway_addresses is not None:
            gateways = ", ".join(facts.gateway_addresses) or "none (no gateway ready)"
            lines.append(f"  Gateways behind it: {gateways}")
    else:
        expected = "" if status.get("phase") == "Accepted" else " (expected until Accepted)"
        lines.append(f"  no node-IP Service yet{expected}")

    lines += ["", "Events:"]
    if facts.events:
        event_rows: list[tuple[object, ...]]
        ordered = sorted(facts.events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        event_rows = [
            (
                e.get("type"),
                e.get("reason"),
                age(e.get("lastTimestamp") or e.get("eventTime"), now),
                e.get("message"),
            )
            for e in ordered[-15:]
        ]
        lines += [
            "  " + line for line in table(("TYPE", "REASON", "AGE", "MESSAGE"), event_rows).splitlines()
        ]
    else:
        lines.append(f"  {NONE}")

    causes = likely_causes(facts)
    lines += ["", "Likely causes:" if causes else "Likely causes: none, the endpoint looks healthy."]
    lines += [f"  - {cause}" for cause in causes]
    lines += [f"  note: {note}" for note in facts.notes]
    return "\n".join(lines)

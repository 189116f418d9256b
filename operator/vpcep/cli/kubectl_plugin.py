"""kubectl-vpcep: `kubectl vpcep verify|accept|reject|connections|quota|describe` for tenants.

Uses the current kubeconfig, context and namespace like kubectl (-n/--namespace, --context, --kubeconfig),
and only the user's own RBAC rights. Exit status: 0 done/found, 1 not found or refused, 2 usage or API error.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vpcep.builders.consumer import consumer_service_name
from vpcep.cli.cluster import (
    ENDPOINT_ID_LABEL,
    ENDPOINT_SERVICE_LABEL,
    QUOTA_CONFIGMAP,
    ApiRefused,
    Cluster,
    Forbidden,
    Obj,
    Target,
)
from vpcep.cli.formatting import EndpointFacts, connections_table, describe_endpoint, quota_report

OK, NEGATIVE, ERROR = 0, 1, 2
SERVICE_NAME_FORMAT = (
    "<region>.<name>.<serviceId>, as shown in the provider's `kubectl get vpces` (SERVICE NAME)"
)


@dataclass(frozen=True)
class Answer:
    code: int
    text: str


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# Phrases of the operator's admission answers (vpcep.domain.endpoint, vpcep.domain.permission) that tell the
# refusals of a dry-run Endpoint apart; tests/cli/test_cli_verify.py holds them to the real webhook's answers.
NOT_FOUND_PHRASE = "not found: check the name and the region"
NOT_PERMITTED_PHRASE = "may not connect to"


def _describe_service(service: Obj) -> str:
    meta, spec, status = service["metadata"], service.get("spec") or {}, service.get("status") or {}
    ports = ", ".join(str(p.get("clientPort")) for p in spec.get("ports") or [])
    approval = "approval required" if spec.get("approvalRequired") else "no approval needed"
    return (
        f"{meta.get('namespace')}/{meta['name']}, type {status.get('serviceType')}, ports {ports}, "
        f"{approval}, phase {status.get('phase')}"
    )


def verify(cluster: Cluster, service_name: str) -> Answer:
    """Is there a service of this name that I may connect to from this namespace? (the console's "Verify"
    button, R15, R40). Three answers: not found; found, but this namespace's account may not connect (and what
    to ask the provider for, R12, R13); found, and an Endpoint for it would be admitted here.

    Whoever may list EndpointServices in every namespace (an admin) learns the service's details from the
    list; everyone else learns only what admission tells them. Either way, whether *this* namespace's account
    may connect is asked of admission itself, with a dry-run Endpoint here: the operator's webhook answers
    with the same checks it applies to a real one, and nothing is stored.
    """
    parts = service_name.split(".")
    if len(parts) < 3 or not all(parts):
        return Answer(
            NEGATIVE, f"not found: {service_name!r} is not a service name; expected {SERVICE_NAME_FORMAT}"
        )
    try:
        everywhere: list[Obj] | None = cluster.list_everywhere("endpointservices")
    except Forbidden:
        everywhere = None
    candidates = everywhere if everywhere is not None else cluster.list_here("endpointservices")
    named = [s for s in candidates if (s.get("status") or {}).get("serviceName") == service_name]
    service = named[0] if named else None
    if everywhere is not None and service is None:
        return Answer(
            NEGATIVE, f"not found: no service is named {service_name}; check the name and the region"
        )
    details = f" ({_describe_service(service)})" if service else ""

    probe = {
        "apiVersion": "vpcep.io/v1alpha1",
        "kind": "Endpoint",
        "metadata": {"generateName": "vpcep-verify-"},
        "spec": {"serviceName": service_name},
    }
    try:
        cluster.dry_run_create("endpoints", probe)
    except Forbidden as error:  # RBAC: this user may not create Endpoints here
        if service is None:
            return Answer(
                ERROR,
                "cannot verify: you may neither list endpointservices in all namespaces nor create endpoints "
                f"in namespace {cluster.namespace} ({error})",
            )
        return Answer(
            ERROR,
            f"found: {service_name}{details}; cannot tell whether namespace {cluster.namespace} may connect: "
            f"you may not create endpoints there ({error})",
        )
    except ApiRefused as error:  # admission's answer
        message = str(error)
        if NOT_PERMITTED_PHRASE in message:
            return Answer(
                NEGATIVE, f"found: {service_name}{details}, but your account may not connect to it: {message}"
            )
        if NOT_FOUND_PHRASE in message:
            return Answer(NEGATIVE, f"not found: {message}")
        return Answer(
            NEGATIVE, f"found: {service_name}{details}, but an Endpoint for it would be refused: {message}"
        )
    return Answer(
        OK,
        f"found: {service_name}{details}; an Endpoint for it would be admitted in namespace "
        f"{cluster.namespace} (as long as the vpcep admission webhook is enabled: without it every name is "
        "admitted, and the Endpoint's status says what is wrong)",
    )


def _find_connection(cluster: Cluster, ident: str) -> Obj | None:
    """By name, endpoint ID, marker ID or a unique name prefix, in the current namespace."""
    direct = cluster.get("endpointconnections", ident)
    if direct is not None:
        return direct
    connections = cluster.list_here("endpointconnections")
    for conn in connections:
        status = conn.get("status") or {}
        if ident in (status.get("endpointId"), str(status.get("markerId"))):
            return conn
    prefixed = [c for c in connections if c["metadata"]["name"].startswith(ident)]
    return prefixed[0] if len(prefixed) == 1 else None


def decide(cluster: Cluster, ident: str, decision: str) -> Answer:
    """R10, R11: the provider accepts or rejects one connection by editing spec.decision."""
    conn = _find_connection(cluster, ident)
    if conn is None:
        return Answer(
            NEGATIVE,
            f"endpointconnection {ident!r} not found in namespace {cluster.namespace} "
            "(give its name, endpoint ID or marker ID; list them with `kubectl vpcep connections SERVICE`)",
        )
    name = conn["metadata"]["name"]
    try:
        cluster.patch("endpointconnections", name, {"spec": {"decision": decision}})
    except ApiRefused as error:
        return Answer(NEGATIVE, f"endpointconnection/{name}: refused: {error}")
    status = conn.get("status") or {}
    verb = "accepted" if decision == "Accept" else "rejected"
    return Answer(
        OK,
        f"endpointconnection/{name} {verb} (endpoint {status.get('endpointId')}, "
        f"marker {status.get('markerId')}, owner {status.get('ownerAccount')})",
    )


def connections(cluster: Cluster, service: str) -> Answer:
    if cluster.get("endpointservices", service) is None:
        return Answer(NEGATIVE, f"endpointservice {service!r} not found in namespace {cluster.namespace}")
    listed = [
        c
        for c in cluster.list_here("endpointconnections")
        if (c["metadata"].get("labels") or {}).get(ENDPOINT_SERVICE_LABEL) == service
        or (c.get("status") or {}).get("endpointService") == service
    ]
    if not listed:
        return Answer(OK, f"No connections to endpointservice {service} in namespace {cluster.namespace}.")
    return Answer(OK, connections_table(listed, _now()))


def quota(cluster: Cluster) -> Answer:
    configmap = cluster.configmap(QUOTA_CONFIGMAP)
    if configmap is None:
        return Answer(
            NEGATIVE,
            f"no quota record in namespace {cluster.namespace} yet: the operator writes ConfigMap "
            f"{QUOTA_CONFIGMAP} once the namespace holds an EndpointService or Endpoint",
        )
    return Answer(OK, quota_report(configmap, cluster.namespace))


def gather_endpoint_facts(cluster: Cluster, endpoint: Obj) -> EndpointFacts:
    """Read what the user may read; what they may not becomes a note instead of an error."""
    notes: list[str] = []
    status = endpoint.get("status") or {}
    try:
        events = cluster.events_for(endpoint)
    except Forbidden:
        events, notes = [], [*notes, "you may not list events in this namespace"]
    connection, connection_note = None, ""
    endpoint_id = status.get("endpointId")
    if not endpoint_id:
        connection_note = "none yet (the operator creates it once the service is resolved)"
    else:
        try:
            found = cluster.list_everywhere("endpointconnections", f"{ENDPOINT_ID_LABEL}={endpoint_id}")
            connection = found[0] if found else None
            connection_note = "" if found else "none found (the service may have been deleted)"
        except Forbidden:
            connection_note = (
                "not visible to you: it lives in the provider's namespace; the provider sees it with "
                "`kubectl vpcep connections SERVICE`"
            )
    node_service, gateway_addresses = None, None
    service_name = consumer_service_name(endpoint["metadata"]["name"])
    try:
        node_service = cluster.service(service_name)
        if node_service is not None:
            slices = cluster.endpoint_slices(service_name)
            gateway_addresses = [
                address
                for piece in slices
                for ep in piece.get("endpoints") or []
                if (ep.get("conditions") or {}).get("ready", True)
                for address in ep.get("addresses") or []
            ]
    except Forbidden:
        notes.append("you may not read Services or EndpointSlices in this namespace")
    return EndpointFacts(
        endpoint=endpoint,
        events=events,
        connection=connection,
        connection_note=connection_note,
        node_service=node_service,
        gateway_addresses=gateway_addresses,
        notes=notes,
    )


def describe(cluster: Cluster, name: str) -> Answer:
    endpoint = cluster.get("endpoints", name)
    if endpoint is None:
        return Answer(
            NEGATIVE,
            f"endpoint {name!r} not found in namespace {cluster.namespace} (list them: kubectl get vpce)",
        )
    return Answer(OK, describe_endpoint(gather_endpoint_facts(cluster, endpoint), _now()))


def _connection_flags(parser: argparse.ArgumentParser, default: str | None) -> argparse.ArgumentParser:
    parser.add_argument(
        "-n", "--namespace", default=default, help="namespace (default: the context's namespace)"
    )
    parser.add_argument(
        "--context", default=default, help="kubeconfig context (default: the current context)"
    )
    parser.add_argument(
        "--kubeconfig", default=default, help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    # The flags are accepted before and after the command; the command's copy must not reset the value given
    # before it, hence SUPPRESS as its default.
    common = _connection_flags(argparse.ArgumentParser(add_help=False), argparse.SUPPRESS)
    parser = _connection_flags(
        argparse.ArgumentParser(
            prog="kubectl vpcep",
            description="VPC endpoints for tenants: verify names, decide connections, see quota, debug.",
        ),
        None,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cmd = commands.add_parser(
        "verify", parents=[common], help="may this namespace connect to a service name?"
    )
    cmd.add_argument("service_name", metavar="SERVICE_NAME", help=SERVICE_NAME_FORMAT)
    for verb, text in (
        ("accept", "accept a pending connection (provider side)"),
        ("reject", "reject a connection and cut its endpoint off (provider side)"),
    ):
        cmd = commands.add_parser(verb, parents=[common], help=text)
        cmd.add_argument("connection", metavar="CONNECTION", help="name, endpoint ID or marker ID")
    cmd = commands.add_parser(
        "connections", parents=[common], help="list the connections of an endpoint service"
    )
    cmd.add_argument("service", metavar="ENDPOINT_SERVICE", help="EndpointService name in the namespace")
    commands.add_parser("quota", parents=[common], help="the account's usage and limits")
    cmd = commands.add_parser("describe", parents=[common], help="everything needed to debug an endpoint")
    cmd.add_argument("endpoint", metavar="ENDPOINT", help="Endpoint name in the namespace")
    return parser


def dispatch(args: argparse.Namespace, cluster: Cluster) -> Answer:
    actions: dict[str, Callable[[], Answer]] = {
        "verify": lambda: verify(cluster, args.service_name),
        "accept": lambda: decide(cluster, args.connection, "Accept"),
        "reject": lambda: decide(cluster, args.connection, "Reject"),
        "connections": lambda: connections(cluster, args.service),
        "quota": lambda: quota(cluster),
        "describe": lambda: describe(cluster, args.endpoint),
    }
    return actions[args.command]()


def main(argv: Sequence[str] | None = None, connect: Callable[[Target], Cluster] = Cluster.connect) -> int:
    args = build_parser().parse_args(argv)
    try:
        cluster = connect(Target(kubeconfig=args.kubeconfig, context=args.context, namespace=args.namespace))
        answer = dispatch(args, cluster)
    except Forbidden as error:
        answer = Answer(ERROR, f"forbidden: {error}")
    except ApiRefused as error:
        answer = Answer(ERROR, f"error: {error}")
    except Exception as error:
        answer = Answer(ERROR, f"error: {type(error).__name__}: {error}")
    stream = sys.stdout if answer.code == OK else sys.stderr
    print(answer.text, file=stream)
    return answer.code


if __name__ == "__main__":
    sys.exit(main())

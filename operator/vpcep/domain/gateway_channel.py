"""R45: which API requests the operator's gateway channel passes on for a gateway agent, and which it refuses.

With the channel, a gateway pod's egress admits the operator's channel port instead of the API server, so a
compromised HAProxy in that pod cannot open a connection to the API server at all. The agent still speaks the
Kubernetes API (its own client, its own ServiceAccount token, which the channel passes on unchanged: the API
server authenticates and authorizes every request as before); the channel only narrows *what* may be asked to
the four requests an agent makes, in the operator's namespace:

- list and watch the route ConfigMaps (``labelSelector=vpcep.io/route=true``, nothing broader);
- read, patch or replace its status ConfigMap (``vpcep-gateway-<name>``), and create one by that name.

Anything else (another kind, namespace, name or selector, a subresource, an unknown query parameter, a path
that is not in its plain form) is refused here with a reason, before the API server sees it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vpcep.api.routing import GATEWAY_STATUS_NAME_PREFIX, ROUTE_LABEL

ROUTE_SELECTOR = f"{ROUTE_LABEL}=true"
# A status ConfigMap's name: the prefix and a DNS subdomain's characters (never "/", never "%").
STATUS_NAME = re.compile(re.escape(GATEWAY_STATUS_NAME_PREFIX) + r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
# Query parameters of a list or watch the agent's client sends; nothing that widens what is read.
LIST_PARAMETERS = frozenset(
    {
        "labelSelector",
        "watch",
        "resourceVersion",
        "resourceVersionMatch",
        "timeoutSeconds",
        "allowWatchBookmarks",
        "limit",
        "continue",
    }
)
# A watch longer than this would hold an upstream connection past the channel's read timeout.
MAX_WATCH_SECONDS = 600
WRITE_PARAMETERS = frozenset({"fieldManager", "fieldValidation"})
OBJECT_METHODS = frozenset({"GET", "PATCH", "PUT"})


@dataclass(frozen=True)
class ChannelRequest:
    method: str
    path: str
    query: Mapping[str, Sequence[str]]
    # metadata.name of a POST body (None when there is none or it has no name).
    created_name: str | None = None
    # False while the body is not read yet: everything but the created name is judged.
    body_read: bool = True


def refusal(request: ChannelRequest, namespace: str) -> str | None:
    """None when the request is one a gateway agent makes; otherwise why it is refused."""
    collection = f"/api/v1/namespaces/{namespace}/configmaps"
    method = request.method.upper()
    if request.path == collection:
        if method == "GET":
            return _list_refusal(request.query)
        if method == "POST":
            return _create_refusal(request)
        return f"{method} on the ConfigMap collection is not a gateway's request"
    if request.path.startswith(collection + "/"):
        name = request.path[len(collection) + 1 :]
        if "/" in name or not _is_status_name(name):
            return f"only gateway status ConfigMaps ({GATEWAY_STATUS_NAME_PREFIX}<name>) are read or written"
        if method not in OBJECT_METHODS:
            return f"{method} on a gateway status ConfigMap is not a gateway's request"
        return _unknown_parameters(request.query, WRITE_PARAMETERS)
    return f"{request.path!r} is not served to gateways (only ConfigMaps in the namespace {namespace})"


def _list_refusal(query: Mapping[str, Sequence[str]]) -> str | None:
    if list(query.get("labelSelector", ())) != [ROUTE_SELECTOR]:
        return f"gateways list only the route ConfigMaps: labelSelector={ROUTE_SELECTOR}"
    timeouts = list(query.get("timeoutSeconds", ()))
    if timeouts and not (
        len(timeouts) == 1 and timeouts[0].isdigit() and int(timeouts[0]) <= MAX_WATCH_SECONDS
    ):
        return f"timeoutSeconds must be one number of at most {MAX_WATCH_SECONDS}"
    return _unknown_parameters(query, LIST_PARAMETERS)


def _create_refusal(request: ChannelRequest) -> str | None:
    # Before the body is read only the query is judged; the channel judges the POST again with its name.
    if request.body_read and not (request.created_name and _is_status_name(request.created_name)):
        return f"gateways create only their status ConfigMap ({GATEWAY_STATUS_NAME_PREFIX}<name>)"
    return _unknown_parameters(request.query, WRITE_PARAMETERS)


def _unknown_parameters(query: Mapping[str, Sequence[str]], allowed: frozenset[str]) -> str | None:
    unknown = sorted(set(query) - allowed)
    return f"query parameter {unknown[0]!r} is not passed to the API server" if unknown else None


def _is_status_name(name: str) -> bool:
    return len(name) <= 253 and STATUS_NAME.fullmatch(name) is not None

"""The gateway's report to the operator: a GatewayStatus, in a ConfigMap or (without a cluster) a file."""

from __future__ import annotations

import datetime
import json
import logging
import os
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from vpcep.api.routing import (
    DIGEST_ENTRIES,
    ERROR_CHARS,
    GATEWAY_STATUS_DATA_KEY,
    GATEWAY_STATUS_LABEL,
    GATEWAY_STATUS_NAME_PREFIX,
    LISTED_PROBLEMS,
    OPTIONAL_STATUS_FIELDS,
    PROBLEM_MESSAGE_CHARS,
    BackendHealth,
    GatewayStatus,
    short_id,
)

log = logging.getLogger(__name__)


def rfc3339_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _clipped(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def bounded_status(
    *,
    gateway: str,
    address: str,
    heartbeat: str,
    applied_resource_version: int,
    rejected: Mapping[str, str],
    unhealthy: Sequence[BackendHealth],
    error: str,
    draining: bool = False,
) -> GatewayStatus:
    """The report, of a size bounded whatever the number of routes (R52): the first LISTED_PROBLEMS refused
    routes and unreachable backends with their messages, every further one by short id (up to
    DIGEST_ENTRIES in all), and the rest counted. 10,000 routes behind a dead backend: about 170 KB (2.3 MB
    unbounded, which the API server refuses)."""
    refused = sorted(rejected.items())
    down = sorted((health for health in unhealthy if not health.reachable), key=lambda h: h.endpointId)
    digest_room = DIGEST_ENTRIES
    more_refused = [short_id(endpoint_id) for endpoint_id, _ in refused[LISTED_PROBLEMS:]][:digest_room]
    digest_room -= len(more_refused)
    more_down = [short_id(health.endpointId) for health in down[LISTED_PROBLEMS:]][:digest_room]
    listed = min(len(refused), LISTED_PROBLEMS) + min(len(down), LISTED_PROBLEMS)
    return GatewayStatus(
        gateway=gateway,
        address=address,
        heartbeat=heartbeat,
        appliedResourceVersion=applied_resource_version,
        rejectedRoutes={
            endpoint_id: _clipped(reason, PROBLEM_MESSAGE_CHARS)
            for endpoint_id, reason in refused[:LISTED_PROBLEMS]
        },
        unhealthyBackends=[
            health.model_copy(update={"message": _clipped(health.message, PROBLEM_MESSAGE_CHARS)})
            for health in down[:LISTED_PROBLEMS]
        ],
        moreRejectedRoutes=sorted(more_refused),
        moreUnhealthyBackends=sorted(more_down),
        # Totals only when some are not listed: an all-listed report carries no key an older operator refuses.
        rejectedRoutesTotal=len(refused) if len(refused) > LISTED_PROBLEMS else 0,
        unhealthyBackendsTotal=len(down) if len(down) > LISTED_PROBLEMS else 0,
        unlistedProblems=len(refused) + len(down) - listed - len(more_refused) - len(more_down),
        error=_clipped(error, ERROR_CHARS),
        draining=draining,
    )


def status_config_map(name: str, status: GatewayStatus, pod_uid: str | None) -> dict[str, Any]:
    """The ConfigMap body a gateway writes: its status as compact JSON under one key."""
    report = status.model_dump(mode="json")
    for key in OPTIONAL_STATUS_FIELDS:  # an older operator refuses keys it does not know (mid-upgrade)
        if not report[key]:
            del report[key]
    body: dict[str, Any] = {
        "metadata": {"name": name, "labels": {GATEWAY_STATUS_LABEL: "true"}},
        "data": {GATEWAY_STATUS_DATA_KEY: json.dumps(report, sort_keys=True, separators=(",", ":"))},
    }
    if pod_uid:
        gateway_name = name.removeprefix(GATEWAY_STATUS_NAME_PREFIX)
        body["metadata"]["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Pod", "name": gateway_name, "uid": pod_uid}
        ]
    return body


class StatusWriter(Protocol):
    def write(self, status: GatewayStatus) -> None: ...


class FileStatusWriter:
    """Writes status.json atomically (readers never see half a file)."""

    def __init__(self, path: pathlib.Path) -> None:
        self._path = path

    def write(self, status: GatewayStatus) -> None:
        temporary = self._path.with_name(f".{self._path.name}.tmp")
        temporary.write_text(status.model_dump_json(indent=2))
        os.replace(temporary, self._path)


class ConfigMapStatusWriter:
    """Writes ConfigMap ``vpcep-gateway-<name>``: merge-PATCH, created on first use.

    With the pod's UID the ConfigMap is owned by the pod, so a deleted gateway's report is
    garbage-collected with it instead of lingering as a stale heartbeat.
    """

    def __init__(
        self,
        namespace: str,
        gateway_name: str,
        core_api_factory: Callable[[], Any],
        pod_uid: str | None = None,
    ) -> None:
        self._namespace = namespace
        self._name = f"{GATEWAY_STATUS_NAME_PREFIX}{gateway_name}"
        self._api = core_api_factory()
        self._pod_uid = pod_uid

    def write(self, status: GatewayStatus) -> None:
        from kubernetes.client.exceptions import ApiException

        body = status_config_map(self._name, status, self._pod_uid)
        try:
            self._api.patch_namespaced_config_map(self._name, self._namespace, body)
        except ApiException as error:
            if error.status != 404:
                raise
            self._api.create_namespaced_config_map(self._namespace, body)

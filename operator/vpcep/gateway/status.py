"""The gateway's report to the operator: a GatewayStatus, in a ConfigMap or (without a cluster) a file."""

from __future__ import annotations

import datetime
import json
import logging
import os
import pathlib
from collections.abc import Callable
from typing import Any, Protocol

from vpcep.api.routing import (
    GATEWAY_STATUS_DATA_KEY,
    GATEWAY_STATUS_LABEL,
    GATEWAY_STATUS_NAME_PREFIX,
    GatewayStatus,
)

log = logging.getLogger(__name__)


def rfc3339_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
        self._gateway_name = gateway_name
        self._api = core_api_factory()
        self._pod_uid = pod_uid

    def write(self, status: GatewayStatus) -> None:
        from kubernetes.client.exceptions import ApiException

        body: dict[str, Any] = {
            "metadata": {
                "name": self._name,
                "labels": {GATEWAY_STATUS_LABEL: "true"},
            },
            "data": {GATEWAY_STATUS_DATA_KEY: json.dumps(status.model_dump(mode="json"), sort_keys=True)},
        }
        if self._pod_uid:
            body["metadata"]["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "Pod", "name": self._gateway_name, "uid": self._pod_uid}
            ]
        try:
            self._api.patch_namespaced_config_map(self._name, self._namespace, body)
        except ApiException as error:
            if error.status != 404:
                raise
            self._api.create_namespaced_config_map(self._namespace, body)

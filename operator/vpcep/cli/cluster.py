"""The plugin's reads and writes, through the official client and the user's own kubeconfig and rights.

Every call returns plain JSON dicts as the API server sent them (camelCase), so formatting code never
depends on the client's model classes. A call the user's RBAC forbids raises `Forbidden`; a missing object
gives None.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

GROUP = "vpcep.io"
VERSION = "v1alpha1"
QUOTA_CONFIGMAP = "vpcep-quota"
ENDPOINT_SERVICE_LABEL = "vpcep.io/endpoint-service"
ENDPOINT_ID_LABEL = "vpcep.io/endpoint-id"

Obj = dict[str, Any]


class Forbidden(Exception):
    """The user's RBAC does not allow the call; the message is the API server's."""


class ApiRefused(Exception):
    """The API server refused a request for what it says, not for who asks (admission, validation); the
    message is the API server's."""


def api_message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except ValueError:
        return str(error.body or error.reason)


@dataclass(frozen=True)
class Target:
    """Where to talk to: kubeconfig file, context and namespace as kubectl would choose them."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None


class Cluster:
    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self._api = api_client
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)

    @classmethod
    def connect(cls, target: Target) -> Cluster:
        """Load the kubeconfig (KUBECONFIG, ~/.kube/config) with kubectl's namespace choice."""
        api_client = config.new_client_from_config(config_file=target.kubeconfig, context=target.context)
        namespace = target.namespace
        if not namespace:
            _, active = config.list_kube_config_contexts(config_file=target.kubeconfig)
            if target.context:
                contexts, _ = config.list_kube_config_contexts(config_file=target.kubeconfig)
                active = next((c for c in contexts if c["name"] == target.context), active)
            namespace = (active or {}).get("context", {}).get("namespace") or "default"
        return cls(api_client, namespace)

    def _call(self, method: Any, *args: Any, missing_ok: bool = True, **kwargs: Any) -> Obj | None:
        try:
            response = method(*args, _preload_content=False, **kwargs)
        except ApiException as error:
            if error.status == 404 and missing_ok:
                return None
            message = api_message(error)
            # An admission webhook's refusal comes as a 403 too ("admission webhook ... denied the request"):
            # that is an answer about the object, not about the user's rights.
            if error.status == 403 and "denied the request" not in message:
                raise Forbidden(message) from error
            raise ApiRefused(message) from error
        loaded: Obj = json.loads(response.data)
        return loaded

    def _items(self, method: Any, *args: Any, **kwargs: Any) -> list[Obj]:
        listed = self._call(method, *args, **kwargs)
        return list((listed or {}).get("items") or [])

    # The four kinds, in the current namespace unless said otherwise.
    def get(self, plural: str, name: str) -> Obj | None:
        return self._call(
            self._custom.get_namespaced_custom_object, GROUP, VERSION, self.namespace, plural, name
        )

    def list_here(self, plural: str, label_selector: str = "") -> list[Obj]:
        return self._items(
            self._custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            plural,
            label_selector=label_selector,
        )

    def list_everywhere(self, plural: str, label_selector: str = "") -> list[Obj]:
        """Across namespaces: needs a ClusterRoleBinding (raises Forbidden for most tenants)."""
        return self._items(
            self._custom.list_cluster_custom_object, GROUP, VERSION, plural, label_selector=label_selector
        )

    def patch(self, plural: str, name: str, patch: Obj) -> Obj | None:
        return self._call(
            self._custom.patch_namespaced_custom_object, GROUP, VERSION, self.namespace, plural, name, patch
        )

    def dry_run_create(self, plural: str, body: Obj) -> Obj | None:
        """Create with dryRun=All: admission (and so the webhook's checks) runs, nothing is stored."""
        return self._call(
            self._custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            plural,
            body,
            dry_run="All",
            missing_ok=False,  # a 404 here means the namespace is missing, not that the check passed
        )

    # Built-in kinds.
    def configmap(self, name: str) -> Obj | None:
        return self._call(self._core.read_namespaced_config_map, name, self.namespace)

    def service(self, name: str) -> Obj | None:
        return self._call(self._core.read_namespaced_service, name, self.namespace)

    def endpoint_slices(self, service_name: str) -> list[Obj]:
        discovery = client.DiscoveryV1Api(self._api)
        return self._items(
            discovery.list_namespaced_endpoint_slice,
            self.namespace,
            label_selector=f"kubernetes.io/service-name={service_name}",
        )

    def events_for(self, obj: Obj) -> list[Obj]:
        meta = obj["metadata"]
        selector = f"involvedObject.name={meta['name']},involvedObject.kind={obj['kind']}"
        events = self._items(
            self._core.list_namespaced_event, meta.get("namespace", self.namespace), field_selector=selector
        )
        uid = meta.get("uid")
        return [e for e in events if not uid or e.get("involvedObject", {}).get("uid") in (None, uid)]

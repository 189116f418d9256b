"""An in-memory stand-in for vpcep.cli.cluster.Cluster (unit tests only; cluster tests use the real API)."""

from __future__ import annotations

import copy
from typing import Any

from vpcep.cli.cluster import Cluster, Forbidden

Obj = dict[str, Any]


class FakeCluster(Cluster):
    """Objects per (plural, namespace); `forbid` names the calls the user's RBAC refuses."""

    def __init__(self, namespace: str = "team-b", forbid: set[str] | None = None) -> None:
        self.namespace = namespace
        self.objects: dict[tuple[str, str], dict[str, Obj]] = {}
        self.forbid = forbid or set()
        self.patches: list[tuple[str, str, Obj]] = []

    def add(self, plural: str, obj: Obj) -> Obj:
        namespace = obj["metadata"].setdefault("namespace", self.namespace)
        self.objects.setdefault((plural, namespace), {})[obj["metadata"]["name"]] = obj
        return obj

    def _check(self, call: str) -> None:
        if call in self.forbid:
            raise Forbidden(f'{call} is forbidden: User "jane" cannot do it')

    def get(self, plural: str, name: str) -> Obj | None:
        self._check(f"get {plural}")
        return copy.deepcopy(self.objects.get((plural, self.namespace), {}).get(name))

    def list_here(self, plural: str, label_selector: str = "") -> list[Obj]:
        self._check(f"list {plural}")
        return _select(list(self.objects.get((plural, self.namespace), {}).values()), label_selector)

    def list_everywhere(self, plural: str, label_selector: str = "") -> list[Obj]:
        self._check(f"list-all {plural}")
        found = [o for (p, _), objs in self.objects.items() if p == plural for o in objs.values()]
        return _select(found, label_selector)

    def patch(self, plural: str, name: str, patch: Obj) -> Obj | None:
        self._check(f"patch {plural}")
        self.patches.append((plural, name, patch))
        return self.objects[(plural, self.namespace)][name]

    def dry_run_create(self, plural: str, body: Obj) -> Obj | None:
        self._check(f"create {plural}")
        return body

    def configmap(self, name: str) -> Obj | None:
        self._check("get configmaps")
        return self.objects.get(("configmaps", self.namespace), {}).get(name)

    def service(self, name: str) -> Obj | None:
        self._check("get services")
        return self.objects.get(("services", self.namespace), {}).get(name)

    def endpoint_slices(self, service_name: str) -> list[Obj]:
        self._check("list endpointslices")
        return self.list_here("endpointslices", f"kubernetes.io/service-name={service_name}")

    def events_for(self, obj: Obj) -> list[Obj]:
        self._check("list events")
        name = obj["metadata"]["name"]
        return [e for e in self.list_here("events") if e["involvedObject"]["name"] == name]


def _select(objs: list[Obj], label_selector: str) -> list[Obj]:
    if not label_selector:
        return objs
    key, value = label_selector.split("=", 1)
    return [o for o in objs if (o["metadata"].get("labels") or {}).get(key) == value]

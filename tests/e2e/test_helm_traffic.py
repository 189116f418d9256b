"""A tenant's live traffic through `helm upgrade` from the previous release, `helm rollback`, and
`helm uninstall` + `helm install` (issue 18 deliverables 3 and 4; R30: changing the operator breaks no
session; R50; R51).

The previous release (CHANGELOG.md's commit, built into its own virtualenv from the clone's history:
previous_release.py) is installed by Helm and its operator runs from that virtualenv under the kubelet
stand-in. A provider publishes a Pod backend, a consumer's Endpoint is accepted, and a real gateway
(traffic.py: agent + HAProxy in a network namespace, reporting as a pod of the release's gateway Deployment)
carries one long-lived stream and a new connection every 0.2 s while a tenant writes a Whitelist every 0.2 s.

Figures (printed; asserted where the goal holds):
- failed connections and broken streams: goal 0, asserted;
- endpoints and services that changed phase: goal 0, asserted (every phase and reason, from a watch);
- vpcep.io writes refused during the switch: goal 0, asserted. The kubelet stand-in gives each pod a network
  namespace of its own (kubelet.py, pod_networks), so this tree's chart runs with its defaults: two operator
  replicas, RollingUpdate one pod at a time, leader election (R50); the webhook's Service is a relay to the
  ready pods, and one of them always answers. Counted apart and not held against the goal: a write in the
  stand-in's own routing window (while Helm applies the webhook configuration, the stand-in must hand it back
  to the Service name, which the testbed's API server cannot resolve; "no such host"). The previous release
  is installed with `webhook.failurePolicy=Ignore`: its operator cannot start under its own webhook
  otherwise (R51, fixed in 0.2.0), and its chart runs one replica with Recreate;
- seconds until the new operator reconciles: from the start of `helm upgrade` (or rollback) until a
  tenant's change made just then is observed (status.observedGeneration).

Not run: the chart's gateway Deployment (see traffic.py). The gateway is this tree's agent throughout, so
the gateway's own replacement during an upgrade (its drain, issue 11 deliverable 4) is not measured here.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import previous_release
import pytest
from kubelet import Image, Kubelet
from previous_release import PreviousRelease
from releases import (
    SteadyWrites,
    allocation,
    get,
    install_and_run,
    listen_ports,
    new_release,
    tenant,
    wait_for,
)
from traffic import Scene, Traffic

from helm_engine import CHART, helm

pytestmark = [pytest.mark.cluster, pytest.mark.netns]

RELEASE = "vpcep"  # 0.1.0 knows its ServiceAccount only as vpcep-operator (R51, fixed in 0.2.0)
OPERATOR = f"{RELEASE}-operator"


@dataclass
class Live:
    cluster: Any
    config: Any
    namespace: str
    previous: PreviousRelease
    kubelet: Kubelet
    scene: Scene
    provider: str
    consumer: str
    traffic: Traffic

    def logs(self) -> str:
        return self.kubelet.logs() + "\n" + self.scene.logs()


class PhaseWatch:
    """Every phase (and reason) the tenant's Endpoint and EndpointService show, from a watch (kubectl get
    --watch), each change with the time it was seen: a flip between two polls cannot be missed."""

    def __init__(self, cluster: Any, provider: str, consumer: str):
        self.seen: dict[str, list[tuple[float, str]]] = {"endpoint": [], "service": []}
        jsonpath = 'jsonpath={.status.phase}/{.status.reason}{"\\n"}'
        kubectl = [cluster.kubectl, "--kubeconfig", str(cluster.kubeconfig)]
        self._watches = [
            subprocess.Popen(
                [*kubectl, "get", kind, "db", "-n", namespace, "--watch", "-o", jsonpath],
                stdout=subprocess.PIPE,
                text=True,
            )
            for kind, namespace in (("endpoints.vpcep.io", consumer), ("endpointservices", provider))
        ]
        self._threads = [
            threading.Thread(target=self._follow, args=(key, watch), daemon=True)
            for key, watch in zip(("endpoint", "service"), self._watches, strict=True)
        ]
        for thread in self._threads:
            thread.start()

    def _follow(self, key: str, watch: subprocess.Popen[str]) -> None:
        assert watch.stdout is not None
        for line in watch.stdout:
            state = line.strip()
            if state and (not self.seen[key] or self.seen[key][-1][1] != state):
                self.seen[key].append((time.monotonic(), state))

    def stop(self) -> dict[str, list[tuple[float, str]]]:
        time.sleep(1)  # the last changes reach the watch
        for watch in self._watches:
            watch.terminate()
            watch.wait(timeout=10)
        for thread in self._threads:
            thread.join(timeout=10)
        return self.seen

    @staticmethod
    def phases(seen: list[tuple[float, str]], start: float = 0.0, end: float = float("inf")) -> list[str]:
        return [state.split("/")[0] for moment, state in seen if start <= moment < end]


@pytest.fixture(scope="module")
def live(
    fresh_cluster: Any, loopback_certificate: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    cluster = fresh_cluster
    previous = previous_release.build()
    _name, namespace, config = new_release(cluster, RELEASE)
    # Each pod has a network of its own (kubelet.py, pod_networks): the chart's default ports
    old_values = {"webhook": {"failurePolicy": "Ignore"}}
    workdir = tmp_path_factory.mktemp("traffic")
    with config:
        with helm.Chart.load(previous.chart) as chart:
            config.install(
                chart, RELEASE, old_values, namespace=namespace, create_namespace=True, timeout=120
            )
        kubelet = Kubelet(cluster, workdir / "kubelet", Image(), loopback_certificate, pod_networks=True)
        scene = Scene(cluster, workdir / "scene")
        try:
            (operator,) = kubelet.run_deployment(namespace, OPERATOR, previous.image)
            wait_for(
                "the previous release's operator", lambda: operator.ready, timeout=120, logs=kubelet.logs
            )
            scene.start_gateway(RELEASE, namespace)
            provider, consumer = tenant(cluster, kubelet.logs, backend_pod=scene.backend_pod)
            wait_for(
                "the endpoint to be Accepted",
                lambda: (
                    (get(cluster, "endpoints.vpcep.io", consumer, "db").get("status") or {}).get("phase")
                    == "Accepted"
                ),
                timeout=60,
                logs=lambda: kubelet.logs() + scene.logs(),
            )
            traffic = Traffic(scene.net, scene.route(consumer, "db"))
            wait_for("bytes through the gateway", traffic.passes, timeout=30, logs=scene.logs)
            yield Live(cluster, config, namespace, previous, kubelet, scene, provider, consumer, traffic)
        finally:
            kubelet.stop()
            scene.close()


@dataclass
class Switch:
    started: float  # time.monotonic() when the helm command began
    ready: float  # seconds until the new operator pod was ready
    reconciled: float  # seconds until it had reconciled a tenant's change made as the command began


def _switch(live: Live, what: str, helm_command: Any, image: Image) -> Switch:
    """Run `helm_command`, roll the operator to the new template from `image`; the tenant changes its
    Whitelist meanwhile."""
    cluster = live.cluster
    started = time.monotonic()
    live.kubelet.unroute_webhooks()  # Helm's apply finds the webhook configuration as it wrote it
    helm_command()
    operators = live.kubelet.roll_out(live.namespace, OPERATOR, image)
    accounts = [f"iam:domain::{live.consumer}", f"iam:domain::{what}-{int(started)}"]
    patch = json.dumps({"spec": {"accounts": accounts}})

    def reconciled() -> bool:
        # Patched until it passes: while no operator serves, the webhook refuses the patch too.
        done = cluster.kubectl_run(
            "patch", "whitelist", "db", "-n", live.provider, "--type=merge", "-p", patch, check=False
        )
        found = get(cluster, "whitelists", live.provider, "db")
        return (
            done.returncode == 0
            and (found.get("status") or {}).get("observedGeneration") == found["metadata"]["generation"]
        )

    wait_for(
        f"the {what} operator to be ready",
        lambda: all(o.ready for o in operators),
        timeout=120,
        logs=live.logs,
    )
    ready = time.monotonic() - started
    wait_for(f"the {what} operator to reconcile", reconciled, timeout=60, logs=live.logs)
    return Switch(started, ready, time.monotonic() - started)


def test_upgrade_from_the_previous_release_and_rollback_drop_no_traffic_R30(live: Live) -> None:
    """Deliverable 3, with traffic: helm upgrade previous -> this tree, then helm rollback."""
    endpoint_before = get(live.cluster, "endpoints.vpcep.io", live.consumer, "db")
    phases = PhaseWatch(live.cluster, live.provider, live.consumer)
    writes = SteadyWrites(live.cluster, live.provider, live.consumer).start()
    live.traffic.start()
    time.sleep(2)

    def upgrade() -> None:
        with helm.Chart.load(CHART) as chart:
            # The chart's defaults: two replicas rolled one at a time, leader election (R50)
            result = live.config.upgrade(chart, RELEASE, {}, namespace=live.namespace, timeout=120)
        assert result["revision"] == 2 and result["status"] == "deployed"

    def rollback() -> None:
        live.config.rollback(RELEASE, version=1, timeout=120)

    up = _switch(live, "new", upgrade, Image())
    time.sleep(3)
    endpoint_upgraded = get(live.cluster, "endpoints.vpcep.io", live.consumer, "db")
    back = _switch(live, "previous", rollback, live.previous.image)
    time.sleep(3)
    live.traffic.stop()
    writes.stop()
    seen = phases.stop()
    endpoint_after = get(live.cluster, "endpoints.vpcep.io", live.consumer, "db")

    refused = writes.refused()
    print(
        f"\nupgrade {live.previous.version} -> this tree: operator ready {up.ready:.1f} s, reconciled "
        f"{up.reconciled:.1f} s after helm upgrade began; rollback: ready {back.ready:.1f} s, reconciled "
        f"{back.reconciled:.1f} s\ntraffic: {live.traffic.summary()}\n"
        f"phases seen (seconds from the upgrade): "
        f"{ {k: [(round(t - up.started, 1), state) for t, state in v] for k, v in seen.items()} }\n"
        f"writes: {len(writes.outcomes)}, refused {sum(refused.values())} {dict(refused)}"
    )
    assert live.traffic.failed == [], live.traffic.summary()
    assert live.traffic.broken == [] and live.traffic.pings > 0, live.traffic.summary()
    for key, settled in (("endpoint", "Accepted"), ("service", "Available")):
        assert PhaseWatch.phases(seen[key]) == [settled], (key, seen[key], up, back)
    assert allocation(endpoint_upgraded) == allocation(endpoint_after) == allocation(endpoint_before)
    assert {cause: n for cause, n in refused.items() if cause != "stand-in routing window"} == {}, refused


VPCEP_KINDS = ("endpointservices", "endpoints.vpcep.io", "whitelists", "endpointconnections")
CRDS = {f"{kind}.vpcep.io" for kind in ("endpointservices", "endpoints", "whitelists", "endpointconnections")}


def _tenant_objects(cluster: Any, operator_namespace: str) -> dict[str, dict[str, Any]]:
    """Every vpcep.io object of the tenants (not the operator's cloud services), by kind/namespace/name,
    with its uid, spec and status."""
    found = {}
    for kind in VPCEP_KINDS:
        for obj in get(cluster, kind, None).get("items", []):
            meta = obj["metadata"]
            if meta["namespace"] != operator_namespace:
                found[f"{obj['kind']}/{meta['namespace']}/{meta['name']}"] = {
                    "uid": meta["uid"],
                    "spec": obj.get("spec"),
                    "status": obj.get("status"),
                }
    return found


def test_uninstall_keeps_tenants_whole_and_a_reinstall_brings_bytes_back_with_no_tenant_action(
    live: Live, loopback_certificate: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Deliverable 4. `helm uninstall` (of the revision running, the previous release's after the rollback)
    removes the operator's own objects and the gateway Deployment (its pods end: here the gateway process
    stops and its pod goes), and keeps the CRDs and every tenant's EndpointServices, Endpoints, Whitelists
    and EndpointConnections as they were, status included. `helm install` of this tree adopts them: the
    consumer's same node IP and client port reach the backend again through the same gateway port and
    marker id, still accepted, with no tenant action."""
    cluster = live.cluster
    wait_for(  # the service counts its accepted endpoint a moment after it is accepted
        "the service to count its accepted endpoint",
        lambda: (
            (get(cluster, "endpointservices", live.provider, "db").get("status") or {}).get("connectionCount")
            == 1
        ),
        timeout=30,
        logs=live.logs,
    )
    tenants_before = _tenant_objects(cluster, live.namespace)
    assert any(key.startswith("EndpointConnection/") for key in tenants_before), tenants_before
    before = allocation(get(cluster, "endpoints.vpcep.io", live.consumer, "db"))

    live.config.uninstall(RELEASE, timeout=120)
    live.kubelet.stop()  # the Deployments are gone: kubelet ends their pods
    live.scene.stop_gateways()
    for gateway in live.scene.gateways:
        cluster.kubectl_run("delete", "pod", gateway.name, "-n", live.namespace, "--wait=false", check=False)
        cluster.kubectl_run("delete", "configmap", f"vpcep-gateway-{gateway.name}", "-n", live.namespace)
    assert not live.traffic.passes(), "nothing serves once the release is uninstalled"
    # The operator's own objects go ...
    assert get(cluster, "deployment", live.namespace, OPERATOR) == {}
    assert get(cluster, "clusterrole", None, OPERATOR) == {}
    webhooks = [w["metadata"]["name"] for w in get(cluster, "validatingwebhookconfigurations", None)["items"]]
    assert not [name for name in webhooks if "vpcep" in name], webhooks
    # ... the CRDs and every tenant object stay as they were, status included.
    assert {crd["metadata"]["name"] for crd in get(cluster, "crd", None)["items"]} >= CRDS
    assert _tenant_objects(cluster, live.namespace) == tenants_before

    again = install_and_run(
        cluster,
        live.config,
        RELEASE,
        live.namespace,
        listen_ports(),
        tmp_path_factory.mktemp("reinstalled"),
        loopback_certificate,
    )
    try:
        live.scene.start_gateway(RELEASE, live.namespace)
        started = time.monotonic()
        node_ip = live.scene.route(live.consumer, "db")
        wait_for("bytes through the gateway again", live.traffic.passes, timeout=60, logs=again.kubelet.logs)
        print(f"\nreinstall: bytes flow {time.monotonic() - started:.1f} s after the new gateway started")
        endpoint = get(cluster, "endpoints.vpcep.io", live.consumer, "db")
        assert node_ip == live.traffic.node_ip
        assert allocation(endpoint) == before, (before, allocation(endpoint))
        assert endpoint["status"]["phase"] == "Accepted"
        decisions = [
            (c.get("status") or {}).get("decision")
            for c in get(cluster, "endpointconnections", live.provider)["items"]
        ]
        assert decisions == ["Accept"]
    finally:
        again.kubelet.stop()

"""R47, R49: the gateway pod as the chart renders it -- HAProxy and the agent in separate containers, an API
token in the agent's container only, HAProxy's session budget taken from its own container's memory limit. The
two containers running for real: tests/dataplane/test_gateway_split.py."""

from __future__ import annotations

from typing import Any

from chart_rendering import Rendered

from vpcep.gateway.agent import parse_args
from vpcep.gateway.haproxy_container import parse_args as haproxy_container_args

TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def _pod(rendered: Rendered) -> dict[str, Any]:
    pod: dict[str, Any] = rendered.one("Deployment", "vpcep-gateway")["spec"]["template"]["spec"]
    return pod


def test_only_the_agent_container_holds_an_api_token_R47(defaults: Rendered) -> None:
    pod = _pod(defaults)
    containers = {c["name"]: c for c in pod["containers"]}
    assert set(containers) == {"haproxy", "agent"}
    assert pod["automountServiceAccountToken"] is False, "an automounted token would reach every container"
    token_volumes = {
        volume["name"]
        for volume in pod["volumes"]
        if any("serviceAccountToken" in source for source in volume.get("projected", {}).get("sources", []))
    }
    assert len(token_volumes) == 1
    mounts = {name: {m["name"]: m for m in c["volumeMounts"]} for name, c in containers.items()}
    (token_volume,) = token_volumes
    assert mounts["agent"][token_volume]["mountPath"] == TOKEN_DIR
    assert mounts["agent"][token_volume]["readOnly"] is True
    assert not set(mounts["haproxy"]) & token_volumes
    assert not [m for m in mounts["haproxy"].values() if m["mountPath"].startswith("/var/run/secrets")]
    assert "env" not in containers["haproxy"] and "envFrom" not in containers["haproxy"]
    # The two meet only on the shared emptyDir, at the same path (the config path HAProxy re-reads on reload).
    shared = set(mounts["haproxy"]) & set(mounts["agent"])
    assert shared == {"state"}
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == "state")
    assert mounts["haproxy"]["state"]["mountPath"] == mounts["agent"]["state"]["mountPath"]


def test_the_agent_drives_an_external_haproxy_in_the_shared_directory_R47(defaults: Rendered) -> None:
    containers = {c["name"]: c for c in _pod(defaults)["containers"]}
    agent_args = containers["agent"]["args"]
    assert agent_args[0] == "gateway"
    agent = parse_args(agent_args[1:])
    assert agent.external_haproxy
    haproxy_args = containers["haproxy"]["args"]
    assert haproxy_args[:3] == ["python3", "-m", "vpcep.gateway.haproxy_container"]
    haproxy = haproxy_container_args(haproxy_args[3:])
    shared = next(m["mountPath"] for m in containers["agent"]["volumeMounts"] if m["name"] == "state")
    assert str(haproxy.runtime_dir) == agent.runtime_dir == shared
    pre_stop = containers["haproxy"]["lifecycle"]["preStop"]["exec"]["command"]
    assert haproxy_container_args(pre_stop[3:]).soft_stop
    # The probes ask HAProxy itself, on the health port the agent renders into its config.
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert containers["haproxy"][probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    # HAProxy waits for the agent's first configuration: the start-up probe, not liveness, covers that wait.
    startup = containers["haproxy"]["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    health = next(p for p in containers["haproxy"]["ports"] if p["name"] == "health")
    assert health["containerPort"] == agent.health_port


def test_haproxys_session_budget_follows_its_own_containers_memory_limit_R49(defaults: Rendered) -> None:
    containers = {c["name"]: c for c in _pod(defaults)["containers"]}
    env = {item["name"]: item for item in containers["agent"]["env"]}
    source = env["GATEWAY_MEMORY_LIMIT_BYTES"]["valueFrom"]["resourceFieldRef"]
    assert source == {"containerName": "haproxy", "resource": "limits.memory", "divisor": "1"}  # bytes
    assert containers["haproxy"]["resources"]["limits"]["memory"] == "1Gi"


def test_the_gateway_admission_policy_is_on_by_default_and_can_be_turned_off_for_old_clusters_R47(
    defaults: Rendered,
) -> None:
    from chart_rendering import render

    name = "vpcep-gateway-writes-vpcep-system"
    assert name in defaults.names("ValidatingAdmissionPolicy")
    assert defaults.one("ValidatingAdmissionPolicyBinding", name)["spec"]["validationActions"] == ["Deny"]
    off = render("rbac.gatewayAdmissionPolicy=false")
    assert name not in off.names("ValidatingAdmissionPolicy")
    assert name not in off.names("ValidatingAdmissionPolicyBinding")

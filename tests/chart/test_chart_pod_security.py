"""Both Deployments meet the Pod Security Standard "restricted" profile (issue 18, R36).

The test control plane has no PodSecurity admission plugin, so the rendered pod specs are checked here against
the profile's rules as https://kubernetes.io/docs/concepts/security/pod-security-standards/ states them (the
baseline rules, which restricted includes, then restricted's own), for the default values and the variations
that change the pods. Each rule is one check; a pod that breaks one fails naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from chart_rendering import render

# restricted: only these volume types.
ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
# baseline: capabilities that may be added; restricted allows only NET_BIND_SERVICE.
RESTRICTED_ADDABLE = {"NET_BIND_SERVICE"}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
VARIATIONS = {
    "defaults": [],
    "webhook-off": ["webhook.enabled=false"],
    "debug-hard-spread": ["operator.logLevel=debug", "gateway.antiAffinity=hard", "gateway.replicas=3"],
}

Pod = dict[str, Any]
Container = dict[str, Any]


def _containers(pod: Pod) -> Iterator[Container]:
    yield from pod.get("initContainers", [])
    yield from pod["containers"]
    yield from pod.get("ephemeralContainers", [])


def _effective(pod: Pod, container: Container, field: str) -> Any:
    """A container's securityContext field, else the pod's (how the kubelet and the profile read them)."""
    own = (container.get("securityContext") or {}).get(field)
    return own if own is not None else (pod.get("securityContext") or {}).get(field)


def host_namespaces(pod: Pod) -> list[str]:
    return [f for f in ("hostNetwork", "hostPID", "hostIPC") if pod.get(f)]


def privileged(pod: Pod) -> list[str]:
    return [c["name"] for c in _containers(pod) if (c.get("securityContext") or {}).get("privileged")]


def host_path_volumes(pod: Pod) -> list[str]:
    return [v["name"] for v in pod.get("volumes", []) if "hostPath" in v]


def host_ports(pod: Pod) -> list[str]:
    return [c["name"] for c in _containers(pod) for p in c.get("ports", []) if p.get("hostPort")]


def proc_mount(pod: Pod) -> list[str]:
    return [
        c["name"]
        for c in _containers(pod)
        if (c.get("securityContext") or {}).get("procMount", "Default") != "Default"
    ]


def unsafe_sysctls(pod: Pod) -> list[str]:
    return [
        s["name"]
        for s in (pod.get("securityContext") or {}).get("sysctls", [])
        if s["name"] not in SAFE_SYSCTLS
    ]


def volume_types(pod: Pod) -> list[str]:
    return [v["name"] for v in pod.get("volumes", []) if not set(v) - {"name"} <= ALLOWED_VOLUMES]


def privilege_escalation(pod: Pod) -> list[str]:
    return [
        c["name"]
        for c in _containers(pod)
        if (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False
    ]


def run_as_non_root(pod: Pod) -> list[str]:
    return [c["name"] for c in _containers(pod) if _effective(pod, c, "runAsNonRoot") is not True]


def run_as_user_root(pod: Pod) -> list[str]:
    return [c["name"] for c in _containers(pod) if _effective(pod, c, "runAsUser") == 0]


def seccomp(pod: Pod) -> list[str]:
    return [
        c["name"]
        for c in _containers(pod)
        if (_effective(pod, c, "seccompProfile") or {}).get("type") not in {"RuntimeDefault", "Localhost"}
    ]


def capabilities(pod: Pod) -> list[str]:
    wrong = []
    for c in _containers(pod):
        caps = (c.get("securityContext") or {}).get("capabilities") or {}
        if "ALL" not in caps.get("drop", []) or set(caps.get("add", [])) - RESTRICTED_ADDABLE:
            wrong.append(c["name"])
    return wrong


RULES: dict[str, Callable[[Pod], list[str]]] = {
    "baseline: host namespaces": host_namespaces,
    "baseline: privileged containers": privileged,
    "baseline: hostPath volumes": host_path_volumes,
    "baseline: host ports": host_ports,
    "baseline: /proc mount type": proc_mount,
    "baseline: sysctls": unsafe_sysctls,
    "restricted: volume types": volume_types,
    "restricted: privilege escalation": privilege_escalation,
    "restricted: running as non-root": run_as_non_root,
    "restricted: running as non-root user": run_as_user_root,
    "restricted: seccomp": seccomp,
    "restricted: capabilities": capabilities,
}


@pytest.mark.parametrize("variation", sorted(VARIATIONS))
@pytest.mark.parametrize("rule", sorted(RULES))
def test_every_pod_meets_the_restricted_profile(variation: str, rule: str) -> None:
    deployments = render(*VARIATIONS[variation]).all("Deployment")
    assert {d["metadata"]["name"] for d in deployments} == {"vpcep-operator", "vpcep-gateway"}
    for deployment in deployments:
        offenders = RULES[rule](deployment["spec"]["template"]["spec"])
        assert not offenders, f"{deployment['metadata']['name']} breaks {rule!r}: {offenders}"


def test_the_check_catches_a_pod_that_breaks_the_profile() -> None:
    """The rules above are not vacuous: a root, privileged, hostPath pod fails most of them."""
    bad: Pod = {
        "hostNetwork": True,
        "securityContext": {"runAsUser": 0},
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
        "containers": [
            {"name": "c", "securityContext": {"privileged": True, "capabilities": {"add": ["NET_ADMIN"]}}}
        ],
    }
    broken = {rule for rule, check in RULES.items() if check(bad)}
    assert broken == set(RULES) - {"baseline: host ports", "baseline: /proc mount type", "baseline: sysctls"}

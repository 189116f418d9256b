"""R52: the gateway pod's drain as the chart sets it up -- the agent, the HAProxy container's preStop hook and
the pod's grace period agree, and the drain time is a chart value (vpcep/gateway/drain.py)."""

from __future__ import annotations

from typing import Any

import pytest
from chart_rendering import RenderError, render

from vpcep.gateway import haproxy_container
from vpcep.gateway.agent import parse_args


def gateway_pod(*assignments: str) -> dict[str, Any]:
    return dict(render(*assignments).one("Deployment", "vpcep-gateway")["spec"]["template"]["spec"])


def drain_of(pod: dict[str, Any]) -> tuple[float, float, float, float, int]:
    """(agent leave, agent sessions, hook leave, hook wait, grace period), each as its program parses it."""
    containers = {c["name"]: c for c in pod["containers"]}
    agent = parse_args(containers["agent"]["args"][1:])
    hook = containers["haproxy"]["lifecycle"]["preStop"]["exec"]["command"]
    assert hook[:3] == ["python3", "-m", "vpcep.gateway.haproxy_container"]
    stop = haproxy_container.parse_args(hook[3:])
    assert stop.soft_stop
    grace = int(pod["terminationGracePeriodSeconds"])
    return agent.drain_leave_seconds, agent.drain_seconds, stop.leave_seconds, stop.timeout, grace


@pytest.mark.parametrize(
    ("assignments", "leave", "sessions"),
    [
        ((), 10, 45),
        (("gateway.drain.leaveSeconds=3", "gateway.drain.sessionSeconds=600"), 3, 600),
        (("gateway.drain.leaveSeconds=0", "gateway.drain.sessionSeconds=0"), 0, 0),
    ],
)
def test_agent_hook_and_grace_period_agree_on_the_drain_R52(
    assignments: tuple[str, ...], leave: int, sessions: int
) -> None:
    """The kubelet's SIGKILL (at the end of the grace period) never comes before the drain is over: the
    agent and the hook wait the same leave delay and drain period, and the grace period covers both."""
    agent_leave, agent_sessions, hook_leave, hook_wait, grace = drain_of(gateway_pod(*assignments))
    assert (agent_leave, agent_sessions) == (leave, sessions)
    assert (hook_leave, hook_wait) == (leave, sessions)
    assert grace >= leave + sessions + 5


@pytest.mark.parametrize("value", ["-1", "soon", "2.5", "7200"])
@pytest.mark.parametrize("key", ["leaveSeconds", "sessionSeconds"])
def test_a_bad_drain_time_is_refused_naming_the_key_R52(key: str, value: str) -> None:
    with pytest.raises(RenderError) as refused:
        render(f"gateway.drain.{key}={value}")
    assert f"/gateway/drain/{key}" in str(refused.value)

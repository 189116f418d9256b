"""gateway.busyPolling reaches the gateway agent, off by default (bench/README.md measures it, issue 15)."""

from __future__ import annotations

import pytest
from chart_rendering import RenderError, render

from vpcep.gateway.agent import parse_args, settings_from


def agent_busy_polling(*assignments: str) -> bool:
    """Whether HAProxy busy-polls: the rendered container args, parsed by the agent itself."""
    deployment = render(*assignments).one("Deployment", "vpcep-gateway")
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "agent"]
    assert container["args"][0] == "gateway"
    return settings_from(parse_args(container["args"][1:])).busy_polling


def test_busy_polling_is_off_by_default_it_would_keep_shared_cpus_busy() -> None:
    assert not agent_busy_polling()


def test_busy_polling_can_be_turned_on_for_gateways_with_dedicated_cpus() -> None:
    assert agent_busy_polling("gateway.busyPolling=true")


def test_a_non_boolean_is_refused_naming_the_key() -> None:
    with pytest.raises(RenderError) as refused:
        render("gateway.busyPolling=sometimes")
    assert "/gateway/busyPolling" in str(refused.value)

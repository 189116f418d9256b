"""R43: the drain period flows from the chart value to the gateway agent, and bad values are refused."""

from __future__ import annotations

import pytest
from chart_rendering import RenderError, render

from vpcep.gateway.agent import parse_args


def agent_drain_seconds(*assignments: str) -> float:
    """The drain the gateway agent runs with: the rendered container args, parsed by the agent itself."""
    deployment = render(*assignments).one("Deployment", "vpcep-gateway")
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "agent"]
    assert container["args"][0] == "gateway"
    return float(parse_args(container["args"][1:]).revocation_drain_seconds)


def test_the_default_drain_is_five_seconds_R43() -> None:
    assert agent_drain_seconds() == 5.0


@pytest.mark.parametrize(("value", "expected"), [("0", 0.0), ("1", 1.0), ("600", 600.0)])
def test_the_drain_value_reaches_the_agent_R43(value: str, expected: float) -> None:
    assert agent_drain_seconds(f"gateway.revocationDrainSeconds={value}") == expected


# Whole seconds: `--set` hands "2.5" to the schema as a string, so a fraction could never be set that way.
@pytest.mark.parametrize("value", ["-1", "soon", "2.5", "7200"])
def test_a_bad_drain_is_refused_naming_the_key_R43(value: str) -> None:
    with pytest.raises(RenderError) as refused:
        render(f"gateway.revocationDrainSeconds={value}")
    assert "/gateway/revocationDrainSeconds" in str(refused.value)  # Helm names the key as a JSON pointer

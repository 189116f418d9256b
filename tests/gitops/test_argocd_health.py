"""The Argo CD health check of the four kinds (issue 12): Accepted/Available/Active -> Healthy,
Creating/PendingAcceptance -> Progressing, Failed/Rejected -> Degraded, with the status message.
Objects produced by the real operator go through it in tests/integration/test_observability.py."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from gitops.argocd_health import KINDS, PATCH, SCRIPT, health


def obj(kind: str, status: dict[str, Any] | None, generation: int = 1) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "vpcep.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "team-a", "generation": generation},
        "spec": {},
    }
    if status is not None:
        body["status"] = status
    return body


CASES = [
    ("EndpointService", {"phase": "Available", "observedGeneration": 1}, "Healthy", "Available"),
    ("EndpointService", {"phase": "Creating", "observedGeneration": 1}, "Progressing", "Creating"),
    (
        "EndpointService",
        {"phase": "Failed", "reason": "BackendNotFound", "message": "Service db not found in team-a"},
        "Degraded",
        "Failed: Service db not found in team-a",
    ),
    ("Endpoint", {"phase": "Accepted", "observedGeneration": 1}, "Healthy", "Accepted"),
    (
        "Endpoint",
        {"phase": "PendingAcceptance", "message": "waiting for the provider to accept"},
        "Progressing",
        "PendingAcceptance: waiting for the provider to accept",
    ),
    ("Endpoint", {"phase": "Rejected", "reason": "Rejected"}, "Degraded", "Rejected: Rejected"),
    (
        "Endpoint",
        {"phase": "Failed", "message": "not found: check the name"},
        "Degraded",
        "Failed: not found: check the name",
    ),
    ("Endpoint", {"phase": "Deleting"}, "Progressing", "Deleting"),
    ("Whitelist", {"phase": "Active"}, "Healthy", "Active"),
    (
        "Whitelist",
        {"phase": "Failed", "message": "no EndpointService pg"},
        "Degraded",
        "Failed: no EndpointService pg",
    ),
    ("EndpointConnection", {"state": "PendingAcceptance"}, "Progressing", "PendingAcceptance"),
    ("EndpointConnection", {"state": "Accepted"}, "Healthy", "Accepted"),
    ("EndpointConnection", {"state": "Rejected"}, "Degraded", "Rejected"),
]


@pytest.mark.parametrize(("kind", "status", "verdict", "message"), CASES)
def test_phase_gives_the_argo_verdict_with_the_status_message(
    kind: str, status: dict[str, Any], verdict: str, message: str
) -> None:
    assert health(obj(kind, status)) == (verdict, message)


def test_no_status_yet_is_progressing_not_healthy() -> None:
    assert health(obj("Endpoint", None))[0] == "Progressing"
    assert health(obj("Endpoint", {"conditions": []}))[0] == "Progressing"


def test_a_status_of_an_older_generation_is_progressing_whatever_its_phase() -> None:
    status, message = health(
        obj("EndpointService", {"phase": "Available", "observedGeneration": 1}, generation=2)
    )
    assert status == "Progressing" and "generation 2" in message


def test_an_unknown_phase_is_unknown_not_healthy() -> None:
    assert health(obj("Endpoint", {"phase": "Exploded"}))[0] == "Unknown"


def test_the_argocd_cm_patch_carries_the_script_for_each_kind() -> None:
    data = yaml.safe_load(PATCH.read_text())["data"]
    assert set(data) == {f"resource.customizations.health.vpcep.io_{kind}" for kind in KINDS}
    for key, script in data.items():
        assert script == SCRIPT.read_text(), f"{key} differs from {SCRIPT.name}: regenerate the patch"
        assert health(obj("Endpoint", {"phase": "Accepted"}), script)[0] == "Healthy"

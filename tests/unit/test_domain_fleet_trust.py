"""R47: the operator believes a gateway status only when its object, its pod and its address agree.

A table of hostile and honest cases; each names what a compromised gateway or a stray writer tries."""

from __future__ import annotations

import pytest

from vpcep.domain.fleet_trust import (
    DistrustReason,
    GatewayPod,
    StatusClaim,
    judge_status,
    judge_statuses,
)

DEPLOYMENT = "vpcep-gateway"
HASH = "7d9f8c6b5"


def pod(name: str = "vpcep-gateway-7d9f8c6b5-abcde", **changes: object) -> GatewayPod:
    fields: dict[str, object] = {
        "name": name,
        "ips": ("10.244.1.7",),
        "phase": "Running",
        "ready": True,
        "controller_kind": "ReplicaSet",
        "controller_name": f"{DEPLOYMENT}-{HASH}",
        "pod_template_hash": HASH,
    }
    fields.update(changes)
    return GatewayPod.model_validate(fields)


GOOD = pod()
OTHER = pod("vpcep-gateway-7d9f8c6b5-fghij", ips=("10.244.2.9",))


def claim(
    gateway: str = GOOD.name, address: str = "10.244.1.7", object_name: str | None = None
) -> StatusClaim:
    return StatusClaim(
        object_name=object_name or f"vpcep-gateway-{gateway}", gateway=gateway, address=address
    )


CASES: list[tuple[str, StatusClaim, list[GatewayPod], DistrustReason | None]] = [
    ("R47-honest-gateway-is-trusted", claim(), [GOOD, OTHER], None),
    (
        "R47-dual-stack-second-ip-is-trusted",
        claim(address="fd00::7"),
        [pod(ips=("10.244.1.7", "fd00::7"))],
        None,
    ),
    (
        "R47-gateway-points-traffic-at-another-address",
        claim(address="10.0.0.1"),
        [GOOD],
        DistrustReason.ADDRESS_MISMATCH,
    ),
    (
        "R47-gateway-reports-its-neighbours-ip",
        claim(address=OTHER.ips[0]),
        [GOOD, OTHER],
        DistrustReason.ADDRESS_MISMATCH,
    ),
    (
        "R47-status-object-speaks-for-another-pod",
        claim(gateway=OTHER.name, address=OTHER.ips[0], object_name=f"vpcep-gateway-{GOOD.name}"),
        [GOOD, OTHER],
        DistrustReason.NAME_MISMATCH,
    ),
    ("R47-status-of-a-pod-that-does-not-exist", claim(gateway="ghost"), [GOOD], DistrustReason.NO_SUCH_POD),
    (
        "R47-a-bare-pod-with-the-gateway-labels",
        claim(),
        [pod(controller_kind="", controller_name="")],
        DistrustReason.NOT_OWNED,
    ),
    (
        "R47-a-pod-of-another-replicaset",
        claim(),
        [pod(controller_name="impostor-7d9f8c6b5")],
        DistrustReason.NOT_OWNED,
    ),
    (
        "R47-a-replicaset-named-like-the-deployment-but-hash-mismatch",
        claim(),
        [pod(pod_template_hash="other")],
        DistrustReason.NOT_OWNED,
    ),
    ("R47-pending-pod", claim(), [pod(phase="Pending")], DistrustReason.NOT_RUNNING),
    (
        "R47-finished-pod-whose-ip-may-be-reused",
        claim(),
        [pod(phase="Succeeded")],
        DistrustReason.NOT_RUNNING,
    ),
    ("R47-running-but-not-ready", claim(), [pod(ready=False)], DistrustReason.NOT_READY),
    (
        "R47-terminating-pod-of-another-address",
        claim(address="10.0.0.9"),
        [pod(terminating=True)],
        DistrustReason.ADDRESS_MISMATCH,
    ),
    ("R47-pod-without-ip-yet", claim(), [pod(ips=())], DistrustReason.ADDRESS_MISMATCH),
]


@pytest.mark.parametrize(("case", "status", "pods", "expected"), CASES, ids=[c[0] for c in CASES])
def test_judge_status(
    case: str, status: StatusClaim, pods: list[GatewayPod], expected: DistrustReason | None
) -> None:
    verdict = judge_status(status, {p.name: p for p in pods}, DEPLOYMENT)
    assert verdict.trusted is (expected is None), verdict
    assert verdict.reason is expected
    if expected is not None:
        assert (
            status.object_name in verdict.message
            or GOOD.name in verdict.message
            or "ghost" in verdict.message
        )


@pytest.mark.parametrize("ready", [True, False])
def test_a_terminating_gateway_pod_is_believed_as_draining_ready_or_not_R52(ready: bool) -> None:
    """R52: a terminating gateway leaves the EndpointSlices first and drains; its readiness fails once HAProxy
    stops listening, but it still holds sessions (and its share of R21's cap)."""
    verdict = judge_status(claim(), {GOOD.name: pod(terminating=True, ready=ready)}, DEPLOYMENT)
    assert verdict.trusted and verdict.draining
    assert not judge_status(claim(), {GOOD.name: GOOD}, DEPLOYMENT).draining


def test_every_status_gets_a_verdict_in_name_order_and_one_bad_status_spoils_no_other_R47() -> None:
    forged = claim(gateway=OTHER.name, address="10.0.0.1")
    verdicts = judge_statuses([forged, claim()], [GOOD, OTHER], DEPLOYMENT)
    assert [v.object_name for v in verdicts] == sorted([forged.object_name, claim().object_name])
    by_name = {v.object_name: v for v in verdicts}
    assert by_name[claim().object_name].trusted
    assert by_name[forged.object_name].reason is DistrustReason.ADDRESS_MISMATCH
    assert "10.0.0.1" in by_name[forged.object_name].message

"""Which gateway statuses the operator may believe (R47, R52).

A gateway status names the address consumers' node-IP traffic is sent to (the operator copies it into every
consumer EndpointSlice). Whoever can write a status object could aim every endpoint at an address of their
choosing, so a status counts only when the object, the pod and the address agree:
- the status object is the one its gateway alone may write: ``vpcep-gateway-<pod name>`` (the chart's
  admission policy refuses any other name to the gateway's token, docs/security.md);
- it is reported by a pod that exists, is ``Running`` and Ready -- or is terminating: then it is believed
  as *draining* (R52: it leaves the EndpointSlices at once, Ready or not, and keeps its share of R21's cap
  while it serves the sessions it holds);
- that pod belongs to the gateway Deployment: its controller is the Deployment's ReplicaSet
  ``<deployment>-<pod-template-hash>`` (only the Deployment controller, or someone with ReplicaSet rights in
  the operator namespace, makes such a pod);
- the reported address is the pod's IP (a compromised gateway cannot point traffic at another address).

Pure: projections of the status ConfigMaps and of the gateway pods in, one verdict per status out.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from pydantic import Field

from vpcep.api.routing import GATEWAY_STATUS_NAME_PREFIX
from vpcep.domain.facts import Frozen


class DistrustReason(enum.StrEnum):
    NAME_MISMATCH = "StatusNameMismatch"
    NO_SUCH_POD = "GatewayPodNotFound"
    NOT_OWNED = "NotAGatewayPod"
    NOT_RUNNING = "GatewayPodNotRunning"
    NOT_READY = "GatewayPodNotReady"
    ADDRESS_MISMATCH = "AddressNotThePodIP"


class StatusClaim(Frozen):
    """A gateway status as read from its ConfigMap: the object's name and what it claims."""

    object_name: str = Field(description="metadata.name of the status ConfigMap.")
    gateway: str = Field(description="status.gateway: the pod name the agent reports as its own.")
    address: str = Field(description="status.address: where consumers' traffic would be sent.")


class GatewayPod(Frozen):
    """The few fields of a pod in the operator namespace carrying the gateway labels."""

    name: str
    ips: tuple[str, ...] = Field(default=(), description="status.podIPs (status.podIP first).")
    phase: str = Field(default="", description="status.phase.")
    ready: bool = Field(default=False, description="condition Ready is True.")
    terminating: bool = Field(default=False, description="metadata.deletionTimestamp is set.")
    controller_kind: str = Field(default="", description="kind of the ownerReference with controller: true.")
    controller_name: str = Field(default="", description="name of that ownerReference.")
    pod_template_hash: str = Field(default="", description="label pod-template-hash.")


class TrustVerdict(Frozen):
    object_name: str
    trusted: bool
    draining: bool = Field(default=False, description="Trusted, and its pod is terminating (R52).")
    reason: DistrustReason | None = None
    message: str = ""


def status_object_name(pod_name: str) -> str:
    return f"{GATEWAY_STATUS_NAME_PREFIX}{pod_name}"


def judge_status(claim: StatusClaim, pods: Mapping[str, GatewayPod], deployment: str) -> TrustVerdict:
    """Trusted, or the first reason not to, with a message an administrator can act on (R47)."""

    def distrust(reason: DistrustReason, message: str) -> TrustVerdict:
        return TrustVerdict(object_name=claim.object_name, trusted=False, reason=reason, message=message)

    if claim.object_name != status_object_name(claim.gateway):
        return distrust(
            DistrustReason.NAME_MISMATCH,
            f"status {claim.object_name} claims gateway {claim.gateway!r}; only "
            f"{status_object_name(claim.gateway)} may speak for that pod",
        )
    pod = pods.get(claim.gateway)
    if pod is None:
        return distrust(
            DistrustReason.NO_SUCH_POD, f"no gateway pod {claim.gateway} in the operator namespace"
        )
    if (
        pod.controller_kind != "ReplicaSet"
        or not pod.pod_template_hash
        or (pod.controller_name != f"{deployment}-{pod.pod_template_hash}")
    ):
        return distrust(
            DistrustReason.NOT_OWNED,
            f"pod {pod.name} is not a pod of Deployment {deployment} "
            f"(controller {pod.controller_kind or 'none'} {pod.controller_name or ''})".rstrip(),
        )
    if pod.phase != "Running":
        return distrust(DistrustReason.NOT_RUNNING, f"gateway pod {pod.name} is {pod.phase or 'not running'}")
    if claim.address not in pod.ips:
        return distrust(
            DistrustReason.ADDRESS_MISMATCH,
            f"status {claim.object_name} reports address {claim.address!r}, but pod {pod.name} has "
            f"{', '.join(pod.ips) or 'no IP'}",
        )
    if pod.terminating:
        # Its readiness fails once HAProxy stops listening; it still holds sessions (R52).
        return TrustVerdict(object_name=claim.object_name, trusted=True, draining=True)
    if not pod.ready:
        return distrust(DistrustReason.NOT_READY, f"gateway pod {pod.name} is not Ready")
    return TrustVerdict(object_name=claim.object_name, trusted=True)


def judge_statuses(
    claims: Iterable[StatusClaim], pods: Iterable[GatewayPod], deployment: str
) -> tuple[TrustVerdict, ...]:
    """One verdict per status claim, in object-name order."""
    by_name = {pod.name: pod for pod in pods}
    return tuple(
        judge_status(claim, by_name, deployment) for claim in sorted(claims, key=lambda c: c.object_name)
    )

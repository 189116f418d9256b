"""The gateway ingress controller: one NetworkPolicy per consumer namespace (R42), a keyed, level-triggered
reconcile.

The key is the consumer namespace. Each run recomputes the policy from every endpoint of that namespace
(the gateway ports those that are Creating or Accepted hold), applies it when the stored spec differs,
deletes it when no port is left, and wakes the namespace's endpoints that wait for it (no endpoint is Accepted
before its ports are admitted; vpcep.domain.endpoint). Writers enqueue the key: an endpoint whose phase or
ports changed, an endpoint going away, and the watch on the policies (a deleted or edited policy is
restored): declared once, in CONTROLLER at the end of this module.
"""

from __future__ import annotations

import functools

from vpcep.builders.gateway_ingress import build_gateway_ingress_policy, gateway_ingress_policy_name
from vpcep.controllers.context import Operator
from vpcep.controllers.keys import EndpointKey, GatewayIngressKey
from vpcep.controllers.sources import ENDPOINTS, OWNED_POLICIES
from vpcep.k8s.resources import NETWORK_POLICY
from vpcep.runtime.controller import Controller, Watches
from vpcep.runtime.source import Event
from vpcep.state.gateway_ingress_state import spec_hash


def established_gateway_ports(rt: Operator, namespace: str) -> frozenset[int]:
    """The gateway ports the namespace's endpoints hold, from the allocation ledger: an endpoint holds ports
    while its decision keeps a data path (Creating or Accepted) and none once Rejected, Failed, pending or
    released; one being deleted counts for nothing already. The ledger is updated with each decision, before
    its status write, so a Reject leaves the policy as early as possible -- and reading it costs no status
    parse per endpoint (about 0.2 ms each: seconds at 10,000 endpoints on a restart)."""
    ports: set[int] = set()
    for name in rt.observed.endpoint_names_in(namespace):
        record = rt.observed.endpoint(namespace, name)
        if record is not None and not record.meta.deleting:
            ports.update(rt.allocations.ports_of(record.meta.uid))
    return frozenset(ports)


def wake_gateway_ingress(rt: Operator, namespace: str) -> None:
    rt.queue.add(GatewayIngressKey(namespace))


async def reconcile_gateway_ingress(rt: Operator, key: GatewayIngressKey) -> None:
    await admit_namespace(rt, key.namespace)


async def admit_namespace(rt: Operator, namespace: str) -> None:
    """The namespace's policy as the ledger says, written now or by the write that follows the one under way
    (shared with every endpoint of the namespace that asks meanwhile): an endpoint awaits this inside its
    own reconcile, so a new endpoint is Accepted without first saying IngressPolicyPending."""
    await rt.ingress_writes.run(namespace, functools.partial(_write_policy, rt, namespace))


async def _write_policy(rt: Operator, namespace: str) -> None:
    """Converges from any state; may run any number of times; writes only when the stored policy differs."""
    config = rt.config
    state = rt.gateway_ingress
    ports = established_gateway_ports(rt, namespace) if config.gatewayIngressPolicy else frozenset()
    if not ports:
        if state.record(namespace) is not None:  # no orphans: the namespace has nothing left to reach
            await rt.api.delete(NETWORK_POLICY, config.namespace, gateway_ingress_policy_name(namespace))
            state.forget(namespace)
        return
    manifest = build_gateway_ingress_policy(namespace, ports, config.namespace, config.gatewayPodLabels)
    known = state.record(namespace)
    if known is None or known.spec_hash != spec_hash(manifest):
        answer = await rt.api.apply(manifest)
        state.observe("MODIFIED", answer, config.namespace)
    for name in state.waiting(namespace):  # also when nothing was written: the ports may be in already
        rt.queue.add(EndpointKey(namespace, name))


# --- what wakes a namespace's policy


def _of_deleted_endpoint(rt: Operator, event: Event) -> list[GatewayIngressKey]:
    """Its ports leave the policy, also when no finalizer ran (the endpoint controller wakes the namespace
    after every change of phase or ports it writes)."""
    return [GatewayIngressKey(event.namespace)] if event.deleted else []


def _of_policy(rt: Operator, event: Event) -> list[GatewayIngressKey]:
    """Keep the projection of the stored policies; a deleted or edited one is restored."""
    namespace = rt.gateway_ingress.observe(event.type, event.body, rt.config.namespace)
    return [GatewayIngressKey(namespace)] if namespace is not None else []


def _every_namespace(rt: Operator) -> list[GatewayIngressKey]:
    """Once primed: every namespace with endpoints, and every namespace that has a policy (orphans too)."""
    namespaces = {namespace for namespace, _ in rt.observed.all_endpoint_refs()}
    return [GatewayIngressKey(n) for n in sorted(namespaces | set(rt.gateway_ingress.namespaces()))]


CONTROLLER = Controller(
    name="GatewayIngress",
    key=GatewayIngressKey,
    reconcile=reconcile_gateway_ingress,
    watches=(Watches(ENDPOINTS, _of_deleted_endpoint), Watches(OWNED_POLICIES, _of_policy)),
    initial=_every_namespace,
)

"""Keep one gateway ingress NetworkPolicy per consumer namespace (R42): a keyed, level-triggered reconcile.

The key is the consumer namespace. Each run recomputes the policy from every endpoint of that namespace
(the gateway ports those that are Creating or Accepted hold), applies it when the stored spec differs,
deletes it when no port is left, and wakes the namespace's endpoints that wait for it (no endpoint is Accepted
before its ports are admitted; vpcep.domain.endpoint). Writers enqueue the key: an endpoint whose phase or
ports changed, an endpoint going away, and the own watch on the policies (a deleted or edited policy is
restored).
"""

from __future__ import annotations

from vpcep.builders.gateway_ingress import build_gateway_ingress_policy, gateway_ingress_policy_name
from vpcep.handlers.gateway_ingress_state import spec_hash
from vpcep.handlers.runtime import ENDPOINT_KEY, GATEWAY_INGRESS_KEY, Runtime
from vpcep.k8s.resources import NETWORK_POLICY


def established_gateway_ports(rt: Runtime, namespace: str) -> frozenset[int]:
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


def wake_gateway_ingress(rt: Runtime, namespace: str) -> None:
    rt.queue.add((GATEWAY_INGRESS_KEY, namespace, ""))


async def reconcile_gateway_ingress(rt: Runtime, namespace: str) -> None:
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
        rt.queue.add((ENDPOINT_KEY, namespace, name))


def gateway_ingress_event(rt: Runtime, event_type: str | None, body: dict) -> None:
    """From the own watch on the operator's NetworkPolicies: keep the projection, and let the namespace's
    reconcile restore drift (a deleted or edited policy) and wake endpoints waiting for it."""
    namespace = rt.gateway_ingress.observe(event_type, body, rt.config.namespace)
    if namespace is not None:
        wake_gateway_ingress(rt, namespace)


def wake_every_gateway_ingress(rt: Runtime) -> None:
    """After priming: every namespace with endpoints, and every namespace that has a policy (orphans too)."""
    namespaces = {namespace for namespace, _ in rt.observed.all_endpoint_refs()}
    for namespace in sorted(namespaces | set(rt.gateway_ingress.namespaces())):
        wake_gateway_ingress(rt, namespace)

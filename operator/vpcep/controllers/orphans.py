"""The orphans controller: what an Endpoint left behind when it went without its finalizer running
(forced away, or deleted while no operator ran) -- its EndpointConnections, its route ConfigMap, its
allocations (R23).

The key is the endpoint's uid (also its endpoint id, or the id its status recorded).
"""

from __future__ import annotations

from vpcep.api.routing import ROUTE_LABEL
from vpcep.builders.meta import ENDPOINT_ID_LABEL, ENDPOINT_UID_LABEL, MANAGED_BY, MANAGED_BY_LABEL
from vpcep.controllers.context import Operator
from vpcep.controllers.endpoint import delete_connections
from vpcep.controllers.keys import OrphansKey
from vpcep.controllers.sources import CONNECTIONS, ENDPOINTS, OPERATOR_CONFIG_MAPS
from vpcep.k8s.resources import CONFIG_MAP
from vpcep.runtime.controller import Controller, Watches
from vpcep.runtime.source import Event


async def collect_orphans(rt: Operator, key: OrphansKey) -> None:
    """Converges from any state; a no-op while the endpoint exists."""
    endpoint_uid = key.endpoint_uid
    if rt.observed.endpoint_by_uid(endpoint_uid) is not None:
        return
    await delete_connections(rt, endpoint_uid)
    route = rt.observed.route(endpoint_uid)
    if route is not None:
        await rt.api.delete(CONFIG_MAP, rt.config.namespace, route.name)
        rt.writes.forget("ConfigMap", rt.config.namespace, route.name)
    rt.writes.forget_route(endpoint_uid)
    rt.allocations.release(endpoint_uid)
    rt.gateway_port_quota.forget(endpoint_uid)


def _deleted_endpoint(rt: Operator, event: Event) -> list[OrphansKey]:
    return [OrphansKey(event.uid)] if event.deleted else []


def _ownerless(endpoint_id: str, rt: Operator, event: Event) -> list[OrphansKey]:
    """A child of ours whose endpoint is unknown. Judged only once every kind has listed (before that the
    endpoint may just not be listed yet): the initial keys cover what the first LIST holds."""
    if event.deleted or not rt.primed or event.labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
        return []
    return [OrphansKey(endpoint_id)] if rt.observed.endpoint_by_uid(endpoint_id) is None else []


def _connection_of_no_endpoint(rt: Operator, event: Event) -> list[OrphansKey]:
    return _ownerless(event.labels.get(ENDPOINT_ID_LABEL) or event.name, rt, event)


def _route_of_no_endpoint(rt: Operator, event: Event) -> list[OrphansKey]:
    if event.labels.get(ROUTE_LABEL) != "true":
        return []
    return _ownerless(event.labels.get(ENDPOINT_UID_LABEL, ""), rt, event)


def _left_behind(rt: Operator) -> list[OrphansKey]:
    """Once primed: children of endpoints deleted while no operator ran (no watch event will tell)."""
    ids = rt.observed.endpoint_ids_with_children()
    return [OrphansKey(uid) for uid in sorted(ids) if rt.observed.endpoint_by_uid(uid) is None]


CONTROLLER = Controller(
    name="Orphans",
    key=OrphansKey,
    reconcile=collect_orphans,
    watches=(
        Watches(ENDPOINTS, _deleted_endpoint),
        Watches(CONNECTIONS, _connection_of_no_endpoint),
        Watches(OPERATOR_CONFIG_MAPS, _route_of_no_endpoint),
    ),
    initial=_left_behind,
)

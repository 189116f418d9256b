"""EndpointConnections the operator did not build (R44): ignored by every decision, reported on the object.

Only the connection the operator created in the service's namespace decides (vpcep.state.observed
`connection`); anything else named like a connection -- no managed-by label, another name, or hand-made --
gets one Warning Event so its author learns why it does nothing. Once per object and spec generation, not
per resourceVersion: labels, annotations and status move the resourceVersion without bumping the
generation, and a tenant editing them in a loop must not turn the operator into an Event pump that crowds
other tenants' Events out of its bounded queue.
"""

from __future__ import annotations

from typing import Any

from vpcep.controllers.context import Operator, involved
from vpcep.domain.reasons import Reason
from vpcep.k8s.resources import ENDPOINT_CONNECTION
from vpcep.state.records import connection_record

FORGED_MESSAGE = (
    "this EndpointConnection was not created by vpcep-operator (it lacks the operator's managed-by label or "
    "name), so it accepts and rejects nothing: the operator creates the one connection per endpoint in the "
    "service's namespace, and only that one's spec.decision counts (R44). Delete this object."
)


class ForgedConnectionReporter:
    """Remembers which (uid, generation) it reported; forgets an object when it is deleted."""

    def __init__(self) -> None:
        self._reported: dict[str, int | None] = {}

    def seen(self, rt: Operator, event_type: str | None, body: dict[str, Any]) -> None:
        """After a watch event on an EndpointConnection: report it once per generation if forged."""
        record = connection_record(body)
        if event_type == "DELETED" or not record.forged or record.deleting:
            self._reported.pop(record.uid, None)
            return
        generation = (body.get("metadata") or {}).get("generation")
        if record.uid in self._reported and self._reported[record.uid] == generation:
            return
        self._reported[record.uid] = generation
        target = involved(ENDPOINT_CONNECTION, record.namespace, record.name, record.uid)
        rt.event(target, True, Reason.NOT_CREATED_BY_OPERATOR, FORGED_MESSAGE)

    def __len__(self) -> int:
        return len(self._reported)

"""R44 in the operator's read side: only the connection it built, in the service's namespace, is found; forged
ones (another namespace, no managed-by label, another name) are never the decision, and each is reported
once per spec generation however often it is touched."""

from __future__ import annotations

import dataclasses
from typing import Any

from vpcep.controllers.forged_connections import ForgedConnectionReporter
from vpcep.runtime.cache import ObjectCache
from vpcep.state.observed import Caches, Observed
from vpcep.state.records import index_connections

ENDPOINT_ID = "7d0c1e5a-9f7b-4a38-8d11-2a9f0c7e4b21"
OURS = {"app.kubernetes.io/managed-by": "vpcep-operator", "vpcep.io/endpoint-id": ENDPOINT_ID}


def connection(
    namespace: str, decision: str, labels: dict[str, str], name: str = ENDPOINT_ID, uid: str = "", rv: int = 1
) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": namespace,
            "name": name,
            "uid": uid or f"{namespace}-{name}",
            "resourceVersion": str(rv),
            "generation": 1,
            "labels": labels,
        },
        "spec": {"decision": decision},
    }


def observed_with(*bodies: dict[str, Any]) -> Observed:
    caches = {field.name: ObjectCache(lambda body: {}) for field in dataclasses.fields(Caches)}
    caches["connections"] = ObjectCache(index_connections)
    for body in bodies:
        caches["connections"].apply("ADDED", body)
    return Observed(Caches(**caches), "vpcep-system")


def test_only_the_operators_connection_in_the_services_namespace_decides() -> None:
    observed = observed_with(
        connection("aa-attacker", "Accept", OURS),  # sorts first, fully labelled
        connection("consumer", "Accept", {}),
        connection("zz-provider", "Pending", OURS),
    )
    found = observed.connection("zz-provider", ENDPOINT_ID)
    assert found is not None and found.decision.value == "Pending" and found.namespace == "zz-provider"
    assert observed.connection("consumer", ENDPOINT_ID) is None  # not built by the operator
    # Clean-up finds operator-shaped copies only (an unlabelled forgery is never the operator's to delete).
    assert {c.namespace for c in observed.connections_built_for(ENDPOINT_ID)} == {
        "aa-attacker",
        "zz-provider",
    }


def test_no_label_or_another_name_is_not_the_operators() -> None:
    relabelled = {**OURS, "vpcep.io/endpoint-id": "another-id"}
    observed = observed_with(
        connection("p", "Accept", {}),
        connection("q", "Accept", OURS, name="forged-name"),
        connection("r", "Accept", relabelled),
    )
    for namespace in ("p", "q", "r"):
        assert observed.connection(namespace, ENDPOINT_ID) is None


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, bool, str]] = []

    def event(self, target: Any, warning: bool, reason: str, message: str) -> None:
        self.events.append((target.name, warning, reason))


def test_a_forged_connection_is_reported_once_per_generation_not_per_touch() -> None:
    reporter, recorder = ForgedConnectionReporter(), Recorder()
    rt: Any = recorder
    forged = connection("consumer", "Accept", {}, uid="u1")
    for version in range(1, 50):  # labels, annotations, status: the resourceVersion moves, not the generation
        reporter.seen(
            rt, "MODIFIED", {**forged, "metadata": {**forged["metadata"], "resourceVersion": str(version)}}
        )
    assert recorder.events == [(ENDPOINT_ID, True, "NotCreatedByOperator")]
    reporter.seen(rt, "MODIFIED", {**forged, "metadata": {**forged["metadata"], "generation": 2}})
    assert len(recorder.events) == 2
    reporter.seen(rt, "DELETED", forged)
    assert len(reporter) == 0  # nothing kept for objects that are gone


def test_the_operators_own_connections_are_never_reported() -> None:
    reporter, recorder = ForgedConnectionReporter(), Recorder()
    rt: Any = recorder
    reporter.seen(rt, "ADDED", connection("provider", "Accept", OURS))
    assert recorder.events == [] and len(reporter) == 0

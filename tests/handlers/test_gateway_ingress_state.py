"""What the operator believes about the gateway ingress policies (R42): only its own, never older news."""

from __future__ import annotations

from typing import Any

from vpcep.builders.gateway_ingress import build_gateway_ingress_policy
from vpcep.state.gateway_ingress_state import GatewayIngressState

OPERATOR_NS = "vpcep-system"


def _stored(ports: list[int], version: int, namespace: str = OPERATOR_NS) -> dict[str, Any]:
    body = build_gateway_ingress_policy("shop-web", ports, namespace, {"app": "gw"})
    body["metadata"]["resourceVersion"] = str(version)
    return body


def test_own_policy_is_projected_to_its_ports() -> None:
    state = GatewayIngressState()
    assert state.observe("ADDED", _stored([20000, 20001], 5), OPERATOR_NS) == "shop-web"
    assert state.admitted("shop-web") == frozenset({20000, 20001})
    assert state.namespaces() == ["shop-web"]


def test_a_look_alike_in_a_tenant_namespace_is_not_believed_R42() -> None:
    """A tenant can write a NetworkPolicy with the operator's labels in its own namespace: it admits nothing
    at the gateways, so it must not make an endpoint look admitted."""
    state = GatewayIngressState()
    assert state.observe("ADDED", _stored([20000], 5, namespace="shop-web"), OPERATOR_NS) is None
    renamed = _stored([20000], 6)
    renamed["metadata"]["name"] = "something-else"
    assert state.observe("ADDED", renamed, OPERATOR_NS) is None
    assert state.admitted("shop-web") == frozenset()


def test_an_older_event_does_not_undo_a_newer_write() -> None:
    state = GatewayIngressState()
    state.observe("MODIFIED", _stored([20000, 20001], 9), OPERATOR_NS)  # the apply's answer
    state.observe("MODIFIED", _stored([20000], 7), OPERATOR_NS)  # the watch catching up
    assert state.admitted("shop-web") == frozenset({20000, 20001})
    state.observe("DELETED", _stored([20000], 8), OPERATOR_NS)  # a delete before the re-create
    assert state.admitted("shop-web") == frozenset({20000, 20001})
    state.observe("DELETED", _stored([20000, 20001], 10), OPERATOR_NS)
    assert state.admitted("shop-web") == frozenset() and state.record("shop-web") is None


def test_an_edit_changes_the_spec_hash_even_with_the_annotation_kept() -> None:
    state = GatewayIngressState()
    state.observe("ADDED", _stored([20000], 1), OPERATOR_NS)
    before = state.record("shop-web")
    edited = _stored([20000], 2)
    edited["spec"]["ingress"][0]["from"] = [{}]  # someone opens it to everybody, annotation untouched
    state.observe("MODIFIED", edited, OPERATOR_NS)
    after = state.record("shop-web")
    assert before is not None and after is not None and before.spec_hash != after.spec_hash


def test_endpoints_waiting_for_the_policy_are_remembered_until_they_stop_waiting() -> None:
    state = GatewayIngressState()
    state.track_waiting("shop-web", "db", True)
    state.track_waiting("shop-web", "cache", True)
    state.track_waiting("other", "x", False)
    assert state.waiting("shop-web") == ["cache", "db"] and state.waiting("other") == []
    state.track_waiting("shop-web", "db", False)
    state.track_waiting("shop-web", "cache", False)
    assert state.waiting("shop-web") == []

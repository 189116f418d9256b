"""R45, second sentence: no backend may resolve to an address a gateway must never dial -- link-local, a cloud
metadata address, the API server's, or an admin-denied CIDR -- whatever object carries it (a Service's
ClusterIPs, an admin-allowed selector-less Service's EndpointSlice, a Pod's IPs). The API server's addresses
are followed from its `kubernetes` Service and EndpointSlice."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from vpcep.api.denied_addresses import parse_networks, why_denied
from vpcep.api.endpoint_service import BackendKind
from vpcep.domain.reasons import Reason
from vpcep.runtime.cache import ObjectCache
from vpcep.runtime.source import Event
from vpcep.state.api_server import ApiServerAddresses
from vpcep.state.backend_slices import HandWrittenSlices
from vpcep.state.backends import dialled_addresses, observe_backend
from vpcep.state.observed import Caches, Observed
from vpcep.state.records import index_owned_slices

ADMIN_DENIED = parse_networks(["10.250.0.0/16"])
API_SERVER = frozenset({"10.96.0.1", "192.168.5.10"})


def service(cluster_ip: str = "10.96.4.4", selector: bool = True) -> dict[str, Any]:
    spec: dict[str, Any] = {"clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "ports": [{"port": 80}]}
    if selector:
        spec["selector"] = {"app": "web"}
    return {"metadata": {"namespace": "prov", "name": "web"}, "spec": spec}


def endpoint_slice(*addresses: str, name: str = "web-1") -> dict[str, Any]:
    return {"metadata": {"name": name}, "endpoints": [{"addresses": [a]} for a in addresses]}


def pod(ip: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "prov", "name": "web"},
        "spec": {},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
    }


def judge(kind: BackendKind, body: dict[str, Any], slices: list[dict[str, Any]] = []) -> Reason | None:  # noqa: B006
    observation = observe_backend(
        kind,
        body,
        selectorless_allowed=True,
        slices=slices,
        api_server=API_SERVER,
        admin_denied=ADMIN_DENIED,
    )
    return observation.refusal.reason if observation.refusal else None


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("169.254.169.254", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("::ffff:169.254.169.254", "a cloud metadata address"),  # IPv4-mapped is the same address
        ("10.250.3.4", "in a CIDR the cluster admin denies to gateways"),
        ("10.244.1.5", None),
        ("web.prov.svc.cluster.local", None),  # a DNS name: judged by what it resolves to (the slices)
    ],
)
def test_what_no_gateway_may_dial(address: str, expected: str | None) -> None:
    assert why_denied(address, ADMIN_DENIED) == expected


def test_a_provider_backend_in_pod_and_service_addresses_passes() -> None:
    assert judge(BackendKind.SERVICE, service()) is None
    assert judge(BackendKind.POD, pod("10.244.1.5")) is None
    assert judge(BackendKind.SERVICE, service(selector=False), [endpoint_slice("10.244.1.5")]) is None


@pytest.mark.parametrize("address", ["169.254.169.254", "192.168.5.10", "10.250.0.9", "fe80::9"])
def test_a_selector_less_services_slice_aimed_at_a_denied_address_is_refused(address: str) -> None:
    """The hostile provider of an admin-allowed namespace writes its own EndpointSlice: the metadata address,
    the API server's own address, an admin-denied CIDR."""
    slices = [endpoint_slice("10.244.1.5"), endpoint_slice(address, name="web-2")]
    assert judge(BackendKind.SERVICE, service(selector=False), slices) is Reason.BACKEND_ADDRESS_DENIED
    refusal = observe_backend(
        BackendKind.SERVICE, service(selector=False), selectorless_allowed=True, slices=slices,
        api_server=API_SERVER, admin_denied=ADMIN_DENIED,
    ).refusal  # fmt: skip
    assert refusal is not None
    assert f"resolves to {address} (EndpointSlice web-2)" in refusal.message
    assert "point its EndpointSlice at your own pods" in refusal.message


def test_the_api_servers_cluster_ip_and_a_pod_on_a_denied_address_are_refused() -> None:
    assert judge(BackendKind.SERVICE, service(cluster_ip="10.96.0.1")) is Reason.BACKEND_ADDRESS_DENIED
    spelled_otherwise = observe_backend(
        BackendKind.POD, pod("fd00::0001"), api_server=frozenset({"fd00::1"}), admin_denied=()
    )
    assert spelled_otherwise.refusal is not None and "the API server's" in spelled_otherwise.refusal.message
    assert judge(BackendKind.POD, pod("169.254.3.3")) is Reason.BACKEND_ADDRESS_DENIED


def test_a_refused_backend_has_nothing_to_dial() -> None:
    observation = observe_backend(
        BackendKind.POD, pod("169.254.169.254"), api_server=API_SERVER, admin_denied=ADMIN_DENIED
    )
    assert observation.exists and observation.host is None


def test_dialled_addresses_name_where_each_was_read() -> None:
    assert dialled_addresses(BackendKind.SERVICE, service(), [endpoint_slice("10.0.0.1")]) == (
        ("10.96.4.4", "clusterIP"),
        ("10.0.0.1", "EndpointSlice web-1"),
    )
    headless = service(cluster_ip="None")
    assert dialled_addresses(BackendKind.SERVICE, headless) == ()
    assert dialled_addresses(BackendKind.POD, pod("10.0.0.7")) == (("10.0.0.7", "podIP"),)


def _event(kind: str, uid: str, body: dict[str, Any], deleted: bool = False) -> Event:
    return Event("DELETED" if deleted else "ADDED", {"kind": kind, "metadata": {"uid": uid}, **body})


def test_the_api_servers_addresses_follow_its_service_and_slice() -> None:
    followed = ApiServerAddresses()
    followed.follow(_event("Service", "s", {"spec": {"clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"]}}))
    assert followed.moved and followed.addresses == {"10.96.0.1"}
    followed.follow(_event("EndpointSlice", "e", {"endpoints": [{"addresses": ["192.168.5.10"]}]}))
    assert followed.moved and followed.addresses == {"10.96.0.1", "192.168.5.10"}
    followed.follow(_event("EndpointSlice", "e", {"endpoints": [{"addresses": ["192.168.5.10"]}]}))
    assert not followed.moved  # a re-list repeating the same addresses wakes nobody
    followed.follow(_event("EndpointSlice", "e", {"endpoints": [{"addresses": ["192.168.5.11"]}]}))
    assert followed.moved and followed.addresses == {"10.96.0.1", "192.168.5.11"}
    followed.follow(_event("EndpointSlice", "e", {}, deleted=True))
    assert followed.moved and followed.addresses == {"10.96.0.1"}


def _slice_event(uid: str, service: str | None, deleted: bool = False) -> Event:
    labels = {"kubernetes.io/service-name": service} if service else {}
    meta = {"uid": uid, "namespace": "prov", "name": uid, "labels": labels}
    return Event("DELETED" if deleted else "ADDED", {"metadata": meta})


def test_hand_written_slices_are_counted_per_service() -> None:
    """Which backend Services have slices that no endpoint controller wrote (the watch selects those on the
    API server's side): only they have their slices listed and judged."""
    slices = HandWrittenSlices()
    slices.follow(_slice_event("a", "web"))
    slices.follow(_slice_event("b", "web"))
    assert slices.has("prov", "web") and not slices.has("prov", "db") and not slices.has("other", "web")
    slices.follow(_slice_event("a", "web", deleted=True))
    assert slices.has("prov", "web")
    slices.follow(_slice_event("b", "db"))  # relabelled to another Service
    assert not slices.has("prov", "web") and slices.has("prov", "db")
    slices.follow(_slice_event("b", None))  # the label removed: no Service's any more
    assert not slices.has("prov", "db")


def test_a_slice_dressed_as_the_operators_own_is_found_for_the_service_it_names() -> None:
    """R45: the hand-written watch leaves out slices carrying the operator's managed-by label (its own, by the
    thousand); one of those naming a backend Service is found in the owned-slices cache by that Service, and
    one that drops the label is not (the hand-written watch has it)."""
    caches = {field.name: ObjectCache(lambda body: {}) for field in dataclasses.fields(Caches)}
    caches["owned_slices"] = ObjectCache(index_owned_slices)
    observed = Observed(Caches(**caches), "vpcep-system")
    forged = {
        "metadata": {
            "uid": "u1",
            "namespace": "prov",
            "name": "web-forged",
            "resourceVersion": "3",
            "labels": {"kubernetes.io/service-name": "web", "app.kubernetes.io/managed-by": "vpcep-operator"},
        }
    }
    caches["owned_slices"].apply("ADDED", forged)
    assert observed.owned_slice_labelled_for("prov", "web")
    assert not observed.owned_slice_labelled_for("prov", "db") and not observed.owned_slice_labelled_for(
        "c", "web"
    )
    caches["owned_slices"].apply("DELETED", forged)
    assert not observed.owned_slice_labelled_for("prov", "web")

"""R42 on the test control plane: the operator keeps one gateway ingress NetworkPolicy per consumer
namespace.

The policy (in the operator namespace, selecting the gateway pods) admits the consumer namespace to exactly
the gateway ports of its Creating/Accepted endpoints; it is in place before an endpoint turns Accepted, loses
the ports of a deleted or rejected endpoint within seconds, goes with the namespace's last endpoint, is
restored when someone deletes or edits it, and is not left behind by an operator killed mid-way. (That packets
are refused is proven with real bytes in tests/dataplane/test_gateway_isolation.py.) Gateway status comes from
the stand-in.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from integration.conftest import delete_namespaces
from integration.helpers import Cluster, OperatorProcess, StandInGateway, phase_is, publish_service, wait_for

pytestmark = pytest.mark.cluster
PID = os.getpid()
ACCOUNT = f"ingress-{PID}"
PROVIDER, CONSUMER, APPROVING, CRASHING = (f"ig-{role}-{PID}" for role in ("prov", "cons", "appr", "crash"))
GATEWAY_LABELS = {"app.kubernetes.io/name": "vpcep-gateway"}  # the operator's default gatewayPodLabels
REVOKE_SECONDS = 10  # "within seconds" (R42): generous for a loaded 2-core machine


@pytest.fixture(scope="module")
def tenants(kube: Cluster, operator: OperatorProcess, gateway: StandInGateway) -> Iterator[None]:
    for namespace in (PROVIDER, CONSUMER, APPROVING, CRASHING):
        kube.namespace(namespace, ACCOUNT)
    yield
    delete_namespaces(kube, PROVIDER, CONSUMER, APPROVING, CRASHING)


def publish(kube: Cluster, name: str, approval: bool) -> str:
    return publish_service(kube, PROVIDER, name, approval)


def policy(kube: Cluster, operator: OperatorProcess, consumer: str) -> dict[str, Any] | None:
    body: dict[str, Any] | None = kube.get("networkpolicy", operator.namespace, f"vpcep-ingress-{consumer}")
    return body


def admitted(body: dict[str, Any] | None) -> set[int]:
    ports: set[int] = set()
    for rule in ((body or {}).get("spec") or {}).get("ingress") or []:
        for entry in rule.get("ports") or []:
            ports.update(range(entry["port"], entry.get("endPort", entry["port"]) + 1))
    return ports


def gateway_ports(status: dict[str, Any]) -> set[int]:
    return {int(port["gatewayPort"]) for port in status.get("gatewayPorts") or []}


class FirstEvent:
    """A watch (in a thread) on one collection, from now: the resourceVersion of the first event whose object
    matches. etcd revisions order every write of the testbed, so two of these tell which write came first."""

    def __init__(
        self, kube: Cluster, resource: tuple[str, str, str, str], matches: Callable[[dict[str, Any]], bool]
    ) -> None:
        from kubernetes import client, watch
        from kubernetes import config as kube_config

        self.version: int | None = None
        api = client.CustomObjectsApi(kube_config.new_client_from_config(config_file=kube.kubeconfig))
        group, version, namespace, plural = resource
        self._watch = watch.Watch()

        def list_call(**kwargs: Any) -> Any:  # also serves built-in groups: the URL has the same shape
            return api.list_namespaced_custom_object(group, version, namespace, plural, **kwargs)

        def run() -> None:
            for event in self._watch.stream(list_call, timeout_seconds=120):
                body = event["object"]
                if isinstance(body, dict) and matches(body):
                    self.version = int(body["metadata"]["resourceVersion"])
                    self._watch.stop()
                    return

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def wait(self) -> int:
        self._thread.join(timeout=60)
        assert self.version is not None, "the watch saw no matching event"
        return self.version


def test_policy_is_in_place_before_accepted_and_follows_the_namespace_R42(
    kube: Cluster, operator: OperatorProcess, tenants: None
) -> None:
    service_name = publish(kube, "ig-open", approval=False)
    accepted = FirstEvent(
        kube,
        ("vpcep.io", "v1alpha1", CONSUMER, "endpoints"),
        lambda body: (body.get("status") or {}).get("phase") == "Accepted",
    )
    admitting = FirstEvent(
        kube,
        ("networking.k8s.io", "v1", operator.namespace, "networkpolicies"),
        lambda body: body["metadata"]["name"] == f"vpcep-ingress-{CONSUMER}" and bool(admitted(body)),
    )
    kube.apply("endpoint.yaml", name="first", namespace=CONSUMER, service_name=service_name)
    first = wait_for("first Accepted", phase_is(kube, "vpce", CONSUMER, "first", "Accepted"))
    # The policy that admits the namespace was written before the Accepted status was.
    assert admitting.wait() < accepted.wait()

    stored = policy(kube, operator, CONSUMER)
    assert stored is not None
    spec = stored["spec"]
    assert spec["podSelector"] == {"matchLabels": GATEWAY_LABELS} and spec["policyTypes"] == ["Ingress"]
    assert [rule["from"] for rule in spec["ingress"]] == [
        [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": CONSUMER}}}]
    ]
    assert admitted(stored) == gateway_ports(first) and gateway_ports(first)

    kube.apply("endpoint.yaml", name="second", namespace=CONSUMER, service_name=service_name)
    second = wait_for("second Accepted", phase_is(kube, "vpce", CONSUMER, "second", "Accepted"))
    both = gateway_ports(first) | gateway_ports(second)
    assert admitted(policy(kube, operator, CONSUMER)) == both  # one object for the namespace

    kube.delete("vpce", CONSUMER, "first")
    wait_for(
        "the deleted endpoint's ports to leave the policy",
        lambda: admitted(policy(kube, operator, CONSUMER)) == gateway_ports(second),
        timeout=REVOKE_SECONDS,
    )
    kube.delete("vpce", CONSUMER, "second")
    wait_for(
        "the policy to go with the namespace's last endpoint",
        lambda: policy(kube, operator, CONSUMER) is None,
        timeout=REVOKE_SECONDS,
    )


def test_pending_admits_nothing_drift_is_undone_and_reject_revokes_R42(
    kube: Cluster, operator: OperatorProcess, tenants: None
) -> None:
    service_name = publish(kube, "ig-approval", approval=True)
    kube.apply("endpoint.yaml", name="asks", namespace=APPROVING, service_name=service_name)
    pending = wait_for("PendingAcceptance", phase_is(kube, "vpce", APPROVING, "asks", "PendingAcceptance"))
    endpoint_id = pending["endpointId"]
    wait_for("the connection", lambda: kube.get("vpcec", PROVIDER, endpoint_id))
    assert policy(kube, operator, APPROVING) is None  # pending: nothing admitted (steady state, R10)

    kube.apply("connection-decision.yaml", name=endpoint_id, namespace=PROVIDER, decision="Accept")
    accepted = wait_for("Accepted", phase_is(kube, "vpce", APPROVING, "asks", "Accepted"))
    ports = gateway_ports(accepted)
    assert admitted(policy(kube, operator, APPROVING)) == ports

    # Someone deletes the policy: the own watch sees it and the operator writes it again.
    kube.kubectl("delete", "networkpolicy", f"vpcep-ingress-{APPROVING}", "-n", operator.namespace)
    wait_for("the deleted policy restored", lambda: admitted(policy(kube, operator, APPROVING)) == ports)

    # Someone opens it to every source (keeping the operator's hash annotation): put back as it was.
    opened = {"spec": {"ingress": [{"from": [{}], "ports": [{"protocol": "TCP", "port": min(ports)}]}]}}
    kube.kubectl(
        "patch", "networkpolicy", f"vpcep-ingress-{APPROVING}", "-n", operator.namespace,
        "--type=merge", "-p", json.dumps(opened),
    )  # fmt: skip

    def restored() -> bool:
        rules = ((policy(kube, operator, APPROVING) or {}).get("spec") or {}).get("ingress") or []
        return bool(rules) and all(
            rule.get("from") and rule["from"][0].get("namespaceSelector") for rule in rules
        )

    wait_for("the edited policy put back", restored)
    assert admitted(policy(kube, operator, APPROVING)) == ports

    kube.apply("connection-decision.yaml", name=endpoint_id, namespace=PROVIDER, decision="Reject")
    wait_for(
        "Reject to revoke the namespace's admission",
        lambda: policy(kube, operator, APPROVING) is None,
        timeout=REVOKE_SECONDS,
    )
    assert kube.status("vpce", APPROVING, "asks")["phase"] == "Rejected"


def test_an_operator_killed_mid_way_leaves_no_orphan_policy_R42(
    kube: Cluster, operator: OperatorProcess, tenants: None
) -> None:
    service_name = publish(kube, "ig-crash", approval=False)
    kube.apply("endpoint.yaml", name="gone", namespace=CRASHING, service_name=service_name)
    wait_for("Accepted", phase_is(kube, "vpce", CRASHING, "gone", "Accepted"))
    assert policy(kube, operator, CRASHING) is not None

    operator.kill()
    # While no operator runs, the endpoint goes without its finalizer (forced away by an admin).
    kube.kubectl("delete", "vpce", "gone", "-n", CRASHING, "--wait=false")
    kube.kubectl(
        "patch", "vpce", "gone", "-n", CRASHING, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
    )
    wait_for("the endpoint gone", lambda: kube.get("vpce", CRASHING, "gone") is None)
    assert policy(kube, operator, CRASHING) is not None  # nobody removed it yet

    operator.restart()
    wait_for(
        "the orphaned policy removed after the restart", lambda: policy(kube, operator, CRASHING) is None
    )
    assert operator.alive(), operator.log()

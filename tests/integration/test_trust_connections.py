"""R44 as a hostile tenant tries it: only the EndpointConnection the operator built, in the service's
namespace, decides. Forged connections are created here as the cluster admin -- what a tenant could do on
a cluster without the chart's RBAC and admission policy (tests/chart/test_chart_trust.py shows those refuse
it) -- so this proves the operator's own check, the last line.

The operator runs as a real process (webhook off), gateway status from the stand-in."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from integration.conftest import delete_namespaces
from integration.helpers import Cluster, OperatorProcess, StandInGateway, phase_is, publish_service, wait_for

pytestmark = pytest.mark.cluster
PID = os.getpid()
# A provider namespace that sorts after the attacker's: a lookup by endpoint id alone found the attacker's
# copy first (issue 9).
PROVIDER = f"zz-trust-prov-{PID}"
CONSUMER = f"trust-cons-{PID}"
EARLY = f"aa-trust-early-{PID}"
ACCOUNT = f"trust-{PID}"
SETTLE_SECONDS = 3.0  # several reconciles' worth: the forged object's own watch event wakes the endpoint


@pytest.fixture(scope="module")
def scene(kube: Cluster, operator: OperatorProcess, gateway: StandInGateway) -> Iterator[None]:
    for namespace in (PROVIDER, CONSUMER, EARLY):
        kube.namespace(namespace, ACCOUNT)
    yield
    delete_namespaces(kube, PROVIDER, CONSUMER, EARLY)


def publish(kube: Cluster, name: str, approval: bool) -> str:
    return publish_service(kube, PROVIDER, name, approval)


def endpoint(kube: Cluster, name: str, service_name: str, *phases: str) -> dict[str, Any]:
    kube.apply("endpoint.yaml", name=name, namespace=CONSUMER, service_name=service_name)
    return dict(wait_for(f"Endpoint {name} in {phases}", phase_is(kube, "vpce", CONSUMER, name, *phases)))


def forge(kube: Cluster, namespace: str, endpoint_id: str, decision: str, labelled: bool) -> None:
    """A connection named after the victim endpoint's id; `labelled` copies the operator's labels too."""
    labels = (
        {"app.kubernetes.io/managed-by": "vpcep-operator", "vpcep.io/endpoint-id": endpoint_id}
        if labelled
        else {}
    )
    kube.apply_text(
        yaml.safe_dump(
            {
                "apiVersion": "vpcep.io/v1alpha1",
                "kind": "EndpointConnection",
                "metadata": {"name": endpoint_id, "namespace": namespace, "labels": labels},
                "spec": {"decision": decision},
            }
        )
    )


def decide(kube: Cluster, endpoint_id: str, decision: str) -> None:
    kube.kubectl(
        "patch", "vpcec", endpoint_id, "-n", PROVIDER, "--type=merge", "-p",
        json.dumps({"spec": {"decision": decision}}),
    )  # fmt: skip


def poke_real_connection(kube: Cluster, endpoint_id: str) -> None:
    """A change to the genuine connection: the operator re-reads every connection of this endpoint id."""
    kube.kubectl("annotate", "--overwrite", "vpcec", endpoint_id, "-n", PROVIDER, f"poke={time.time()}")


def holds(kube: Cluster, name: str, phase: str) -> None:
    """The endpoint stays in `phase` for SETTLE_SECONDS (checked all along, not only at the end)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        seen = kube.status("vpce", CONSUMER, name).get("phase")
        assert seen == phase, f"Endpoint {name} moved to {seen} on a forged connection (R44)"
        time.sleep(0.2)


def warnings_on(kube: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    events = kube.get("events", namespace) or {"items": []}
    return [
        e
        for e in events["items"]
        if e["involvedObject"].get("kind") == "EndpointConnection"
        and e["involvedObject"].get("name") == name
        and e.get("reason") == "NotCreatedByOperator"
    ]


def test_a_forged_accept_in_the_consumer_namespace_accepts_nothing_R44(
    kube: Cluster, scene: None, operator: OperatorProcess
) -> None:
    service_name = publish(kube, "gated", approval=True)
    status = endpoint(kube, "gated", service_name, "PendingAcceptance")
    endpoint_id = status["endpointId"]

    forge(kube, CONSUMER, endpoint_id, "Accept", labelled=False)
    poke_real_connection(kube, endpoint_id)
    holds(kube, "gated", "PendingAcceptance")

    # Reported on the forged object, once: edits that leave its spec alone post nothing more.
    wait_for("a Warning Event on the forged connection", lambda: warnings_on(kube, CONSUMER, endpoint_id))
    for round_ in range(3):
        kube.kubectl("label", "--overwrite", "vpcec", endpoint_id, "-n", CONSUMER, f"round={round_}")
    time.sleep(1.5)
    reported = warnings_on(kube, CONSUMER, endpoint_id)
    assert len(reported) == 1 and reported[0]["type"] == "Warning"
    assert reported[0].get("count", 1) == 1, reported[0]
    assert "not created by vpcep-operator" in reported[0]["message"]
    # The operator never deletes what it did not build.
    assert kube.get("vpcec", CONSUMER, endpoint_id) is not None

    # The genuine decision still works (the test can tell Accepted from PendingAcceptance).
    decide(kube, endpoint_id, "Accept")
    wait_for("the provider's Accept", phase_is(kube, "vpce", CONSUMER, "gated", "Accepted"))


def test_a_fully_labelled_forgery_sorting_before_the_provider_accepts_nothing_across_a_restart_R44(
    kube: Cluster, scene: None, operator: OperatorProcess
) -> None:
    service_name = publish(kube, "early", approval=True)
    status = endpoint(kube, "early", service_name, "PendingAcceptance")
    endpoint_id = status["endpointId"]
    assert EARLY < PROVIDER  # what made a lookup by endpoint id alone pick the forgery

    forge(kube, EARLY, endpoint_id, "Accept", labelled=True)
    poke_real_connection(kube, endpoint_id)
    holds(kube, "early", "PendingAcceptance")

    operator.kill()  # a crash, then a new process: its start-up LIST sees both connections at once
    operator.restart()
    wait_for(
        "the restarted operator to reconcile",
        lambda: (
            kube.status("vpcec", PROVIDER, endpoint_id).get("state") == "PendingAcceptance"
            and operator.alive()
        ),
    )
    forge(kube, EARLY, endpoint_id, "Accept", labelled=True)  # recreated if the operator removed it
    poke_real_connection(kube, endpoint_id)
    holds(kube, "early", "PendingAcceptance")

    decide(kube, endpoint_id, "Accept")
    wait_for("the provider's Accept", phase_is(kube, "vpce", CONSUMER, "early", "Accepted"))


def test_a_forged_reject_rejects_nothing_R44(kube: Cluster, scene: None, operator: OperatorProcess) -> None:
    service_name = publish(kube, "open", approval=False)
    status = endpoint(kube, "open", service_name, "Accepted")
    endpoint_id = status["endpointId"]

    forge(kube, CONSUMER, endpoint_id, "Reject", labelled=False)
    forge(kube, EARLY, endpoint_id, "Reject", labelled=True)
    poke_real_connection(kube, endpoint_id)
    holds(kube, "open", "Accepted")
    assert kube.get("configmap", operator.namespace, f"vpcep-route-{endpoint_id}") is not None

    decide(kube, endpoint_id, "Reject")  # the provider's own Reject does reject
    wait_for("the provider's Reject", phase_is(kube, "vpce", CONSUMER, "open", "Rejected"))

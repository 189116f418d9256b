"""R48 with `requireAccountLabel` (Helm: accounts.requireLabel): a namespace without the `vpcep.io/account`
label has no account at all, so its EndpointServices and Endpoints fail with AccountUnclear until an
administrator labels it. Its own module: the operator here runs with that setting, and no other operator may
judge the same objects meanwhile."""

from __future__ import annotations

import os

import pytest

from integration.conftest import delete_namespaces, start_operator
from integration.helpers import Cluster, phase_is, wait_for

pytestmark = pytest.mark.cluster
PID = os.getpid()


def test_with_the_label_required_an_unlabelled_namespace_has_no_account_R48(
    kube: Cluster, operator_namespace: str
) -> None:
    namespace = f"acct-required-{PID}"
    operator = start_operator(kube, f"{operator_namespace}-req", config={"requireAccountLabel": True})
    try:
        kube.namespace(namespace)
        kube.apply("backend-service.yaml", name="b-backend", namespace=namespace)
        kube.apply(
            "endpoint-service.yaml", name="b", namespace=namespace, backend="b-backend", approval="false"
        )
        status = dict(wait_for("the service refused", phase_is(kube, "vpces", namespace, "b", "Failed")))
        assert status["reason"] == "AccountUnclear" and "requires one" in str(status["message"]), status
        # The operator's own cloud services need no account.
        assert kube.status("endpointservices", operator.namespace, "dns").get("reason") != "AccountUnclear"
        kube.namespace(namespace, f"labelled-{PID}")
        wait_for("the service Available once labelled", phase_is(kube, "vpces", namespace, "b", "Available"))
    finally:
        delete_namespaces(kube, namespace)
        if operator.alive():
            delete_namespaces(kube, operator.namespace)
        operator.stop()

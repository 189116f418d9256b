"""kubectl-vpcep: arguments and what each command prints, on an in-memory cluster (R10, R15, R39, R41)."""

from __future__ import annotations

import datetime
import os
import pathlib
import subprocess
import sys
from typing import Any

import pytest
from cli_fakes import FakeCluster

from vpcep.cli import kubectl_plugin
from vpcep.cli.formatting import age, table
from vpcep.cli.hints import HINTS, NO_STATUS_HINT
from vpcep.domain.reasons import Reason

REPO = pathlib.Path(__file__).resolve().parents[2]
SERVICE_NAME = "local-1.db.5d1c2a3e-0000-4000-8000-000000000001"
NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


def run(cluster: FakeCluster, *argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = kubectl_plugin.main(list(argv), connect=lambda target: cluster)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def endpoint_service(name: str = "db", namespace: str = "team-a", approval: bool = True) -> dict[str, Any]:
    return {
        "kind": "EndpointService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "backend": {"kind": "Service", "name": "postgres"},
            "approvalRequired": approval,
            "ports": [{"protocol": "TCP", "serverPort": 5432, "clientPort": 5432}],
        },
        "status": {"phase": "Available", "serviceName": SERVICE_NAME, "serviceType": "Interface"},
    }


def connection(
    endpoint_id: str,
    marker: int,
    service: str = "db",
    state: str = "PendingAcceptance",
    decision: str = "Pending",
) -> dict[str, Any]:
    return {
        "kind": "EndpointConnection",
        "metadata": {
            "name": endpoint_id,
            "namespace": "team-a",
            "labels": {"vpcep.io/endpoint-service": service, "vpcep.io/endpoint-id": endpoint_id},
        },
        "spec": {"decision": decision},
        "status": {
            "endpointId": endpoint_id,
            "markerId": marker,
            "ownerAccount": "team-b",
            "state": state,
            "createdAt": "2026-01-01T11:00:00Z",
        },
    }


# Argument handling


@pytest.mark.parametrize("argv", [[], ["accept"], ["describe"], ["frobnicate"], ["quota", "extra"]])
def test_bad_arguments_exit_2_with_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        kubectl_plugin.main(argv, connect=lambda target: FakeCluster())
    assert exited.value.code == 2
    assert "usage: kubectl vpcep" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["-n", "team-x", "quota"],
        ["quota", "-n", "team-x"],
        ["quota", "--namespace=team-x", "--context", "prod"],
    ],
)
def test_namespace_and_context_flags_are_accepted_before_or_after_the_command(argv: list[str]) -> None:
    seen: list[Any] = []

    def connect(target: Any) -> FakeCluster:
        seen.append(target)
        return FakeCluster(namespace=target.namespace)

    kubectl_plugin.main(argv, connect=connect)
    assert seen[0].namespace == "team-x"
    if "--context" in argv:
        assert seen[0].context == "prod"


def test_no_namespace_flag_leaves_the_choice_to_the_kubeconfig() -> None:
    seen: list[Any] = []

    def connect(target: Any) -> FakeCluster:
        seen.append(target)
        return FakeCluster()

    kubectl_plugin.main(["quota"], connect=connect)
    assert seen[0].namespace is None


# quota (R41)


def test_quota_shows_usage_limits_and_what_is_left(capsys: pytest.CaptureFixture[str]) -> None:
    cluster = FakeCluster()
    cluster.add(
        "configmaps",
        {
            "metadata": {"name": "vpcep-quota"},
            "data": {
                "account": "blue",
                "servicesUsed": "3",
                "servicesLimit": "20",
                "endpointsUsed": "50",
                "endpointsLimit": "50",
                "gatewayPortsUsed": "120",
                "gatewayPortsLimit": "200",
                "whitelistsUsed": "51",
                "whitelistsLimit": "50",
            },
        },
    )
    code, out, _ = run(cluster, "quota", capsys=capsys)
    assert code == 0
    assert out.splitlines() == [
        "Account: blue (namespace team-b)",
        "RESOURCE           USED   LIMIT   AVAILABLE   RAISED BY",
        "endpointservices   3      20      17          quotas.overrides.blue.services",
        "endpoints          50     50      0           quotas.overrides.blue.endpoints",
        "gateway ports      120    200     80          quotas.overrides.blue.gatewayPorts",
        "whitelists         51     50      0           quotas.overrides.blue.whitelists",
        "Over a limit: delete what you no longer use, or ask the cluster operator to raise the Helm value in "
        "the last column (or quotas.default.<key> for every account).",
    ]


def test_quota_from_an_older_operator_shows_what_it_counts(capsys: pytest.CaptureFixture[str]) -> None:
    cluster = FakeCluster()
    data = {"account": "blue", "servicesUsed": "1", "servicesLimit": "20"}
    cluster.add("configmaps", {"metadata": {"name": "vpcep-quota"}, "data": data})
    code, out, _ = run(cluster, "quota", capsys=capsys)
    assert code == 0
    assert "gateway ports" not in out and "whitelists" not in out


def test_quota_without_record_explains_when_it_appears(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(FakeCluster(), "quota", capsys=capsys)
    assert code == 1 and not out
    assert "no quota record in namespace team-b" in err and "vpcep-quota" in err


# verify (R15, R40)


@pytest.mark.parametrize("name", ["db", "local-1.db", "local-1..x", ""])
def test_verify_refuses_what_is_not_a_service_name(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(FakeCluster(), "verify", name, capsys=capsys)
    assert code == 1
    assert "<region>.<name>.<serviceId>" in err


# accept / reject / connections (R10, R11)


@pytest.mark.parametrize("ident", ["3f0b1c7e-aaaa", "7", "3f0b"])
def test_accept_finds_the_connection_by_name_marker_or_prefix(
    ident: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = FakeCluster(namespace="team-a")
    cluster.add("endpointconnections", connection("3f0b1c7e-aaaa", 7))
    cluster.add("endpointconnections", connection("9e2d4400-bbbb", 8))
    code, out, _ = run(cluster, "accept", ident, capsys=capsys)
    assert code == 0
    assert cluster.patches == [("endpointconnections", "3f0b1c7e-aaaa", {"spec": {"decision": "Accept"}})]
    assert (
        out.strip()
        == "endpointconnection/3f0b1c7e-aaaa accepted (endpoint 3f0b1c7e-aaaa, marker 7, owner team-b)"
    )


def test_reject_writes_reject_and_an_unknown_connection_is_not_guessed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cluster = FakeCluster(namespace="team-a")
    cluster.add("endpointconnections", connection("3f0b1c7e-aaaa", 7))
    cluster.add("endpointconnections", connection("3f0b9999-cccc", 9))
    assert run(cluster, "reject", "3f0b1c7e-aaaa", capsys=capsys)[0] == 0
    assert cluster.patches[-1][2] == {"spec": {"decision": "Reject"}}
    code, _, err = run(cluster, "reject", "3f0b", capsys=capsys)  # ambiguous prefix
    assert code == 1 and "not found in namespace team-a" in err
    assert len(cluster.patches) == 1


def test_connections_lists_only_that_service_like_the_console(capsys: pytest.CaptureFixture[str]) -> None:
    cluster = FakeCluster(namespace="team-a")
    cluster.add("endpointservices", endpoint_service())
    cluster.add("endpointconnections", connection("3f0b1c7e-aaaa", 7, decision="Accept", state="Accepted"))
    cluster.add("endpointconnections", connection("9e2d4400-bbbb", 8, service="other"))
    automatic = connection("5c1d2e3f-cccc", 9, state="Accepted")  # approval off: spec.decision stays Pending
    automatic["status"].update(decision="Accept", decidedBy="ApprovalNotRequired")
    cluster.add("endpointconnections", automatic)
    code, out, _ = run(cluster, "connections", "db", capsys=capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "NAME",
        "ENDPOINT",
        "ID",
        "MARKER",
        "ID",
        "STATE",
        "DECISION",
        "DECIDED",
        "BY",
        "OWNER",
        "CREATED",
    ]
    assert len(lines) == 3
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["3f0b1c7e-aaaa"][:7] == [
        "3f0b1c7e-aaaa",
        "3f0b1c7e-aaaa",
        "7",
        "Accepted",
        "Accept",
        "Provider",
        "team-b",
    ]
    # R10: never "Pending" next to Accepted when the endpoint was accepted without a decision.
    assert rows["5c1d2e3f-cccc"][3:6] == ["Accepted", "Accept", "ApprovalNotRequired"]
    code, _, err = run(cluster, "connections", "nope", capsys=capsys)
    assert code == 1 and "endpointservice 'nope' not found in namespace team-a" in err


# describe (R39)


def _endpoint(phase: str | None, reason: str | None = None, **status: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Endpoint",
        "metadata": {"name": "db", "namespace": "team-b", "generation": 1, "uid": "u1"},
        "spec": {"serviceName": SERVICE_NAME},
    }
    if phase:
        body["status"] = {"phase": phase, "reason": reason, "observedGeneration": 1, **status}
    return body


def test_describe_a_refused_endpoint_says_why_and_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    cluster = FakeCluster(forbid={"list-all endpointconnections"})
    cluster.add(
        "endpoints",
        _endpoint(
            "Failed",
            "NotPermitted",
            endpointId="e-1",
            message="account team-b is not permitted by service db",
            conditions=[
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "NotPermitted",
                    "message": "account team-b is not permitted",
                    "lastTransitionTime": "2026-01-01T11:55:00Z",
                }
            ],
        ),
    )
    cluster.add(
        "events",
        {
            "metadata": {"name": "ev1"},
            "involvedObject": {"name": "db", "kind": "Endpoint"},
            "type": "Warning",
            "reason": "NotPermitted",
            "message": "not permitted",
            "lastTimestamp": "2026-01-01T11:55:00Z",
        },
    )
    code, out, _ = run(cluster, "describe", "db", capsys=capsys)
    assert code == 0
    assert "Phase:                Failed" in out
    assert "Reason:               NotPermitted" in out
    assert "account team-b is not permitted by service db" in out
    assert "Ready   False    NotPermitted" in out
    assert "Warning   NotPermitted" in out
    assert "not visible to you: it lives in the provider's namespace" in out
    assert "iam:domain::<your account>" in out.split("Likely causes:")[1]


def test_describe_an_accepted_endpoint_shows_its_data_path(capsys: pytest.CaptureFixture[str]) -> None:
    cluster = FakeCluster()
    cluster.add(
        "endpoints",
        _endpoint(
            "Accepted",
            "Accepted",
            endpointId="e-1",
            markerId=7,
            nodeIP="10.96.0.12",
            dnsName="vpce-db.team-b.svc.cluster.local",
            serviceType="Interface",
            gatewayPorts=[{"clientPort": 5432, "gatewayPort": 20001}],
        ),
    )
    cluster.add(
        "services",
        {
            "metadata": {"name": "vpce-db"},
            "spec": {"clusterIP": "10.96.0.12", "ports": [{"port": 5432, "targetPort": 20001}]},
        },
    )
    cluster.add(
        "endpointslices",
        {
            "metadata": {"name": "vpce-db-gw", "labels": {"kubernetes.io/service-name": "vpce-db"}},
            "endpoints": [{"addresses": ["10.244.1.5"]}, {"addresses": ["10.244.2.7"]}],
        },
    )
    cluster.add(
        "endpointconnections",
        {
            **connection("e-1", 7, state="Accepted", decision="Accept"),
            "metadata": {"name": "e-1", "namespace": "team-a", "labels": {"vpcep.io/endpoint-id": "e-1"}},
        },
    )
    code, out, _ = run(cluster, "describe", "db", capsys=capsys)
    assert code == 0
    assert "Node IP:              10.96.0.12" in out
    assert "Ports:                5432 -> gateway 20001" in out
    assert "Service vpce-db: ClusterIP 10.96.0.12, ports 5432->20001" in out
    assert "Gateways behind it: 10.244.1.5, 10.244.2.7" in out
    assert "Decision:             Accept (by Provider)" in out
    assert "Likely causes: none, the endpoint looks healthy." in out


def test_describe_points_at_the_gateways_when_none_backs_an_accepted_endpoint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cluster = FakeCluster()
    cluster.add("endpoints", _endpoint("Accepted", "Accepted", serviceType="Interface"))
    cluster.add(
        "services", {"metadata": {"name": "vpce-db"}, "spec": {"clusterIP": "10.96.0.12", "ports": []}}
    )
    out = run(cluster, "describe", "db", capsys=capsys)[1]
    assert "Gateways behind it: none (no gateway ready)" in out
    assert HINTS["GatewayNotReady"] in out


def test_describe_an_endpoint_the_operator_never_saw(capsys: pytest.CaptureFixture[str]) -> None:
    cluster = FakeCluster()
    cluster.add("endpoints", _endpoint(None))
    out = run(cluster, "describe", "db", capsys=capsys)[1]
    assert NO_STATUS_HINT in out
    code, _, err = run(cluster, "describe", "nope", capsys=capsys)
    assert code == 1 and "endpoint 'nope' not found in namespace team-b" in err


def test_every_reason_the_operator_reports_has_advice_or_is_healthy() -> None:
    assert {reason.value for reason in Reason} <= set(HINTS)


def test_forbidden_answers_are_reported_not_raised(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(FakeCluster(forbid={"get endpoints"}), "describe", "db", capsys=capsys)
    assert code == 2 and err.startswith("forbidden:") and "cannot do it" in err


# Formatting


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(5, "5s"), (119, "119s"), (120, "2m"), (7199, "119m"), (7200, "2h"), (86400 * 3, "3d")],
)
def test_ages_read_like_kubectl(seconds: int, shown: str) -> None:
    then = (NOW - datetime.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    assert age(then, NOW) == shown
    assert age(None, NOW) == "<none>"


def test_table_pads_columns_and_shows_missing_values() -> None:
    assert table(("A", "LONGER"), [("xx", None), ("y", 3)]).splitlines() == [
        "A    LONGER",
        "xx   <none>",
        "y    3",
    ]


# The installed command


def test_the_plugin_runs_as_a_program_and_reports_a_broken_kubeconfig(tmp_path: pathlib.Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "operator"), "KUBECONFIG": str(tmp_path / "missing")}
    helped = subprocess.run(
        [sys.executable, "-m", "vpcep.cli.kubectl_plugin", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert helped.returncode == 0
    for command in ("verify", "accept", "reject", "connections", "quota", "describe"):
        assert command in helped.stdout
    broken = subprocess.run(
        [sys.executable, "-m", "vpcep.cli.kubectl_plugin", "quota"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert broken.returncode == 2
    assert broken.stderr.startswith("error:") and "Traceback" not in broken.stderr

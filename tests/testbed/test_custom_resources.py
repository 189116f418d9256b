"""Custom resources behave as on a real cluster; the operator's CRDs rely on each of these (bad input
refused at admission with a message naming the field: R3, R13; status and generation: R6, R17)."""

from __future__ import annotations

import json
import ssl
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.cluster


def _widget(namespace: str, name: str, spec: dict[str, Any]) -> str:
    return json.dumps(
        {
            "apiVersion": "testbed.vpcep.io/v1",
            "kind": "Widget",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def _get(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    out = cluster.kubectl_run("get", "widget", name, "-n", namespace, "-o", "json").stdout
    return json.loads(out)  # type: ignore[no-any-return,unused-ignore]


def test_cel_rule_refusal_reaches_kubectl_with_its_message(
    cluster: Cluster, widget_crd: str, namespace: str
) -> None:
    proc = cluster.kubectl_run(
        "apply", "-f", "-", input=_widget(namespace, "too-big", {"size": 30, "max": 10}), check=False
    )
    assert proc.returncode != 0
    assert "spec.size must not exceed spec.max" in proc.stderr
    assert cluster.kubectl_run("get", "widgets", "-n", namespace, "-o", "name").stdout.strip() == ""


def test_schema_refusal_names_the_field_and_the_allowed_values(
    cluster: Cluster, widget_crd: str, namespace: str
) -> None:
    proc = cluster.kubectl_run(
        "apply", "-f", "-", input=_widget(namespace, "green", {"size": 1, "color": "green"}), check=False
    )
    assert proc.returncode != 0
    assert 'spec.color: Unsupported value: "green"' in proc.stderr
    assert '"red", "blue"' in proc.stderr


def test_defaults_are_applied_and_unknown_fields_pruned(
    cluster: Cluster, widget_crd: str, namespace: str
) -> None:
    # Client-side validation off: the server must prune what the schema does not know.
    cluster.kubectl_run(
        "create", "--validate=false", "-f", "-", input=_widget(namespace, "w", {"size": 2, "junk": True})
    )
    spec = _get(cluster, namespace, "w")["spec"]
    assert spec == {"size": 2, "max": 10}


def test_server_side_apply_refuses_unknown_fields_and_reports_conflicts(
    cluster: Cluster, widget_crd: str, namespace: str
) -> None:
    bad = cluster.kubectl_run(
        "apply",
        "--server-side",
        "-f",
        "-",
        input=_widget(namespace, "w", {"size": 1, "junk": 1}),
        check=False,
    )
    assert bad.returncode != 0
    assert ".spec.junk: field not declared in schema" in bad.stderr

    cluster.kubectl_run(
        "apply",
        "--server-side",
        "--field-manager=alice",
        "-f",
        "-",
        input=_widget(namespace, "w", {"size": 1}),
    )
    clash = cluster.kubectl_run(
        "apply",
        "--server-side",
        "--field-manager=bob",
        "-f",
        "-",
        input=_widget(namespace, "w", {"size": 2}),
        check=False,
    )
    assert clash.returncode != 0
    assert "conflict" in clash.stderr.lower() and "alice" in clash.stderr


def test_status_write_through_status_subresource_does_not_change_spec(
    cluster: Cluster, widget_crd: str, namespace: str
) -> None:
    cluster.kubectl_run("apply", "-f", "-", input=_widget(namespace, "w", {"size": 3}))
    cluster.kubectl_run(
        "patch",
        "widget",
        "w",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"phase": "Ready"}, "spec": {"size": 9}}),
    )
    obj = _get(cluster, namespace, "w")
    assert obj["status"] == {"phase": "Ready"}
    assert obj["spec"]["size"] == 3

    # And the main resource ignores status.
    cluster.kubectl_run(
        "patch",
        "widget",
        "w",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"status": {"phase": "Hacked"}}),
    )
    assert _get(cluster, namespace, "w")["status"] == {"phase": "Ready"}


def test_generation_bumps_on_spec_change_only(cluster: Cluster, widget_crd: str, namespace: str) -> None:
    cluster.kubectl_run("apply", "-f", "-", input=_widget(namespace, "w", {"size": 1}))
    assert _get(cluster, namespace, "w")["metadata"]["generation"] == 1

    cluster.kubectl_run("label", "widget", "w", "-n", namespace, "touched=yes")
    cluster.kubectl_run(
        "patch",
        "widget",
        "w",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status": {"phase": "Ready"}}',
    )
    assert _get(cluster, namespace, "w")["metadata"]["generation"] == 1

    cluster.kubectl_run(
        "patch", "widget", "w", "-n", namespace, "--type=merge", "-p", '{"spec": {"size": 2}}'
    )
    assert _get(cluster, namespace, "w")["metadata"]["generation"] == 2


def test_printer_columns_short_names_and_explain(cluster: Cluster, widget_crd: str, namespace: str) -> None:
    cluster.kubectl_run("apply", "-f", "-", input=_widget(namespace, "w", {"size": 7}))
    table = cluster.kubectl_run("get", "wdg", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "SIZE", "PHASE"]
    assert table[1].split() == ["w", "7"]
    explained = cluster.kubectl_run("explain", "widgets.spec").stdout
    assert "size" in explained and "color" in explained


def test_watch_streams_initial_events_then_a_bookmark(
    cluster: Cluster, widget_crd: str, namespace: str
) -> None:
    """kopf and client-go informers rely on bookmarks; a watch-list ends its initial state with one."""
    cluster.kubectl_run("apply", "-f", "-", input=_widget(namespace, "w", {"size": 1}))
    # The admin's credentials as the kube client resolved them (a token here, a client certificate on kind).
    config = cluster.api_client().configuration
    context = ssl.create_default_context(cafile=config.ssl_ca_cert)
    if config.cert_file:
        context.load_cert_chain(config.cert_file, config.key_file)
    token = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix("authorization")
    headers = {"Authorization": token} if token else {}
    query = urlencode(
        {
            "watch": "1",
            "sendInitialEvents": "true",
            "resourceVersionMatch": "NotOlderThan",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "10",
        }
    )
    request = Request(
        f"{config.host}/apis/testbed.vpcep.io/v1/namespaces/{namespace}/widgets?{query}", headers=headers
    )
    events: list[tuple[str, str]] = []
    with urlopen(request, context=context, timeout=15) as response:
        for line in response:
            event = json.loads(line)
            meta = event["object"]["metadata"]
            events.append(
                (
                    event["type"],
                    meta.get("name") or meta.get("annotations", {}).get("k8s.io/initial-events-end", ""),
                )
            )
            if event["type"] == "BOOKMARK":
                break
    assert events == [("ADDED", "w"), ("BOOKMARK", "true")]

"""R45: what the gateway channel passes on to the API server for a gateway agent, and what it refuses.

The admitted requests are exactly the ones the agent's client makes (tests/integration/test_gateway_channel.py
shows them passing on the wire); each refusal is a request a compromised gateway could try instead."""

from __future__ import annotations

import pydantic
import pytest

from vpcep.config import GatewayChannelConfig
from vpcep.domain.gateway_channel import ChannelRequest, refusal
from vpcep.gateway.agent import parse_args
from vpcep.handlers.gateway_channel import bearer_token_present

NS = "vpcep-system"
COLLECTION = f"/api/v1/namespaces/{NS}/configmaps"
ROUTES = {"labelSelector": ["vpcep.io/route=true"]}


def judged(
    method: str, path: str, query: dict[str, list[str]] | None = None, name: str | None = None
) -> str | None:
    return refusal(ChannelRequest(method, path, query or {}, name), NS)


@pytest.mark.parametrize(
    ("method", "path", "query", "name"),
    [
        ("GET", COLLECTION, ROUTES, None),
        (
            "GET",
            COLLECTION,
            {
                **ROUTES,
                "watch": ["True"],
                "resourceVersion": ["41"],
                "timeoutSeconds": ["300"],
                "allowWatchBookmarks": ["True"],
            },
            None,
        ),
        ("GET", f"{COLLECTION}/vpcep-gateway-vpcep-gateway-7d9f-abcde", {}, None),
        ("PATCH", f"{COLLECTION}/vpcep-gateway-gw-1", {}, None),
        ("PUT", f"{COLLECTION}/vpcep-gateway-gw-1", {"fieldManager": ["agent"]}, None),
        ("POST", COLLECTION, {}, "vpcep-gateway-gw-1"),
    ],
)
def test_the_requests_an_agent_makes_pass(
    method: str, path: str, query: dict[str, list[str]], name: str | None
) -> None:
    assert judged(method, path, query, name) is None


@pytest.mark.parametrize(
    ("method", "path", "query", "name", "because"),
    [
        ("GET", f"/api/v1/namespaces/{NS}/secrets", {}, None, "not served"),
        ("GET", "/api/v1/secrets", {}, None, "not served"),
        ("GET", "/api/v1/namespaces/tenant-a/configmaps", ROUTES, None, "not served"),
        ("GET", COLLECTION, {}, None, "labelSelector"),  # every ConfigMap of the operator's namespace
        ("GET", COLLECTION, {"labelSelector": ["vpcep.io/route"]}, None, "labelSelector"),
        ("GET", COLLECTION, {"labelSelector": ["vpcep.io/route=true", "x=y"]}, None, "labelSelector"),
        (
            "GET",
            COLLECTION,
            {**ROUTES, "fieldSelector": ["metadata.name=vpcep-config"]},
            None,
            "fieldSelector",
        ),
        ("GET", f"{COLLECTION}/vpcep-operator-config", {}, None, "status ConfigMaps"),
        ("GET", f"{COLLECTION}/vpcep-route-1234", {}, None, "status ConfigMaps"),
        ("PATCH", f"{COLLECTION}/vpcep-route-1234", {}, None, "status ConfigMaps"),  # rewrite someone's route
        ("DELETE", f"{COLLECTION}/vpcep-gateway-gw-2", {}, None, "DELETE"),
        ("DELETE", COLLECTION, ROUTES, None, "DELETE"),
        ("POST", COLLECTION, {}, "vpcep-route-forged", "create only"),
        ("POST", COLLECTION, {}, None, "create only"),
        ("GET", f"{COLLECTION}/vpcep-gateway-gw-1/../../secrets/token", {}, None, "status ConfigMaps"),
        ("GET", f"{COLLECTION}/vpcep-gateway-gw-1%2F..%2Fsecrets", {}, None, "status ConfigMaps"),
        ("GET", f"{COLLECTION}/vpcep-gateway-", {}, None, "status ConfigMaps"),
        ("GET", "/api/v1/namespaces/kube-system/pods/etcd/exec", {}, None, "not served"),
        ("GET", "/apis/vpcep.io/v1/endpoints", {}, None, "not served"),
        ("GET", "/version", {}, None, "not served"),
        ("PATCH", f"{COLLECTION}/vpcep-gateway-gw-1", {"dryRun": ["All"], "force": ["true"]}, None, "dryRun"),
        ("GET", COLLECTION, {**ROUTES, "watch": ["1"], "timeoutSeconds": ["86400"]}, None, "timeoutSeconds"),
        (
            "GET",
            COLLECTION,
            {**ROUTES, "watch": ["1"], "timeoutSeconds": ["30", "30"]},
            None,
            "timeoutSeconds",
        ),
        ("POST", COLLECTION, {}, "-", "create only"),
        ("GET", "/api/v1/x\n2026-12-04 INFO vpcep: forged", {}, None, "\\n"),  # a log line stays one line
    ],
)
def test_anything_else_is_refused_with_a_reason(
    method: str, path: str, query: dict[str, list[str]], name: str | None, because: str
) -> None:
    reason = judged(method, path, query, name)
    assert reason is not None and because in reason, reason


def test_an_enabled_channel_without_a_certificate_is_refused_at_load() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"gatewayChannel\.certFile"):
        GatewayChannelConfig(enabled=True)
    assert GatewayChannelConfig(enabled=True, certFile="tls.crt", keyFile="tls.key").port == 9444


def test_a_post_is_judged_again_once_its_body_is_read() -> None:
    """The channel judges method, path and query before reading a body; a POST then needs the name."""
    assert refusal(ChannelRequest("POST", COLLECTION, {}, body_read=False), NS) is None
    assert refusal(ChannelRequest("POST", f"/api/v1/namespaces/{NS}/secrets", {}, body_read=False), NS)


@pytest.mark.parametrize(
    ("header", "present"),
    [
        ("Bearer abc", True), ("bearer abc", True), ("BEARER abc", True),
        ("Bearer ", False), ("Basic abc", False), ("", False), ("Bearerabc", False),
    ],
)  # fmt: skip
def test_a_bearer_token_in_any_case_of_the_scheme_as_the_in_cluster_client_sends_it(
    header: str, present: bool
) -> None:
    assert bearer_token_present(header) is present


@pytest.mark.parametrize(
    "flags",
    [
        ["--api-server", "http://channel:9444", "--api-ca-file", "ca.crt"],
        ["--api-server", "https://channel:9444"],
    ],
)
def test_the_agent_sends_its_token_only_over_verified_https(flags: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--name", "gw", *flags])

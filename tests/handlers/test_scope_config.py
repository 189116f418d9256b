"""Namespace scope (SPEC §5): the --watch-namespace flag, watchNamespaces, and what each mode watches."""

from __future__ import annotations

import pathlib

import pytest
from pydantic import ValidationError

from vpcep.config import OperatorConfig
from vpcep.controllers.sources import (
    API_SERVER,
    ENDPOINTS,
    NAMESPACES,
    OPERATOR_CONFIG_MAPS,
    backend_targets,
    build_sources,
)
from vpcep.main import build_config, parse_args


def test_no_flag_means_every_namespace() -> None:
    config = build_config(parse_args([]))
    assert config.watchNamespaces == [] and not config.scoped
    assert {target.namespace for target in backend_targets(config)} == {None}
    sources = build_sources(config)
    assert {target.namespace for source in sources.values() for target in source.targets} == {
        None,
        "vpcep-system",
        "default",  # the API server's `kubernetes` Service and EndpointSlice only (R45)
    }
    assert {(t.kind.kind, t.label_selector) for t in sources[API_SERVER].targets} == {
        ("Service", "component=apiserver,provider=kubernetes"),
        ("EndpointSlice", "kubernetes.io/service-name=kubernetes"),
    }


def test_repeated_flag_scopes_to_those_namespaces_plus_the_operators_own() -> None:
    config = build_config(
        parse_args(["--namespace", "vpcep-ops", "--watch-namespace", "team-b", "--watch-namespace", "team-a"])
    )
    assert config.watchNamespaces == ["team-a", "team-b"] and config.scoped
    assert config.served_namespaces() == ["team-a", "team-b", "vpcep-ops"]
    sources = build_sources(config)

    def namespaces(name: str) -> list[str | None]:
        return [target.namespace for target in sources[name].targets]

    assert namespaces(ENDPOINTS) == ["team-a", "team-b", "vpcep-ops"]
    assert namespaces(NAMESPACES) == [None]  # cluster-scoped: account labels of every namespace
    assert namespaces(OPERATOR_CONFIG_MAPS) == ["vpcep-ops"]


def test_scoped_backend_watches_cover_cloud_service_backends_metadata_only() -> None:
    config = OperatorConfig(namespace="vpcep-ops", watchNamespaces=["team-a"])
    targets = backend_targets(config)
    assert {(t.kind.kind, t.namespace) for t in targets} == {
        (kind, namespace)
        for kind in ("Service", "Pod")
        for namespace in ("team-a", "vpcep-ops", "kube-system")  # kube-system: the dns cloud service (R37)
    }
    assert all(t.metadata_only and not t.replay for t in targets)


def test_flags_replace_the_files_list(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("watchNamespaces: [from-file]\n")
    assert build_config(parse_args(["--config", str(path)])).watchNamespaces == ["from-file"]
    args = parse_args(["--config", str(path), "--watch-namespace", "from-flag"])
    assert build_config(args).watchNamespaces == ["from-flag"]


def test_a_bad_namespace_name_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="watchNamespaces: 'Team_A' is not a namespace name"):
        OperatorConfig(watchNamespaces=["Team_A"])

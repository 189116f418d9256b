"""Generate `crds/<plural>.vpcep.io.yaml` from the pydantic models (the single source of truth).

    PYTHONPATH=operator python -m vpcep.api.crdgen [--out crds] [--check]     (from the repository root)

pydantic's JSON schema is turned into a *structural* OpenAPI v3 schema as the API server wants it:
`$ref`s inlined, `X | None` unions reduced to `X` (absent means unset), `const` written as a one-value
`enum`, `title` and `additionalProperties: false` dropped (the API server prunes and, with
`kubectl --validate=strict`, refuses unknown fields itself). Descriptions, defaults, bounds, enums and the
CEL rules carried in `json_schema_extra` are kept, so `kubectl explain` shows the models' docs.
`--check` exits 1 when the files on disk differ from what the models generate (CI "verify" step).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from vpcep import GROUP, VERSION
from vpcep.api.common import CrdInfo, KindModel
from vpcep.api.endpoint import Endpoint
from vpcep.api.endpoint_connection import EndpointConnection
from vpcep.api.endpoint_service import EndpointService
from vpcep.api.whitelist import Whitelist

KINDS: tuple[type[KindModel], ...] = (EndpointService, Endpoint, Whitelist, EndpointConnection)

# Keys copied from pydantic's schema, in the order they are written (stable output, readable diffs).
_KEPT_KEYS = (
    "description",
    "type",
    "format",
    "enum",
    "default",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "required",
    "properties",
    "items",
    "additionalProperties",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-validations",
)
_DROPPED_KEYS = frozenset({"title", "$defs"})


class UnsupportedSchema(ValueError):
    """The model uses a construct a structural CRD schema cannot express."""


def _resolve(node: Mapping[str, Any], defs: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Inline `$ref`, flatten `anyOf [X, null]` and single `allOf`; field-level keys override the target's."""
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        node = {**_resolve(target, defs, where), **node}
    if "allOf" in node:
        parts = node.pop("allOf")
        if len(parts) != 1:
            raise UnsupportedSchema(f"{where}: allOf with {len(parts)} parts")
        node = {**_resolve(parts[0], defs, where), **node}
    if "anyOf" in node:
        branches = [b for b in node.pop("anyOf") if b.get("type") != "null"]
        if len(branches) != 1:
            raise UnsupportedSchema(
                f"{where}: a union of {len(branches)} types is not structural; use one type"
            )
        node = {**_resolve(branches[0], defs, where), **node}
        if node.get("default", 0) is None:
            node.pop("default")
    if "oneOf" in node:
        raise UnsupportedSchema(f"{where}: oneOf is not structural")
    return node


def structural(node: Mapping[str, Any], defs: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """Convert one pydantic JSON-schema node (and its children) into a structural OpenAPI v3 node."""
    flat = _resolve(node, defs, where)
    if "const" in flat:
        flat["enum"] = [flat.pop("const")]
    if flat.get("additionalProperties") is False:
        flat.pop("additionalProperties")
    unknown = set(flat) - set(_KEPT_KEYS) - _DROPPED_KEYS
    if unknown:
        raise UnsupportedSchema(f"{where}: cannot express {sorted(unknown)} in a CRD schema")
    out: dict[str, Any] = {}
    for key in _KEPT_KEYS:
        if key not in flat:
            continue
        value = flat[key]
        if key == "properties":
            value = {name: structural(child, defs, f"{where}.{name}") for name, child in value.items()}
        elif key == "items" or (key == "additionalProperties" and isinstance(value, Mapping)):
            value = structural(value, defs, f"{where}[]")
        elif key == "description":
            value = " ".join(str(value).split())
        elif key == "x-kubernetes-validations":  # pydantic sorts keys; the rule reads best first
            order = ("rule", "message", "messageExpression", "reason", "fieldPath")
            value = [{k: rule[k] for k in order if k in rule} for rule in value]
        out[key] = value
    if "type" not in out:
        raise UnsupportedSchema(f"{where or 'root'}: no type")
    return out


def openapi_schema(model: type[KindModel]) -> dict[str, Any]:
    raw = model.model_json_schema(mode="validation")
    defs = raw.get("$defs", {})
    root = structural(raw, defs, model.__name__)
    properties = root.pop("properties")
    required = root.pop("required", [])
    return {
        **root,
        "required": required,
        "properties": {
            "apiVersion": {"type": "string", "description": "vpcep.io/v1alpha1"},
            "kind": {"type": "string", "description": model.crd.kind},
            "metadata": {"type": "object"},
            **properties,
        },
    }


def printer_columns(info: CrdInfo) -> list[dict[str, Any]]:
    columns = []
    for column in info.printer_columns:
        entry: dict[str, Any] = {"name": column.name, "type": column.type, "jsonPath": column.json_path}
        if column.description:
            entry["description"] = column.description
        if column.priority:
            entry["priority"] = column.priority
        columns.append(entry)
    return columns


def build_crd(model: type[KindModel]) -> dict[str, Any]:
    info: CrdInfo = model.crd
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{info.plural}.{GROUP}",
            "labels": {
                "app.kubernetes.io/name": "vpcep-operator",
                "app.kubernetes.io/part-of": "vpcep-operator",
            },
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": list(info.categories),
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": printer_columns(info),
                    "schema": {"openAPIV3Schema": openapi_schema(model)},
                }
            ],
        },
    }


HEADER = "# Generated by `python -m vpcep.api.crdgen` from operator/vpcep/api/. Do not edit.\n"


class _PlainDumper(yaml.SafeDumper):
    """Writes a value shared by two fields (one enum used twice) out in full, not as a YAML &anchor/*alias:
    people and GitOps diffs read these files."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(model: type[KindModel]) -> str:
    return HEADER + yaml.dump(
        build_crd(model), Dumper=_PlainDumper, sort_keys=False, width=120, allow_unicode=True
    )


def file_name(model: type[KindModel]) -> str:
    return f"{model.crd.plural}.{GROUP}.yaml"


def generate() -> dict[str, str]:
    """File name -> content for every kind."""
    return {file_name(model): render(model) for model in KINDS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("crds"), help="directory to write (default: crds)")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if the files differ")
    args = parser.parse_args(argv)
    stale = []
    for name, content in generate().items():
        path = args.out / name
        current = path.read_text() if path.exists() else None
        if current == content:
            continue
        stale.append(name)
        if not args.check:
            args.out.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    if args.check and stale:
        print(
            f"out of date with the models: {', '.join(stale)}; run python -m vpcep.api.crdgen",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

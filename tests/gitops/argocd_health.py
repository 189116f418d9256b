"""Runs the Argo CD health check (gitops/argocd/vpcep-health.lua) the way Argo CD does: the object as the Lua
global ``obj``, the script's returned table as the verdict. A real Lua interpreter (lupa), no Lua mock."""

from __future__ import annotations

import pathlib
from typing import Any

import lupa

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = REPO / "gitops" / "argocd" / "vpcep-health.lua"
PATCH = REPO / "gitops" / "argocd" / "argocd-cm-patch.yaml"
KINDS = ("EndpointService", "Endpoint", "Whitelist", "EndpointConnection")


def health(obj: dict[str, Any], script: str | None = None) -> tuple[str, str]:
    """(status, message) as Argo CD would show them for this object."""
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    verdict = lua.execute(script if script is not None else SCRIPT.read_text())
    return str(verdict["status"]), str(verdict["message"])

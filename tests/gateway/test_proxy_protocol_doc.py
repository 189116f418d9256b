"""docs/proxy-protocol.md's example header decodes to what the page says (R33)."""

from __future__ import annotations

import importlib.util
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _parser():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "backend_server", ROOT / "tests" / "dataplane" / "backend_server.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.parse_proxy_v2


def test_the_documented_example_header_decodes_to_client_destination_and_marker() -> None:
    page = (ROOT / "docs" / "proxy-protocol.md").read_text()
    example = re.search(r"marker `424242`:\n\n```\n(.*?)```", page, re.S)
    assert example, "the example block moved; keep this test pointing at it"
    raw = bytes.fromhex("".join(example[1].split()))
    parsed = _parser()(raw[:16], raw[16:])
    assert parsed["command"] == "PROXY"
    assert parsed["client"] == "10.61.1.3:40112"
    assert parsed["destination"] == "10.61.1.1:30005"
    assert parsed["marker"] == "424242"
    assert len(raw) == 16 + int.from_bytes(raw[14:16], "big")

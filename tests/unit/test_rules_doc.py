"""docs/rules.md defines every rule the repository cites (R1…R52, SPEC §1…§6), and what users read is plain
language: no CRD description, admission message, plugin help or README line leans on a bare rule number."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from vpcep.cli.hints import HINTS
from vpcep.cli.kubectl_plugin import build_parser

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "docs" / "rules.md"
# Where rules are cited: the code, the tests, the docs, the chart, the scripts, benchmarks and examples.
CITING = (
    "operator",
    "tests",
    "docs",
    "charts",
    "hack",
    "bench",
    "examples",
    "gitops",
    "README.md",
    "CHANGELOG.md",
)
SKIPPED_DIRS = {"__pycache__", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", "node_modules"}
RULE = re.compile(r"\bR(\d+[a-z]?)\b")
SECTION = re.compile(r"§\s?(\d+)")
# A rule's anchor and its bold label, as docs/rules.md writes them: <a id="r17"></a>**R17 — ...**
DEFINED_RULE = re.compile(r'<a id="r(\d+[a-z]?)"></a>\*\*R\1 — ')
DEFINED_SECTION = re.compile(r'<a id="s(\d+)"></a>')


def cited_files() -> Iterator[Path]:
    for top in CITING:
        path = REPO / top
        candidates = [path] if path.is_file() else sorted(path.rglob("*"))
        for candidate in candidates:
            relative = candidate.relative_to(REPO).parts
            generated = any(part.endswith(".egg-info") for part in relative)
            if candidate.is_file() and not generated and not SKIPPED_DIRS.intersection(relative):
                yield candidate


def text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None  # binary files cite nothing


def citations(pattern: re.Pattern[str]) -> dict[str, set[str]]:
    """Citation -> the files citing it (docs/rules.md itself included: its cross-references must resolve)."""
    found: dict[str, set[str]] = {}
    for path in cited_files():
        text = text_of(path)
        if text is not None:
            for match in pattern.finditer(text):
                found.setdefault(match.group(1), set()).add(str(path.relative_to(REPO)))
    return found


def defined(pattern: re.Pattern[str]) -> list[str]:
    return pattern.findall(RULES.read_text(encoding="utf-8"))


def test_every_cited_rule_is_defined_in_docs_rules_md() -> None:
    rules = set(defined(DEFINED_RULE))
    cited = citations(RULE)
    assert len(cited) > 40  # the scan sees the repository (a broken path list would find nothing)
    missing = {f"R{number}": sorted(files)[:3] for number, files in cited.items() if number not in rules}
    assert not missing, f"cited but not defined in docs/rules.md: {missing}"


def test_every_cited_spec_section_is_defined_in_docs_rules_md() -> None:
    sections = set(defined(DEFINED_SECTION))
    cited = citations(SECTION)
    assert cited
    missing = {f"§{number}": sorted(files)[:3] for number, files in cited.items() if number not in sections}
    assert not missing, f"cited but not defined in docs/rules.md: {missing}"


def test_each_rule_is_defined_once_and_its_anchor_is_stable() -> None:
    text = RULES.read_text(encoding="utf-8")
    anchors = re.findall(r'<a id="([^"]+)"></a>', text)
    assert len(anchors) == len(set(anchors)), "an anchor is defined twice"
    rules = defined(DEFINED_RULE)
    assert {"1", "10a", "17", "52"} <= set(rules)
    # every rule anchor is one the page also labels in bold (a typo in either would hide the rule)
    assert [a.removeprefix("r") for a in anchors if re.fullmatch(r"r\d+[a-z]?", a)] == rules
    for link in re.findall(r"\]\(#([^)]+)\)", text):
        assert link in anchors, f"docs/rules.md links to #{link}, which it does not define"


def test_readme_and_docs_link_to_the_rules() -> None:
    assert "docs/rules.md" in (REPO / "README.md").read_text(encoding="utf-8")
    docs = REPO / "docs"
    unlinked = [
        page.name
        for page in sorted(docs.glob("*.md"))
        if page != RULES and "rules.md" not in page.read_text(encoding="utf-8")
    ]
    assert not unlinked, f"docs pages that cite rules without linking docs/rules.md: {unlinked}"


# ---- what users read -----------------------------------------------------------------------------------


def strings_users_read(node: Any) -> Iterator[str]:
    """A CRD's descriptions and CEL messages: what `kubectl explain`, `kubectl get` and admission show."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("description", "message") and isinstance(value, str):
                yield value
            else:
                yield from strings_users_read(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings_users_read(item)


@pytest.mark.parametrize("crd", sorted((REPO / "crds").glob("*.yaml")), ids=lambda p: p.name)
def test_crd_descriptions_and_messages_are_plain_language(crd: Path) -> None:
    texts = list(strings_users_read(yaml.safe_load(crd.read_text(encoding="utf-8"))))
    assert texts
    bare = [text for text in texts if RULE.search(text)]
    assert not bare, f"{crd.name}: rule numbers a user cannot look up: {bare}"


def test_plugin_help_and_hints_are_plain_language() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices and isinstance(a.choices, dict))
    texts = [
        parser.format_help(),
        *(sub.format_help() for sub in subparsers.choices.values()),
        *HINTS.values(),
    ]
    bare = [text for text in texts if bare_rule_numbers(text)]
    assert not bare, f"kubectl vpcep help or hints with bare rule numbers: {bare}"


def bare_rule_numbers(text: str) -> list[str]:
    """Rule numbers not written as a pointer into docs/rules.md ("see docs/rules.md#r45" or a link)."""
    return [m.group(0) for m in RULE.finditer(text) if f"rules.md#r{m.group(1)}" not in text]


def test_readme_cites_rules_only_as_links_to_docs_rules_md() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    linked = re.compile(r"\[R(\d+[a-z]?)\]\(docs/rules\.md#r\1\)")
    assert linked.search(readme)
    unlinked = [m.group(0) for m in RULE.finditer(linked.sub("", readme))]
    assert not unlinked, f"README cites rules a reader cannot follow: {unlinked}"

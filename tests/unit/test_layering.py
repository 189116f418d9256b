"""The domain stays pure: no kopf, no kubernetes client, no I/O (house rule; STYLE.md)."""

import ast
import pathlib

DOMAIN = pathlib.Path(__file__).resolve().parents[2] / "operator" / "vpcep" / "domain"
FORBIDDEN = {
    "kopf", "kubernetes", "aiohttp", "requests", "subprocess", "socket", "os", "asyncio", "logging", "time",
}


def _imported_roots(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_domain_modules_import_nothing_that_does_io() -> None:
    modules = sorted(DOMAIN.rglob("*.py"))
    assert modules, "the domain package must exist"
    offenders = {str(m.relative_to(DOMAIN)): sorted(_imported_roots(m) & FORBIDDEN) for m in modules}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_domain_may_not_import_handlers_k8s_or_gateway() -> None:
    for module in DOMAIN.rglob("*.py"):
        text = module.read_text()
        for layer in ("vpcep.handlers", "vpcep.k8s", "vpcep.gateway"):
            assert layer not in text, f"{module.name} reaches up into {layer}"

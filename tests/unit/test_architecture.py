"""Import contracts: which package may import which (docs/architecture.md draws the same graph).

The HTTP layer serves bytes and never reaches for gRPC, SPIFFE or ACME; the core and the config
know nothing of HTTP; nothing imports the composition root; the packages form no cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.paths import REPO

SRC = REPO / "src" / "spire_oidc"
FORBIDDEN = ("grpc", "spiffe", "acme", "josepy", "google.protobuf", "spire_oidc._proto")

# What each part of spire_oidc may import from spire_oidc (a part is a package or a root module).
COMPOSITION_ROOT = {"daemon", "assembly", "publishing", "cli", "demo", "__main__"}
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "_compat": {"errors"},
    "core": {"errors", "_compat"},
    "config": {"errors", "_compat"},
    "logs": {"errors", "_compat", "config"},
    "http": {"errors", "_compat", "core", "config", "logs"},
    "sources": {"errors", "_compat", "core", "config", "logs", "_proto"},
    "storage": {"errors", "_compat", "core", "config"},
    "publish": {"errors", "_compat", "core", "config", "storage"},
    "acme": {"errors", "_compat", "core", "config", "http", "storage"},
    "doctor": {"errors", "_compat", "core", "config", "http"},
    "assembly": {
        "errors",
        "_compat",
        "core",
        "config",
        "logs",
        "http",
        "sources",
        "acme",
        "storage",
        "publish",
    },
    "publishing": {
        "errors",
        "_compat",
        "core",
        "config",
        "logs",
        "http",
        "sources",
        "storage",
        "publish",
        "assembly",
    },
    "daemon": {
        "errors",
        "_compat",
        "core",
        "config",
        "logs",
        "http",
        "sources",
        "acme",
        "storage",
        "publish",
        "assembly",
        "publishing",
    },
    "demo": {"errors", "core", "config"},
    "cli": {"errors", "config", "logs", "daemon", "demo", "doctor", "publishing"},
    "__main__": {"cli"},
}
# Third-party modules each part must never import (directly or through a lazy import).
THIRD_PARTY_FORBIDDEN: dict[str, tuple[str, ...]] = {
    "http": FORBIDDEN,
    "core": (*FORBIDDEN, "aiohttp"),
    "config": (*FORBIDDEN, "aiohttp"),
    "sources": ("aiohttp", "acme", "josepy"),
    "acme": ("grpc", "spiffe", "google.protobuf", "spire_oidc._proto"),
    "storage": (*FORBIDDEN, "aiohttp"),
    "publish": (*FORBIDDEN, "aiohttp"),
}


def _part(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _modules() -> Iterator[Path]:
    for path in sorted(SRC.rglob("*.py")):
        if "_proto" not in path.relative_to(SRC).parts:
            yield path


def _imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _imports(path: str) -> set[str]:
    return _imports_of(SRC / path)


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in _modules():
        part = _part(path)
        deps = graph.setdefault(part, set())
        for name in _imports_of(path):
            if name.startswith("spire_oidc."):
                target = name.split(".")[1]
                if target != part:
                    deps.add(target)
    return graph


def test_every_part_is_in_the_contract() -> None:
    """Every package and root module of spire_oidc has a row in the contract table."""
    parts = {_part(p) for p in _modules()} - {"__init__"}
    assert parts <= set(ALLOWED), f"add a contract row for {sorted(parts - set(ALLOWED))}"


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_part_imports_only_what_the_contract_allows(part: str) -> None:
    """Each part imports only the parts its contract row names (the architecture's arrows)."""
    extra = _graph().get(part, set()) - ALLOWED[part]
    assert not extra, f"{part} imports {sorted(extra)}, outside its contract"


@pytest.mark.parametrize("part", sorted(THIRD_PARTY_FORBIDDEN))
def test_part_imports_no_forbidden_library(part: str) -> None:
    """The HTTP layer, core and config import nothing from gRPC, SPIFFE or ACME (and core and
    config nothing from aiohttp); the sources know no HTTP or ACME library."""
    for path in _modules():
        if _part(path) != part:
            continue
        for name in _imports_of(path):
            assert not name.startswith(THIRD_PARTY_FORBIDDEN[part]), f"{path.name} imports {name}"


def test_nothing_imports_the_composition_root() -> None:
    """Only the composition root itself reaches the daemon, the CLI and the demo."""
    for part, deps in _graph().items():
        if part not in COMPOSITION_ROOT:
            assert not deps & COMPOSITION_ROOT, f"{part} imports {sorted(deps & COMPOSITION_ROOT)}"


def test_parts_form_no_cycle() -> None:
    """The import graph between parts is acyclic (so each layer can be read on its own)."""
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for dep in graph.get(node, set()):
            if state.get(dep) == 1:
                raise AssertionError("cycle: " + " -> ".join([*trail, node, dep]))
            if dep not in state:
                visit(dep, [*trail, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_cli_imports_heavy_modules_lazily() -> None:
    """cli.py imports only light modules at module level (-version answers fast)."""
    tree = ast.parse((SRC / "cli.py").read_text())
    top = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            top.add(node.module)
        elif isinstance(node, ast.Import):
            top.update(a.name for a in node.names)
    assert top <= {
        "__future__",
        "json",
        "os",
        "sys",
        "collections.abc",
        "typing",
        "spire_oidc",
        "spire_oidc.errors",
        "spire_oidc.config.goflag",
    }


ACME_MODULES = sorted(p.relative_to(SRC).as_posix() for p in (SRC / "acme").glob("*.py"))


@pytest.mark.parametrize("module", ACME_MODULES)
def test_acme_imports_neither_health_nor_metrics(module: str) -> None:
    """acme/ reaches process state and event metrics through core/, never through http.health
    or http.metrics (so the HTTP layer's health and Prometheus code stay out of ACME)."""
    for name in _imports(module):
        assert not name.startswith(("spire_oidc.http.health", "spire_oidc.http.metrics")), (
            f"{module} imports {name}"
        )

"""Import contracts: the HTTP layer serves bytes and never reaches for gRPC, SPIFFE or ACME."""

from __future__ import annotations

import ast

import pytest

from tests.paths import REPO

SRC = REPO / "src" / "spire_oidc"
FORBIDDEN = ("grpc", "spiffe", "acme", "josepy", "google.protobuf", "spire_oidc._proto")
HTTP_LAYER = [
    "http/web.py",
    "http/health.py",
    "http/httputil.py",
    "http/urls.py",
    "core/documents.py",
    "core/store.py",
    "core/keys.py",
]


def _imports(path: str) -> set[str]:
    tree = ast.parse((SRC / path).read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", HTTP_LAYER)
def test_http_layer_imports_no_upstream_client(module: str) -> None:
    """web/health/store/documents import nothing from gRPC, SPIFFE, ACME or the sources."""
    for name in _imports(module):
        assert not name.startswith(FORBIDDEN), f"{module} imports {name}"
        assert not name.startswith("spire_oidc.sources"), f"{module} imports {name}"


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

"""Every private name of another library that the provider uses still exists (spire_oidc._compat).

A failure here means an upgrade of the named library dropped or changed an internal the provider
relies on: adapt ``src/spire_oidc/_compat.py`` before raising the bound in ``pyproject.toml``.
"""

from __future__ import annotations

import ast
import importlib
import logging
from pathlib import Path

import pytest

from spire_oidc import _compat
from tests.paths import REPO

SRC = REPO / "src" / "spire_oidc"

# (module, attribute): the private names _compat reaches for.
PRIVATE_NAMES = [
    ("idna.core", "_STATUS_VALID"),
    ("idna.core", "_STATUS_MAPPED"),
    ("idna.core", "_STATUS_IGNORED"),
    ("idna.core", "_STATUS_DEVIATION"),
    ("idna.uts46data", "uts46_starts"),
    ("idna.uts46data", "uts46_statuses"),
    ("idna.uts46data", "uts46_replacements"),
    ("spiffe._proto.workload_pb2", "JWTBundlesRequest"),
    ("spiffe._proto.workload_pb2", "JWTBundlesResponse"),
    ("spiffe._proto.workload_pb2_grpc", "SpiffeWorkloadAPIStub"),
    ("logging", "FileHandler._open"),
]


@pytest.mark.parametrize(("module", "name"), PRIVATE_NAMES)
def test_private_name_still_exists(module: str, name: str) -> None:
    """Each private name _compat uses is still present in the installed library."""
    try:
        obj: object = importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - only on a broken upgrade
        pytest.fail(f"{module} cannot be imported any more ({exc}): update spire_oidc._compat")
    for part in name.split("."):
        if not hasattr(obj, part):
            pytest.fail(f"{module}.{name} is gone: update spire_oidc._compat for this version")
        obj = getattr(obj, part)


def test_idna_statuses_are_distinct_ints() -> None:
    """The four UTS #46 statuses are distinct integers, as the lookup tables store them."""
    statuses = {
        _compat.IDNA_VALID,
        _compat.IDNA_MAPPED,
        _compat.IDNA_IGNORED,
        _compat.IDNA_DEVIATION,
    }
    assert len(statuses) == 4
    assert all(isinstance(s, int) for s in statuses)


@pytest.mark.parametrize(
    ("char", "status", "replacement"),
    [
        ("a", "VALID", None),
        ("A", "MAPPED", "a"),
        ("\u00df", "DEVIATION", None),  # ß: a deviation between IDNA 2003 and 2008
        ("\u00ad", "IGNORED", None),  # soft hyphen
        ("\uff21", "MAPPED", "a"),  # fullwidth A
        ("\u00e9", "VALID", None),
    ],
)
def test_uts46_lookup_reads_the_table_as_idna_does(
    char: str, status: str, replacement: str | None
) -> None:
    """uts46_lookup gives UTS #46's status and mapping for known code points (table layout)."""
    got_status, got_replacement = _compat.uts46_lookup(ord(char))
    assert got_status == getattr(_compat, f"IDNA_{status}")
    if replacement is not None:
        assert got_replacement == replacement


def test_workload_stubs_are_the_spiffe_package_ones() -> None:
    """The lazily imported Workload API stubs are the spiffe package's generated modules."""
    from spire_oidc._compat import workload_pb2, workload_pb2_grpc

    assert workload_pb2.__name__ == "spiffe._proto.workload_pb2"
    assert workload_pb2_grpc.__name__ == "spiffe._proto.workload_pb2_grpc"
    with pytest.raises(AttributeError):
        _compat.no_such_name  # noqa: B018


def test_reopen_file_handler_switches_to_a_new_file(tmp_path: Path) -> None:
    """After the log file is moved away, reopen_file_handler writes to a new file at the path."""
    path = tmp_path / "provider.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    try:
        handler.emit(logging.makeLogRecord({"msg": "before"}))
        path.rename(tmp_path / "provider.log.1")
        old = _compat.reopen_file_handler(handler)
        assert old is not None
        old.close()
        handler.emit(logging.makeLogRecord({"msg": "after"}))
        handler.flush()
    finally:
        handler.close()
    assert path.read_text() == "after\n"
    assert (tmp_path / "provider.log.1").read_text() == "before\n"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_uses(path: Path) -> list[str]:
    """Imports of foreign private modules or names, and reads of the known private attributes."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] in ("spire_oidc", "tests", "bench", "scripts"):  # our own code
                continue
            if any(_private(p) for p in parts):
                found.append(f"from {node.module} import ...")
            found += [f"{node.module}.{a.name}" for a in node.names if _private(a.name)]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if any(_private(p) for p in a.name.split("."))]
        elif isinstance(node, ast.Attribute) and (
            node.attr.startswith("_STATUS") or node.attr == "_open"
        ):
            found.append(node.attr)
    return found


# aiohttp's internals are gathered by the HTTP layer's adapter.
_ALLOWED_ELSEWHERE = ("http/",)


def test_no_private_name_outside_compat() -> None:
    """No module but _compat (src, tests, bench, scripts) imports a foreign private module or
    reads a known private name."""
    offenders = {}
    for root in (SRC, REPO / "tests", REPO / "bench", REPO / "scripts"):
        for path in sorted(root.rglob("*.py")):
            rel_parts = path.relative_to(root).parts  # skip node_modules and venvs (.venv*)
            if "node_modules" in rel_parts or any(part.startswith(".") for part in rel_parts):
                continue
            if path == Path(__file__):
                continue
            rel = path.relative_to(SRC if root == SRC else REPO).as_posix()
            if rel == "_compat.py" or rel.startswith(("_proto/", *_ALLOWED_ELSEWHERE)):
                continue
            uses = _private_uses(path)
            if uses:
                offenders[rel] = uses
    assert offenders == {}

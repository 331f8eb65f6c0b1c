"""One exception tree: every exception class of the package derives from ProviderError, and
describe() gives the operator one line."""

from __future__ import annotations

import ast
import importlib
import inspect

import pytest

from spire_oidc.acme.session import AcmeError
from spire_oidc.errors import ConfigError, ProviderError, StartupError
from tests.paths import REPO

SRC = REPO / "src" / "spire_oidc"

# Private to one module and never raised out of it, or control flow rather than an error
# (listed in the errors.py docstring as outside the tree).
OUTSIDE_THE_TREE = {
    "_IdnaError",
    "_Syntax",
    "RangeError",
    "NotClientHello",
    "HelpRequested",
    "HclSyntaxError",
    "JsonSyntaxError",
    "_Eof",
}


def _exception_classes() -> list[tuple[str, str]]:
    """(module, class) for every class defined in src whose bases name an exception."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if rel.parts[0] == "_proto":
            continue
        tree = ast.parse(path.read_text())
        module = ".".join(("spire_oidc", *rel.with_suffix("").parts)).removesuffix(".__init__")
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(b) for b in node.bases]
                if any(b.endswith(("Error", "Exception")) or b == "OSError" for b in bases):
                    found.append((module, node.name))
    return found


def test_the_scan_finds_the_known_errors() -> None:
    """The scan below sees the package's error classes (it would pass vacuously otherwise)."""
    names = {name for _, name in _exception_classes()}
    assert {"ConfigError", "AcmeError", "CacheError", "DomainError", "FlagError"} <= names


@pytest.mark.parametrize(("module", "name"), _exception_classes())
def test_every_exception_class_derives_from_provider_error(module: str, name: str) -> None:
    """Each exception class in src is a ProviderError (or is listed as outside the tree)."""
    if name in OUTSIDE_THE_TREE:
        return
    cls = getattr(importlib.import_module(module), name)
    assert inspect.isclass(cls) and issubclass(cls, ProviderError), f"{module}.{name}"


def test_errors_docstring_draws_every_class_of_the_tree() -> None:
    """The tree drawn in errors.py names every class of the tree."""
    import spire_oidc.errors as errors

    doc = errors.__doc__ or ""
    for _, name in _exception_classes():
        if name not in OUTSIDE_THE_TREE:
            assert name in doc, f"{name} is missing from the tree in errors.py"


def test_describe_is_one_line() -> None:
    """describe() folds line breaks: one line for the operator, whatever the message."""
    err = StartupError("listen tcp 127.0.0.1:1: bind:\n  permission denied")
    assert err.describe() == "listen tcp 127.0.0.1:1: bind: permission denied"
    assert StartupError("").describe() == "StartupError"


def test_config_error_describe_names_file_position_and_key() -> None:
    """ConfigError.describe() puts file, line, column and key before SPIRE's message."""
    err = ConfigError("bad value", path="/etc/oidc.conf", line=3, column=7, key="domains")
    assert err.describe() == "/etc/oidc.conf:3:7, key domains: bad value"


def test_acme_error_describe_says_when_the_ca_asks_to_wait() -> None:
    """AcmeError keeps its fields and its description mentions the CA's Retry-After."""
    err = AcmeError("create the order: urn:ietf:params:acme:error:rateLimited", None, True, 3600)
    assert isinstance(err, ProviderError)
    assert err.transient and err.retry_after == 3600
    assert str(err) == "create the order: urn:ietf:params:acme:error:rateLimited"
    assert err.describe().endswith("(the CA asks to retry after 3600s)")


def test_library_compatible_bases_are_kept() -> None:
    """Errors that were ValueError/OSError/RuntimeError still are (callers may catch those)."""
    from spire_oidc.acme.cache import CacheError
    from spire_oidc.acme.certs import EntryError
    from spire_oidc.acme.worker import WorkerStopped
    from spire_oidc.config.domains import DomainError

    assert issubclass(CacheError, OSError)
    assert issubclass(EntryError, ValueError)
    assert issubclass(WorkerStopped, RuntimeError)
    assert issubclass(DomainError, ValueError)

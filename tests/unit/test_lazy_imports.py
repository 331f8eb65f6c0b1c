"""gRPC and py-spiffe are imported only by the sources that need them (DESIGN: data flow)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
heavy = sorted(
    m for m in sys.modules
    if m.split(".")[0] in {"grpc", "spiffe", "grpc_tools"}
    or m.startswith(("spire_oidc._proto", "spire_oidc.sources.workload_api",
                     "spire_oidc.sources.server_api", "google.protobuf"))
)
print(json.dumps(heavy))
"""


def _heavy_modules_after_importing(*modules: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *modules],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result: list[str] = json.loads(out.stdout)
    return result


@pytest.mark.parametrize(
    "module",
    [
        "spire_oidc",
        "spire_oidc.core.keys",
        "spire_oidc.sources",
        "spire_oidc.sources.base",
        "spire_oidc.config.model",
    ],
)
def test_core_modules_do_not_import_grpc_or_spiffe(module: str) -> None:
    """Importing the key logic, the source seam or the config pulls in no gRPC/protobuf/spiffe."""
    assert _heavy_modules_after_importing(module) == []


def test_all_core_modules_together_do_not_import_grpc_or_spiffe() -> None:
    """keys, sources.base and config imported together still load no gRPC/protobuf/spiffe."""
    assert (
        _heavy_modules_after_importing(
            "spire_oidc.core.keys", "spire_oidc.sources.base", "spire_oidc.config.model"
        )
        == []
    )


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        (
            "spire_oidc.sources.server_api",
            "spire_oidc._proto.spire.api.server.bundle.v1.bundle_pb2",
        ),
        ("spire_oidc.sources.workload_api", "spiffe._proto.workload_pb2"),
    ],
)
def test_probe_sees_grpc_sources(module: str, expected: str) -> None:
    """The probe does detect gRPC when a gRPC source is imported (so the tests above mean it)."""
    heavy = _heavy_modules_after_importing(module)
    assert "grpc" in heavy
    assert expected in heavy

"""gRPC's C-core log settings are in place before ``grpc`` is first imported (issue 17.7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.paths import REPO

# Records GRPC_VERBOSITY / GRPC_TRACE at the moment anything first imports grpc.
_PROBE = """
import importlib.abc, json, os, sys
seen = {}
class Probe(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "grpc" and not seen:
            seen.update(v=os.environ.get("GRPC_VERBOSITY"), t=os.environ.get("GRPC_TRACE"))
        return None
sys.meta_path.insert(0, Probe())
import importlib
importlib.import_module(sys.argv[1])
print(json.dumps(seen))
"""


def _probe(module: str, env: dict[str, str]) -> dict[str, str | None]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GRPC_")}
    path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, module],
        env={**base, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO), *path]), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, str | None] = json.loads(out.stdout)
    return result


@pytest.mark.parametrize(
    "module", ["spire_oidc.sources.workload_api", "spire_oidc.sources.server_api"]
)
def test_grpc_sources_set_defaults_before_grpc_import(module: str) -> None:
    """Importing a gRPC source sets GRPC_VERBOSITY=ERROR and an empty GRPC_TRACE first."""
    assert _probe(module, {}) == {"v": "ERROR", "t": ""}


def test_explicit_grpc_settings_are_kept() -> None:
    """A user's GRPC_VERBOSITY / GRPC_TRACE reach gRPC unchanged."""
    env = {"GRPC_VERBOSITY": "DEBUG", "GRPC_TRACE": "http"}
    assert _probe("spire_oidc.sources.workload_api", env) == {"v": "DEBUG", "t": "http"}

"""The committed SPIRE Server API stubs are exactly what scripts/gen_proto.py generates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "src" / "spire_oidc" / "_proto"
HAND_WRITTEN = {"__init__.py"}  # the package docstring; everything else is generated


def _files(tree: Path) -> dict[str, bytes]:
    return {
        p.relative_to(tree).as_posix(): p.read_bytes()
        for p in sorted(tree.rglob("*"))
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.relative_to(tree).as_posix() not in HAND_WRITTEN
    }


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    """Regenerating proto/ into a temp dir gives the committed _proto files byte for byte."""
    out = tmp_path / "_proto"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_proto.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    fresh, committed = _files(out), _files(COMMITTED)
    assert sorted(fresh) == sorted(committed), "run `python scripts/gen_proto.py`"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert stale == [], f"out of date (run `python scripts/gen_proto.py`): {stale}"


def test_every_proto_has_generated_modules() -> None:
    """Each .proto in proto/ has its _pb2 module and typed stub in the package."""
    protos = sorted((ROOT / "proto").rglob("*.proto"))
    assert protos
    for proto in protos:
        stem = proto.relative_to(ROOT / "proto").with_suffix("")
        assert (COMMITTED / f"{stem}_pb2.py").is_file(), stem
        assert (COMMITTED / f"{stem}_pb2.pyi").is_file(), stem


def test_stubs_load_next_to_pyspiffe_without_warnings() -> None:
    """Our gencode passes the protobuf/grpcio runtime checks and shares the pool with spiffe's."""
    code = (
        "import spiffe._proto.workload_pb2, spiffe._proto.workload_pb2_grpc\n"
        "from spire_oidc._proto.spire.api.server.bundle.v1 import bundle_pb2, bundle_pb2_grpc\n"
        "from spire_oidc._proto.spire.api.types import bundle_pb2 as types\n"
        "m = types.Bundle(trust_domain='example.org', jwt_authorities=[types.JWTKey(key_id='k')])\n"
        "assert types.Bundle.FromString(m.SerializeToString()) == m\n"
        "print(bundle_pb2.DESCRIPTOR.package)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "spire.api.server.bundle.v1"
    assert proc.stderr == ""

"""The file source's bundle parsing and polling (spire-behavior.md §4.3, §11 TestFileSource)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spire_oidc.config.model import FileConfig
from spire_oidc.core.clock import FakeClock
from spire_oidc.core.store import KeyStore
from spire_oidc.errors import SourceError
from spire_oidc.sources.file import FileSource, parse_bundle
from tests.keyfactory import bundle_bytes, ec_key, public_jwk


def test_parse_keeps_jwt_authorities_in_order() -> None:
    """Only jwt-svid entries are kept, in the file's order; x509 and keyless-use entries are not."""
    data = bundle_bytes(
        [
            public_jwk("b", ec_key()),
            public_jwk("x", ec_key(), use="x509-svid"),
            public_jwk("nouse", ec_key(), use=None),
            public_jwk("a", ec_key()),
        ],
        spiffe_sequence=3,
    )
    assert parse_bundle(data).kids == ("b", "a")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{}", "no authorities found"),
        (b"[]", "not a JSON object"),
        (b"{bad", "not valid JSON"),
        (b'{"keys": {}}', "not an array"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_unusable_documents(data: bytes, message: str) -> None:
    """Documents that are not bundles are errors (the last good keys stay)."""
    with pytest.raises(SourceError, match=message):
        parse_bundle(data)


def test_all_authorities_malformed_is_an_error_not_a_revocation() -> None:
    """A bundle whose every JWT authority is malformed keeps the old keys (no accidental 501)."""
    bad = {**public_jwk("k", ec_key()), "x": "AAAA"}
    with pytest.raises(SourceError, match="none of the 1 JWT authorities"):
        parse_bundle(bundle_bytes([bad]))


def test_no_jwt_authority_is_a_revocation() -> None:
    """A valid bundle with no JWT authority is an empty key set (served as 501)."""
    assert parse_bundle(bundle_bytes([])).kids == ()


async def test_poll_sequence_like_spire(tmp_path: Path) -> None:
    """Missing file -> no keys; {} -> no keys; bundle -> keys at now; unchanged -> same; changed -> new."""
    clock = FakeClock()
    store = KeyStore(set_key_use=False, clock=clock)
    path = tmp_path / "bundle.json"
    src = FileSource(FileConfig(path=str(path), poll_interval=1), clock=clock)
    await src.poll_once(store)
    assert store.current is None and "No such file" in (store.last_error or "")
    path.write_text("{}")
    await src.poll_once(store)
    assert store.current is None
    path.write_bytes(bundle_bytes([public_jwk("KID", ec_key())]))
    await src.poll_once(store)
    first = store.current
    assert first is not None and first.mod_time == clock.now()
    clock.advance(1)
    await src.poll_once(store)
    assert store.current is first
    doc = json.loads(path.read_text())
    doc["keys"][0]["kid"] = "KID2"
    path.write_text(json.dumps(doc))
    clock.advance(1)
    await src.poll_once(store)
    assert store.current is not first and store.current is not None
    assert store.current.mod_time == first.mod_time + 2

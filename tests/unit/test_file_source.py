"""The file source's bundle parsing and polling (spire-behavior.md §4.3, §11 TestFileSource)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from spire_oidc.config.model import FileConfig
from spire_oidc.core.clock import FakeClock
from spire_oidc.core.limits import LIMITS
from spire_oidc.core.store import KeyStore
from spire_oidc.errors import SourceError
from spire_oidc.sources import file as file_module
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


# -- the shared limits and parsing off the loop (issue 12 §9) -----------------------------------
_COMPACT = (",", ":")


def _bundle_of_size(entries: list[dict[str, str]], size: int) -> bytes:
    """A compact bundle of exactly ``size`` bytes: ``entries`` plus x509 padding entries."""
    head = json.dumps({"keys": entries}, separators=_COMPACT).encode()
    pad_len = size - len(head) - len(',{"use":"x509-svid","x5c":[""]}')
    pad = {"use": "x509-svid", "x5c": ["A" * pad_len]}
    data = json.dumps({"keys": [*entries, pad]}, separators=_COMPACT).encode()
    assert len(data) == size
    return data


async def _store_with(tmp_path: Path, data: bytes) -> tuple[FileSource, KeyStore, Path]:
    clock = FakeClock()
    store = KeyStore(set_key_use=False, clock=clock)
    path = tmp_path / "bundle.json"
    path.write_bytes(data)
    src = FileSource(FileConfig(path=str(path), poll_interval=1), clock=clock)
    await src.poll_once(store)
    return src, store, path


async def test_over_limit_bundle_keeps_the_last_good_keys(tmp_path: Path) -> None:
    """A bundle one byte over LIMITS.max_bundle_bytes is refused (logged) and the last good keys
    stay in service; one at the limit is published."""
    good = public_jwk("good", ec_key())
    src, store, path = await _store_with(tmp_path, bundle_bytes([good]))
    assert store.current is not None and store.current.keys.kids == ("good",)
    path.write_bytes(_bundle_of_size([public_jwk("new", ec_key())], LIMITS.max_bundle_bytes + 1))
    with capture_logs() as logs:
        await src.poll_once(store)
    assert store.current.keys.kids == ("good",)
    assert "limit" in (store.last_error or "")
    assert any(e["event"] == "bundle_file_load_failed" for e in logs)
    path.write_bytes(_bundle_of_size([public_jwk("new", ec_key())], LIMITS.max_bundle_bytes))
    await src.poll_once(store)
    assert store.current.keys.kids == ("new",)


async def test_too_many_keys_keep_the_last_good_keys(tmp_path: Path) -> None:
    """A bundle with more than LIMITS.max_keys JWT authorities is refused as a whole."""
    src, store, path = await _store_with(tmp_path, bundle_bytes([public_jwk("good", ec_key())]))
    jwk = public_jwk("k", ec_key())
    path.write_bytes(bundle_bytes([{**jwk, "kid": f"k{i}"} for i in range(LIMITS.max_keys + 1)]))
    await src.poll_once(store)
    assert store.current is not None and store.current.keys.kids == ("good",)
    assert f"more than the limit of {LIMITS.max_keys}" in (store.last_error or "")


async def test_big_bundle_is_parsed_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bundle at the limits (max_keys keys, max_bundle_bytes) is parsed in a worker thread and
    the event loop keeps ticking while it is (max tick gap well under 0.5 s)."""
    threads: list[int] = []
    real = file_module.parse_jwks

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(file_module, "parse_jwks", spy)
    jwk = public_jwk("k", ec_key())
    entries = [{**jwk, "kid": f"k{i}"} for i in range(LIMITS.max_keys)]
    data = _bundle_of_size(entries, LIMITS.max_bundle_bytes)
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)
    _src, store, _path = await _store_with(tmp_path, data)
    stop.set()
    await tick
    assert store.current is not None and len(store.current.keys.kids) == LIMITS.max_keys
    assert threads and threading.get_ident() not in threads
    assert max(gaps) < 0.5

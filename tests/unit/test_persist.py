"""Persisted last good keys: atomic, private, bounded in age, corruption-tolerant (issue 8 §2)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from pathlib import Path

from spire_oidc.core import persist
from spire_oidc.core.keys import KeySet, key_from_jwk
from tests.keyfactory import ec_key, public_jwk, rsa_key


def _keys() -> KeySet:
    return KeySet(
        (key_from_jwk(public_jwk("b", ec_key())), key_from_jwk(public_jwk("a", rsa_key())))
    )


def test_round_trip_keeps_order_and_times(tmp_path: Path) -> None:
    """Saved keys load back identical, in order, with their mod_time; files are private."""
    keys = _keys()
    d = tmp_path / "state"
    persist.save(str(d), keys, mod_time=100.0, now=200.0)
    got = persist.load(str(d), now=300.0, max_age=3600)
    assert got is not None
    assert got.keys.kids == ("b", "a") and got.keys.same_content(keys)
    assert (got.mod_time, got.saved_at) == (100.0, 200.0)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(d / persist.STATE_FILE).st_mode) == 0o600
    assert [p.name for p in d.iterdir()] == [persist.STATE_FILE]  # no temp files left


def test_only_public_members_written(tmp_path: Path) -> None:
    """The state file holds public JWK members only."""
    persist.save(str(tmp_path), _keys(), mod_time=1, now=1)
    text = (tmp_path / persist.STATE_FILE).read_text()
    for private in ('"d"', '"p"', '"q"', '"dp"', '"dq"', '"qi"', "PRIVATE"):
        assert private not in text


def test_too_old_is_not_served(tmp_path: Path) -> None:
    """Keys older than the maximum age are not loaded."""
    persist.save(str(tmp_path), _keys(), mod_time=1, now=1000)
    assert persist.load(str(tmp_path), now=1000 + 86401, max_age=86400) is None
    assert persist.load(str(tmp_path), now=1000 + 86399, max_age=86400) is not None


def test_corrupted_files_are_ignored(tmp_path: Path) -> None:
    """Garbage, a wrong format, bad keys or a truncated file load as None, never raise."""
    persist.save(str(tmp_path), _keys(), mod_time=1, now=1)
    good = (tmp_path / persist.STATE_FILE).read_bytes()
    for data in (
        b"",
        b"garbage",
        b"[]",
        b'{"format": 99}',
        good[: len(good) // 2],
        good.replace(b'"kty": "EC"', b'"kty": "XX"'),
        good.replace(b'"mod_time": 1', b'"mod_time": "x"'),
    ):
        (tmp_path / persist.STATE_FILE).write_bytes(data)
        assert persist.load(str(tmp_path), now=2, max_age=10) is None
    assert persist.load(str(tmp_path / "absent"), now=2, max_age=10) is None


def test_unwritable_directory_is_logged_not_raised(tmp_path: Path) -> None:
    """A state directory that cannot be created does not crash the provider."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    persist.save(str(blocker / "sub"), _keys(), mod_time=1, now=1)


async def test_writer_persists_latest(tmp_path: Path) -> None:
    """The background writer persists the newest offered snapshot and flushes on cancel."""
    w = persist.StateWriter(str(tmp_path), now=lambda: 5.0)
    task = asyncio.create_task(w.run())
    k1, k2 = _keys(), KeySet((key_from_jwk(public_jwk("z", ec_key())),))
    w.offer(k1, 1.0)
    w.offer(k2, 2.0)
    for _ in range(200):
        got = persist.load(str(tmp_path), now=5, max_age=10)
        if got is not None and got.keys.kids == ("z",):
            break
        await asyncio.sleep(0.01)
    assert got is not None and got.keys.kids == ("z",) and got.mod_time == 2.0
    w.offer(k1, 3.0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    got = persist.load(str(tmp_path), now=5, max_age=10)
    assert got is not None and got.mod_time == 3.0

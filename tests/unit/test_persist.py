"""Persisted last good keys: atomic, private, bounded in age, corruption-tolerant (issue 8 §2)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from spire_oidc.core import persist
from spire_oidc.core.keys import JWTKey, KeySet, jwk_members, key_from_jwk
from spire_oidc.core.limits import LIMITS
from spire_oidc.errors import StartupError
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


# -- planted state (issue 12 §4) ----------------------------------------------------------------
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand a file to uid 65534")
NOBODY = 65534


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _saved_state(tmp_path: Path) -> Path:
    d = tmp_path / "state"
    persist.save(str(d), _keys(), mod_time=1.0, now=2.0)
    return d


@pytest.mark.parametrize("entry", ["save", "load"])
def test_missing_parents_are_created_0700_under_umask_0(tmp_path: Path, entry: str) -> None:
    """Every missing component of state_dir is created 0700, whatever the umask."""
    d = tmp_path / "a" / "b" / "state"
    with _umask(0):
        if entry == "save":
            persist.save(str(d), _keys(), mod_time=1.0, now=2.0)
        else:
            persist.load(str(d), now=3.0, max_age=10)
    for component in (tmp_path / "a", tmp_path / "a" / "b", d):
        assert _mode(component) == 0o700, component


def test_world_writable_state_dir_is_refused_at_start_up(tmp_path: Path) -> None:
    """A world-writable state_dir stops start-up with the path, the mode found and the fix."""
    d = _saved_state(tmp_path)
    os.chmod(d, 0o777)
    with pytest.raises(StartupError) as err:
        persist.load(str(d), now=3.0, max_age=10)
    assert str(d) in str(err.value) and "0777" in str(err.value)
    assert f"chmod 700 {d}" in str(err.value)


def test_unsafe_state_dir_is_not_written(tmp_path: Path) -> None:
    """The writer does not write into a state_dir that became group-writable (logged)."""
    d = _saved_state(tmp_path)
    (d / persist.STATE_FILE).unlink()
    os.chmod(d, 0o770)
    with capture_logs() as logs:
        persist.save(str(d), _keys(), mod_time=1.0, now=2.0)
    assert not (d / persist.STATE_FILE).exists()
    assert [e["fix"] for e in logs if e["event"] == "state_dir_unsafe"] == [f"chmod 700 {d}"]


def test_group_writable_state_file_is_not_loaded(tmp_path: Path) -> None:
    """A group-writable state file is refused (not served) and the refusal names the fix."""
    d = _saved_state(tmp_path)
    os.chmod(d / persist.STATE_FILE, 0o620)
    with capture_logs() as logs:
        assert persist.load(str(d), now=3.0, max_age=10) is None
    unsafe = [e for e in logs if e["event"] == "state_file_unsafe"]
    assert unsafe and unsafe[0]["fix"] == f"chmod 600 {d / persist.STATE_FILE}"
    assert "0620" in unsafe[0]["problem"]


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    """A directory under /tmp that uid 65534 can traverse (pytest's tmp_path is root-only)."""
    d = Path(tempfile.mkdtemp(prefix="odp-planted-"))
    os.chmod(d, 0o711)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@needs_root
def test_state_file_planted_by_another_uid_is_not_loaded(reachable_dir: Path) -> None:
    """A state file written by another user (a real second uid, via setpriv) is not loaded."""
    d = reachable_dir / "state"
    d.mkdir(mode=0o700)
    os.chmod(d, 0o777)  # the window the attacker used
    good = reachable_dir / "good"
    persist.save(str(good), _keys(), mod_time=1.0, now=2.0)
    planted = d / persist.STATE_FILE
    subprocess.run(
        [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            "sh",
            "-c",
            'umask 077; cat > "$1"',
            "sh",
            str(planted),
        ],
        input=(good / persist.STATE_FILE).read_bytes(),
        check=True,
        timeout=10,
    )
    os.chmod(d, 0o700)  # the directory is private again; the planted file is still there
    assert os.stat(planted).st_uid == NOBODY and _mode(planted) == 0o600
    with capture_logs() as logs:
        assert persist.load(str(d), now=3.0, max_age=10) is None
    unsafe = [e for e in logs if e["event"] == "state_file_unsafe"]
    assert unsafe and f"uid {NOBODY}" in unsafe[0]["problem"]


@needs_root
def test_state_dir_owned_by_another_uid_is_refused(tmp_path: Path) -> None:
    """A state_dir owned by another uid (even 0700) stops start-up with a chown fix."""
    d = _saved_state(tmp_path)
    os.chown(d, NOBODY, NOBODY)
    with pytest.raises(StartupError, match=f"owned by uid {NOBODY}.*chown"):
        persist.load(str(d), now=3.0, max_age=10)


def test_symlinked_state_file_is_not_loaded(tmp_path: Path) -> None:
    """A symlink at the state file is not followed on load."""
    d = _saved_state(tmp_path)
    elsewhere = tmp_path / "elsewhere.json"
    (d / persist.STATE_FILE).rename(elsewhere)
    (d / persist.STATE_FILE).symlink_to(elsewhere)
    with capture_logs() as logs:
        assert persist.load(str(d), now=3.0, max_age=10) is None
    assert any(e["event"] == "state_file_unsafe" for e in logs)


# -- the shared size limit (issue 12 §9) --------------------------------------------------------
def _state_bytes(keys: KeySet) -> int:
    doc = {
        "format": persist.FORMAT_VERSION,
        "mod_time": 1.0,
        "saved_at": 2.0,
        "keys": [jwk_members(k, set_key_use=False) for k in keys.keys],
    }
    return len(json.dumps(doc, indent=2).encode())


def _keys_of_state_size(size: int) -> KeySet:
    """Keys whose state file is exactly ``size`` bytes (long kids pad it)."""
    pub = ec_key().public_key()
    base = KeySet(tuple(JWTKey(kid=f"k{i}-", public_key=pub) for i in range(4)))
    pad = size - _state_bytes(base)
    parts = [pad // 4 + (1 if i < pad % 4 else 0) for i in range(4)]
    keys = KeySet(
        tuple(JWTKey(kid=f"k{i}-" + "x" * n, public_key=pub) for i, n in enumerate(parts))
    )
    assert _state_bytes(keys) == size
    return keys


def test_state_file_at_the_limit_round_trips(tmp_path: Path) -> None:
    """A state file of exactly LIMITS.max_bundle_bytes is written and read back."""
    keys = _keys_of_state_size(LIMITS.max_bundle_bytes)
    persist.save(str(tmp_path), keys, mod_time=1.0, now=2.0)
    assert os.path.getsize(tmp_path / persist.STATE_FILE) == LIMITS.max_bundle_bytes
    got = persist.load(str(tmp_path), now=3.0, max_age=10)
    assert got is not None and got.keys.kids == keys.kids


def test_state_over_the_limit_is_not_written_and_the_stale_file_goes(tmp_path: Path) -> None:
    """A key set whose state file would exceed the limit is not written (the reader would refuse
    it) and the older file is removed, so a restart cannot restore older keys."""
    persist.save(str(tmp_path), _keys(), mod_time=1.0, now=2.0)
    with capture_logs() as logs:
        persist.save(
            str(tmp_path), _keys_of_state_size(LIMITS.max_bundle_bytes + 1), mod_time=1.0, now=2.0
        )
    assert not (tmp_path / persist.STATE_FILE).exists()
    assert any(e["event"] == "state_too_large" for e in logs)

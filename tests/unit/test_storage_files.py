"""The file:// backend: autocert layout, modes, create-exclusive, the per-key mutex, CAS races."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from spire_oidc.storage.base import CREATE, OVERWRITE, IfMatch, PreconditionFailed, StorageError
from spire_oidc.storage.files import LOCK_DIR, FileStore
from tests.paths import REPO


def lock_path(directory: Path, key: str) -> Path:
    return directory / LOCK_DIR / hashlib.sha256(key.encode()).hexdigest()[:32]


async def test_autocert_layout_paths(tmp_path: Path) -> None:
    """Key ``acme_account+key`` is ``<dir>/acme_account+key`` and ``<domain>`` is ``<dir>/<domain>``
    (Go autocert's DirCache), nested keys are subdirectories."""
    store = FileStore(str(tmp_path / "cache"))
    await store.put("acme_account+key", b"account")
    await store.put("oidc.example.org", b"cert")
    await store.put("docs/.well-known/openid-configuration", b"{}")
    assert (tmp_path / "cache" / "acme_account+key").read_bytes() == b"account"
    assert (tmp_path / "cache" / "oidc.example.org").read_bytes() == b"cert"
    assert (tmp_path / "cache/docs/.well-known/openid-configuration").read_bytes() == b"{}"
    # A file Go autocert wrote is read as it is.
    (tmp_path / "cache" / "other.example.org").write_bytes(b"go")
    os.chmod(tmp_path / "cache" / "other.example.org", 0o600)
    got = await store.get("other.example.org")
    assert got is not None and got.data == b"go"


async def test_modes_are_0700_and_0600_whatever_the_umask(tmp_path: Path) -> None:
    """Directories are created 0700 and files 0600 even with umask 000."""
    old = os.umask(0)
    try:
        store = FileStore(str(tmp_path / "a" / "b"))
        await store.put("x/y", b"1", mode=CREATE)
        await store.put("z", b"2")
    finally:
        os.umask(old)
    for d in (tmp_path / "a", tmp_path / "a/b", tmp_path / "a/b/x", tmp_path / "a/b" / LOCK_DIR):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    for f in (tmp_path / "a/b/x/y", tmp_path / "a/b/z"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    leftovers = [p.name for p in (tmp_path / "a/b").iterdir() if p.name.startswith(".")]
    assert leftovers == [LOCK_DIR]  # no temporary files left behind


async def test_group_writable_directory_is_refused(tmp_path: Path) -> None:
    """A storage directory writable by group/other is refused with reason "denied"."""
    d = tmp_path / "shared"
    d.mkdir()
    os.chmod(d, 0o770)
    store = FileStore(str(d))
    with pytest.raises(StorageError) as err:
        await store.put("k", b"v")
    assert err.value.reason == "denied" and "chmod 700" in str(err.value)


async def test_conditional_writes(tmp_path: Path) -> None:
    """CREATE is exclusive, a stale IfMatch loses, a fresh one wins and changes the ETag even
    when the content is the same."""
    store = FileStore(str(tmp_path))
    assert await store.get("k") is None
    first = await store.put("k", b"v", mode=CREATE)
    with pytest.raises(PreconditionFailed):
        await store.put("k", b"w", mode=CREATE)
    with pytest.raises(PreconditionFailed):
        await store.put("missing", b"w", mode=IfMatch(first))
    second = await store.put("k", b"v", mode=IfMatch(first))
    assert second != first
    with pytest.raises(PreconditionFailed):
        await store.put("k", b"v", mode=IfMatch(first))
    got = await store.get("k")
    assert got is not None and got.etag == second and got.content_type is None


async def test_rewrites_within_one_clock_tick_get_distinct_etags(tmp_path: Path) -> None:
    """Many identical rewrites in a tight loop never repeat an ETag (mtime is forced upward)."""
    store = FileStore(str(tmp_path))
    etags = {await store.put("k", b"same", mode=OVERWRITE) for _ in range(50)}
    assert len(etags) == 50


async def test_stale_mutex_is_broken(tmp_path: Path) -> None:
    """A mutex left by a dead writer (expired lease) is broken and the write goes through."""
    store = FileStore(str(tmp_path), lease=10.0)
    await store.put("k", b"v")
    lock = lock_path(tmp_path, "k")
    lock.write_bytes(f"deadhost:1 abc {time.time() - 1:.3f}\n".encode())
    started = time.monotonic()
    await store.put("k", b"w", mode=OVERWRITE)
    assert time.monotonic() - started < 2
    assert not lock.exists()
    assert [p for p in lock.parent.iterdir()] == []  # the broken mutex is not kept


async def test_held_mutex_makes_the_writer_wait_then_fail(tmp_path: Path) -> None:
    """A live mutex is respected: the writer waits its bound and raises StorageError."""
    store = FileStore(str(tmp_path), lock_wait=0.3)
    await store.put("k", b"v")
    lock = lock_path(tmp_path, "k")
    lock.write_bytes(f"otherhost:1 abc {time.time() + 60:.3f}\n".encode())
    with pytest.raises(StorageError) as err:
        await store.put("k", b"w")
    assert err.value.reason == "unreachable" and "mutex" in str(err.value)
    got = await store.get("k")
    assert got is not None and got.data == b"v"
    assert lock.exists()  # not broken: still someone else's


async def test_concurrent_ifmatch_writers_one_wins(tmp_path: Path) -> None:
    """N concurrent IfMatch writers with the same ETag: exactly one wins."""
    store = FileStore(str(tmp_path))
    etag = await store.put("k", b"0")
    results = await asyncio.gather(
        *(store.put("k", str(i).encode(), mode=IfMatch(etag)) for i in range(8)),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, str)]
    assert len(wins) == 1
    assert all(isinstance(r, PreconditionFailed) for r in results if not isinstance(r, str))


_INCREMENTER = """
import asyncio, sys
from spire_oidc.storage.files import FileStore
from spire_oidc.storage.base import IfMatch, PreconditionFailed

async def main(directory: str, n: int) -> None:
    store = FileStore(directory)
    done = 0
    while done < n:
        current = await store.get("counter")
        assert current is not None
        try:
            await store.put("counter", str(int(current.data) + 1).encode(), mode=IfMatch(current.etag))
        except PreconditionFailed:
            continue
        done += 1

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def test_multiprocess_cas_counter_is_exact(tmp_path: Path) -> None:
    """4 processes x 50 IfMatch increments of one counter: the final count is exactly 200."""
    store = FileStore(str(tmp_path))
    await store.put("counter", b"0", mode=CREATE)
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _INCREMENTER, str(tmp_path), "50", env=env
        )
        for _ in range(4)
    ]
    for proc in procs:
        assert await asyncio.wait_for(proc.wait(), 120) == 0
    got = await store.get("counter")
    assert got is not None and got.data == b"200"


async def test_breaking_a_stale_mutex_never_steals_a_fresh_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If a fresh holder replaced the stale mutex between our read and our rename, the fresh
    mutex is put back untouched."""
    store = FileStore(str(tmp_path))
    await store.put("k", b"v")
    lock = lock_path(tmp_path, "k")
    fresh = f"otherhost:2 fresh {time.time() + 60:.3f}\n".encode()
    lock.write_bytes(fresh)
    stale = f"deadhost:1 stale {time.time() - 1:.3f}\n".encode()
    real_read = FileStore._read_small
    calls = 0

    def read_small(path: str) -> bytes | None:
        nonlocal calls
        calls += 1
        return stale if calls == 1 else real_read(path)  # the first read saw the stale one

    monkeypatch.setattr(FileStore, "_read_small", staticmethod(read_small))
    store._break_if_stale(str(lock))
    assert lock.read_bytes() == fresh
    assert sorted(p.name for p in lock.parent.iterdir()) == [lock.name]

"""The ``file://`` backend: a directory that several replicas may share (NFS, EFS, RWX volume).

Layout: key ``a/b`` is the file ``<dir>/a/b`` (Go autocert's ``DirCache`` layout for flat keys:
``acme_account+key``, ``<domain>``). Directories are created 0700, files are 0600, and both are
checked as the state directory is (:mod:`spire_oidc.core.private_paths`): an entry owned by
another uid or writable by group/other is refused (``StorageError(reason="denied")``).

No ``flock``/``fcntl`` (unreliable on NFS); only operations that are atomic on a shared
filesystem:

* every write goes to a temporary file in the key's directory (fsync'ed), never in place;
* ``CREATE``: ``link(tmp, final)``, which fails with ``EEXIST`` when the key exists. A
  retransmitted NFS ``LINK`` can report ``EEXIST`` although it worked: the temporary file's
  link count (2) tells the truth, as in the classic NFS lock-file recipe;
* ``OVERWRITE`` and ``IfMatch``: under a per-key mutex file (``<dir>/.locks/<sha256 of key>``,
  published with ``link`` so it is never seen half-written) holding owner, nonce and expiry:
  read, compare the ETag, ``rename(tmp, final)``. A mutex older than its lease (10 s; the
  critical section takes milliseconds) is broken by renaming it to a unique name and checking
  that the renamed file is the stale one; if it is not (a fresh owner got in between), it is put
  back with ``link``. Replicas' clocks must agree within a few seconds.

The ETag is ``"<sha256(content)[:20]>-<mtime_ns>-<inode>"``, read from one open descriptor (the
file under a name is never modified in place, so content and ``fstat`` agree). Under the mutex
every write sets the new file's mtime strictly above the previous version's (``utime`` with
nanoseconds, which NFS v3/v4 carry), so two writes of the same key never share an ETag even
with identical content or a reused inode number; the content hash makes it a strong validator.

Every method runs its file I/O in a worker thread (``asyncio.to_thread``). Content-Type and
Cache-Control are not stored (read back as None).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import secrets
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Final, TypeVar

from spire_oidc.core.private_paths import (
    UnsafePathError,
    check_private_dir,
    ensure_private_dir,
    open_private_file,
)
from spire_oidc.storage.base import (
    CREATE,
    OVERWRITE,
    IfMatch,
    PreconditionFailed,
    PutMode,
    Reason,
    StorageError,
    StoredObject,
    check_key,
)

LOCK_DIR: Final = ".locks"
LEASE_SECONDS: Final = 10.0
LOCK_WAIT_SECONDS: Final = 15.0
FILE_MODE: Final = 0o600
_T = TypeVar("_T")


def _etag(data: bytes, st: os.stat_result) -> str:
    digest = hashlib.sha256(data).hexdigest()[:20]
    return f'"{digest}-{st.st_mtime_ns:x}-{st.st_ino:x}"'


class FileStore:
    """Objects as files under ``directory`` (see the module docstring)."""

    def __init__(
        self,
        directory: str,
        *,
        lease: float = LEASE_SECONDS,
        lock_wait: float = LOCK_WAIT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = os.path.abspath(directory)
        self._lease = lease
        self._lock_wait = lock_wait
        self._clock = clock
        self._owner = f"{socket.gethostname()}:{os.getpid()}"

    def describe(self) -> str:
        return f"file://{self.directory}"

    # -- paths -----------------------------------------------------------------------------

    def path(self, key: str) -> str:
        """The file that holds ``key``."""
        return os.path.join(self.directory, *check_key(key).split("/"))

    def _lock_path(self, key: str) -> str:
        name = hashlib.sha256(key.encode()).hexdigest()[:32]
        return os.path.join(self.directory, LOCK_DIR, name)

    def _fail(self, what: str, key: str, exc: OSError | UnsafePathError) -> StorageError:
        if isinstance(exc, UnsafePathError):
            return StorageError(f"{self.describe()}: {exc}", reason="denied")
        reason: Reason = (
            "denied" if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else "other"
        )
        if exc.errno in (errno.ESTALE, errno.EIO, errno.ETIMEDOUT, errno.ENOTCONN):
            reason = "unreachable"
        detail = exc.strerror or str(exc)
        return StorageError(f"{self.describe()}: {what} {key}: {detail}", reason=reason)

    # -- reads -----------------------------------------------------------------------------

    def _read(self, key: str) -> StoredObject | None:
        path = self.path(key)
        for _ in range(3):  # ESTALE: the name was renamed over on another NFS client; re-open
            try:
                fd = open_private_file(path, kind="storage object", follow_symlinks=True)
            except FileNotFoundError:
                return None
            except NotADirectoryError:
                return None
            except UnsafePathError as exc:
                raise self._fail("read", key, exc) from exc
            except OSError as exc:
                if exc.errno == errno.ESTALE:
                    continue
                raise self._fail("read", key, exc) from exc
            try:
                with os.fdopen(fd, "rb") as f:
                    st = os.fstat(f.fileno())
                    data = f.read()
            except OSError as exc:
                if exc.errno == errno.ESTALE:
                    continue
                raise self._fail("read", key, exc) from exc
            return StoredObject(data, _etag(data, st))
        raise StorageError(
            f"{self.describe()}: read {key}: stale file handle", reason="unreachable"
        )

    async def get(self, key: str) -> StoredObject | None:
        return await asyncio.to_thread(self._read, check_key(key))

    # -- writes ----------------------------------------------------------------------------

    def _ensure_dir(self, directory: str) -> None:
        ensure_private_dir(directory, kind="storage directory")
        if directory != self.directory:
            check_private_dir(self.directory, kind="storage directory")

    def _temp(self, key: str, data: bytes, *, above_mtime_ns: int | None = None) -> str:
        """A fsync'ed 0600 temporary file with ``data`` beside ``key``'s file; its mtime is set
        strictly above ``above_mtime_ns`` when given."""
        final = self.path(key)
        directory = os.path.dirname(final)
        self._ensure_dir(directory)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(final)}.", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), FILE_MODE)
                f.write(data)
                f.flush()
                if above_mtime_ns is not None:
                    self._bump_mtime(f.fileno(), above_mtime_ns)
                os.fsync(f.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return tmp

    @staticmethod
    def _bump_mtime(fd: int, above_ns: int) -> None:
        st = os.fstat(fd)
        if st.st_mtime_ns > above_ns:
            return
        step = 1_000  # a microsecond first; coarser filesystems round it away, so widen
        for _ in range(4):
            want = above_ns + step
            os.utime(fd, ns=(st.st_atime_ns, want))
            if os.fstat(fd).st_mtime_ns > above_ns:
                return
            step *= 1000
        raise OSError(errno.EINVAL, "the filesystem does not keep modification times")

    def _create(self, key: str, data: bytes) -> str:
        final = self.path(key)
        tmp = self._temp(key, data)
        try:
            try:
                os.link(tmp, final)
            except FileExistsError:
                if os.stat(tmp).st_nlink != 2:  # a retransmitted NFS LINK that did succeed
                    raise PreconditionFailed(f"{self.describe()}: {key} exists") from None
            fd = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)
            try:
                return _etag(data, os.fstat(fd))
            finally:
                os.close(fd)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def _replace(self, key: str, data: bytes, mode: PutMode) -> str:
        with self._mutex(key):
            current = self._read(key)
            if isinstance(mode, IfMatch) and (current is None or current.etag != mode.etag):
                raise PreconditionFailed(f"{self.describe()}: {key} changed (ETag mismatch)")
            above: int | None = None
            if current is not None:
                with contextlib.suppress(FileNotFoundError):
                    above = os.stat(self.path(key)).st_mtime_ns
            tmp = self._temp(key, data, above_mtime_ns=above)
            try:
                fd = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    etag = _etag(data, os.fstat(fd))
                finally:
                    os.close(fd)
                os.replace(tmp, self.path(key))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            return etag

    def _put(self, key: str, data: bytes, mode: PutMode) -> str:
        try:
            if mode is CREATE:
                return self._create(key, data)
            if mode is OVERWRITE or isinstance(mode, IfMatch):
                return self._replace(key, data, mode)
            raise ValueError(f"unknown put mode {mode!r}")
        except StorageError:
            raise
        except (OSError, UnsafePathError) as exc:
            raise self._fail("write", key, exc) from exc

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        mode: PutMode = OVERWRITE,
        content_type: str | None = None,
        cache_control: str | None = None,
    ) -> str:
        return await asyncio.to_thread(self._put, check_key(key), data, mode)

    async def close(self) -> None:
        return None

    # -- the per-key mutex -----------------------------------------------------------------

    @contextlib.contextmanager
    def _mutex(self, key: str) -> Iterator[None]:
        path = self._lock_path(key)
        self._ensure_dir(os.path.dirname(path))
        nonce = secrets.token_hex(12)
        deadline = time.monotonic() + self._lock_wait
        delay = 0.001
        while not self._try_lock(path, nonce):
            self._break_if_stale(path)
            if time.monotonic() > deadline:
                raise StorageError(
                    f"{self.describe()}: {key}: the write mutex {path} stayed held for "
                    f"{self._lock_wait:g} s",
                    reason="unreachable",
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        try:
            yield
        finally:
            self._unlock(path, nonce)

    def _try_lock(self, path: str, nonce: str) -> bool:
        record = f"{self._owner} {nonce} {self._clock() + self._lease:.3f}\n".encode()
        fd, tmp = tempfile.mkstemp(prefix=".mutex.", dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(record)
            try:
                os.link(tmp, path)
            except FileExistsError:
                return os.stat(tmp).st_nlink == 2  # a retransmitted LINK that did succeed
            return True
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    @staticmethod
    def _read_small(path: str) -> bytes | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as f:
            return f.read(4096)

    def _expired(self, record: bytes) -> bool:
        try:
            expiry = float(record.split()[2])
        except (IndexError, ValueError):
            return True  # unreadable (a torn foreign write): as good as stale
        return expiry < self._clock()

    def _break_if_stale(self, path: str) -> None:
        record = self._read_small(path)
        if record is None or not self._expired(record):
            return
        aside = f"{path}.broken.{secrets.token_hex(8)}"
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return  # released or broken by someone else meanwhile
        try:
            if self._read_small(aside) != record:
                # A fresh owner got the mutex between our read and rename: give it back.
                with contextlib.suppress(FileExistsError):
                    os.link(aside, path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(aside)

    def _unlock(self, path: str, nonce: str) -> None:
        record = self._read_small(path)
        if record is not None and nonce.encode() in record:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

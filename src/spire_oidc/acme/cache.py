"""The certificate cache, in Go autocert's ``DirCache`` layout (acme.md §5.2).

So an existing SPIRE ``cache_dir`` is reused with no new order, and the other way round:

* the directory is created with mode 0700 (each missing component, whatever the umask); every
  file is 0600 and written atomically (a temporary file in the same directory, then ``rename``);
* a directory or entry owned by another uid (root is fine) or writable by group or other is
  refused, as for ``state_dir`` (:mod:`spire_oidc.core.private_paths`): an existing unsafe
  directory stops start-up before anything binds (:func:`open_cache`); at run time an unsafe
  directory or entry raises :class:`CacheError` (logged by the manager; nothing is read from it
  or written to it);
* ``acme_account+key``: the account key (PEM, SEC1 ``EC PRIVATE KEY``, P-256); the legacy name
  ``acme_account.key`` is read when the current one is missing;
* ``<domain>``: the certificate's private key followed by its chain, leaf first.

The methods block (file I/O): call them from the ACME worker thread, not the event loop.
``cache_dir = ""`` keeps everything in memory (:class:`MemoryCache`), as SPIRE does.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Protocol

import structlog

from spire_oidc.core.private_paths import (
    UnsafePathError,
    check_private_dir,
    ensure_private_dir,
    open_private_file,
)
from spire_oidc.errors import ProviderError

log = structlog.get_logger(__name__)

ACCOUNT_KEY = "acme_account+key"
LEGACY_ACCOUNT_KEY = "acme_account.key"


class CacheError(ProviderError, OSError):
    """The cache could not be read or written (the manager logs it and carries on).

    ``reason`` is the shared storage's failure reason (:data:`spire_oidc.storage.base.REASONS`)
    when the cache is the replicas' object store, else ``"local"``.
    """

    def __init__(self, message: str, *, reason: str = "local") -> None:
        super().__init__(message)
        self.reason = reason


class Cache(Protocol):
    """Bytes by name."""

    def get(self, name: str) -> bytes | None: ...

    def put(self, name: str, data: bytes) -> None: ...

    def set_aside(self, name: str) -> str | None: ...

    def describe(self) -> str: ...


class AsyncCache(Protocol):
    """What the manager uses: the local cache through the worker (:class:`WorkerCache`) or
    the replicas' shared object store (:class:`spire_oidc.acme.shared.StoreCache`)."""

    def describe(self) -> str: ...

    async def get(self, name: str) -> bytes | None: ...

    async def put(self, name: str, data: bytes) -> None: ...

    async def put_new(self, name: str, data: bytes) -> bytes:
        """Store ``data`` unless a usable entry appeared meanwhile; what is stored afterwards
        (another replica's entry wins: the account key is created once)."""
        ...

    async def set_aside(self, name: str) -> str | None: ...


class WorkerCache:
    """A blocking :class:`Cache` run in the ACME worker thread (one replica)."""

    def __init__(self, cache: Cache, call: Callable[[Callable[[], object]], Awaitable[object]]):
        self.cache = cache
        self._call = call

    def describe(self) -> str:
        return self.cache.describe()

    async def get(self, name: str) -> bytes | None:
        data = await self._call(partial(self.cache.get, name))
        return data if isinstance(data, bytes) else None

    async def put(self, name: str, data: bytes) -> None:
        await self._call(partial(self.cache.put, name, data))

    async def put_new(self, name: str, data: bytes) -> bytes:
        await self.put(name, data)
        return data

    async def set_aside(self, name: str) -> str | None:
        moved = await self._call(partial(self.cache.set_aside, name))
        return moved if isinstance(moved, str) else None


def _check_name(name: str) -> str:
    if not name or "/" in name or name in (".", "..") or "\x00" in name:
        raise CacheError(f"invalid cache entry name {name!r}")
    return name


class DirCache:
    """Files in a directory, Go autocert's layout and modes."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._checked = False

    def describe(self) -> str:
        return self.directory

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, _check_name(name))

    def get(self, name: str) -> bytes | None:
        """The entry's bytes, or None when it does not exist; an unsafe entry is refused."""
        path = self._path(name)
        try:
            check_private_dir(self.directory, kind="ACME cache_dir")
            fd = open_private_file(path, kind="ACME cache entry", follow_symlinks=True)
            with os.fdopen(fd, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None
        except UnsafePathError as exc:
            raise CacheError(str(exc)) from exc
        except OSError as exc:
            raise CacheError(f"read {path}: {exc.strerror or exc}") from exc

    def _ensure_dir(self) -> None:
        try:
            ensure_private_dir(self.directory, kind="ACME cache_dir")
            st = os.stat(self.directory)
        except UnsafePathError as exc:
            raise CacheError(str(exc)) from exc
        except OSError as exc:
            raise CacheError(f"mkdir {self.directory}: {exc.strerror or exc}") from exc
        if not self._checked:
            self._checked = True
            if stat.S_IMODE(st.st_mode) & 0o077:
                log.warning(
                    "acme_cache_dir_permissive",
                    cache_dir=self.directory,
                    mode=oct(stat.S_IMODE(st.st_mode)),
                    detail="the cache holds private keys; 0700 is expected",
                )

    def put(self, name: str, data: bytes) -> None:
        """Write atomically: a 0600 temporary file in the directory, fsync, then rename."""
        path = self._path(name)
        self._ensure_dir()
        try:
            fd, tmp = tempfile.mkstemp(prefix=name, dir=self.directory)
        except OSError as exc:
            raise CacheError(f"create temp file in {self.directory}: {exc.strerror}") from exc
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise CacheError(f"write {path}: {exc.strerror or exc}") from exc

    def set_aside(self, name: str) -> str | None:
        """Rename an unusable entry to ``<name>.invalid`` (kept for the operator); new name."""
        src = self._path(name)
        dst = src + ".invalid"
        try:
            os.replace(src, dst)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CacheError(f"rename {src}: {exc.strerror}") from exc
        return dst


class MemoryCache:
    """``cache_dir = ""``: nothing survives a restart (SPIRE's behaviour)."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    def describe(self) -> str:
        return "memory"

    def get(self, name: str) -> bytes | None:
        return self._data.get(_check_name(name))

    def put(self, name: str, data: bytes) -> None:
        self._data[_check_name(name)] = data

    def set_aside(self, name: str) -> str | None:
        return None if self._data.pop(_check_name(name), None) is None else "(dropped)"


def open_cache(cache_dir: str) -> Cache:
    """The cache for the config's ``cache_dir`` (``""``: memory only).

    An existing directory owned by another uid or writable by group or other raises
    :class:`~spire_oidc.core.private_paths.UnsafePathError` (a ``StartupError``); a missing one
    is created 0700 at the first write, as Go autocert does.
    """
    if not cache_dir:
        return MemoryCache()
    if os.path.lexists(cache_dir):
        try:
            check_private_dir(cache_dir, kind="ACME cache_dir")  # UnsafePathError propagates
        except OSError as exc:
            log.warning("acme_cache_dir_unreadable", cache_dir=cache_dir, error=str(exc))
    return DirCache(cache_dir)

"""An in-memory :class:`~spire_oidc.storage.base.ObjectStore` with the same conditional-write
semantics as the real backends: for unit tests of the logic built on top (locks, publication),
never configured by an operator. ``fail_with`` makes every call raise, to simulate an outage."""

from __future__ import annotations

import hashlib
import itertools

from spire_oidc.storage.base import (
    CREATE,
    OVERWRITE,
    IfMatch,
    PreconditionFailed,
    PutMode,
    StorageError,
    StoredObject,
    check_key,
)


class MemoryStore:
    def __init__(self) -> None:
        self.objects: dict[str, StoredObject] = {}
        self.fail_with: StorageError | None = None
        self.puts = 0  # successful writes, for tests that count them
        self._versions = itertools.count(1)

    def describe(self) -> str:
        return "memory"

    def _check(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    async def get(self, key: str) -> StoredObject | None:
        self._check()
        return self.objects.get(check_key(key))

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        mode: PutMode = OVERWRITE,
        content_type: str | None = None,
        cache_control: str | None = None,
    ) -> str:
        self._check()
        current = self.objects.get(check_key(key))
        if mode is CREATE and current is not None:
            raise PreconditionFailed(f"{key}: exists")
        if isinstance(mode, IfMatch) and (current is None or current.etag != mode.etag):
            raise PreconditionFailed(f"{key}: changed")
        digest = hashlib.sha256(data).hexdigest()[:16]
        etag = f'"{digest}-{next(self._versions)}"'
        self.objects[key] = StoredObject(data, etag, content_type, cache_control)
        self.puts += 1
        return etag

    async def close(self) -> None:
        return None

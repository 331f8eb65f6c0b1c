"""The replicas' shared storage (``acme.storage``): layout, the cache on it, challenge answers.

Object layout under the configured location (Go autocert's names for what autocert has, so a
SPIRE ``cache_dir`` can be pointed at, and ours under ``spire-oidc/``)::

    acme_account+key                          the account key (created once, CREATE)
    <domain>                                  private key then chain, leaf first
    spire-oidc/locks/<domain>                 the order lock (acme/lock.py)
    spire-oidc/challenges/http-01/<token>     an http-01 key authorization, during a validation
    spire-oidc/challenges/tls-alpn-01/<domain>  the tls-alpn-01 key then certificate, likewise

The store has no delete: a withdrawn challenge answer (and a set-aside account key) is
overwritten with zero bytes, which every reader treats as absent.

Every call records whether the store answered (:class:`StorageStatus`: ``/ready?verbose``,
metrics ``acme_storage_errors{reason}``); a failure raises and the caller backs off.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, TypeVar

import structlog

from spire_oidc.acme.cache import CacheError
from spire_oidc.acme.certs import context_from_pem
from spire_oidc.acme.tlsalpn import ACME_TLS_ALPN
from spire_oidc.core.clock import Clock
from spire_oidc.core.events import EventMetrics, NullMetrics
from spire_oidc.storage.base import (
    CREATE,
    OVERWRITE,
    IfMatch,
    ObjectStore,
    PreconditionFailed,
    PutMode,
    StorageError,
    StoredObject,
)

log = structlog.get_logger("spire_oidc.acme")

T = TypeVar("T")

OURS: Final = "spire-oidc"
HTTP_01: Final = "http-01"
TLS_ALPN_01: Final = "tls-alpn-01"
# RFC 8555 §8.3: a token is base64url, at least 128 bits of entropy (22 characters).
TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{22,128}")
LOOKUP_TIMEOUT: Final = 2.0
LOOKUP_CONCURRENCY: Final = 8
NEGATIVE_TTL: Final = 1.0
NEGATIVE_SIZE: Final = 256


def lock_key(name: str) -> str:
    return f"{OURS}/locks/{name}"


def challenge_key(typ: str, ident: str) -> str:
    return f"{OURS}/challenges/{typ}/{ident}"


@dataclass
class StorageStatus:
    """What the replicas' storage looks like from here (health and logs)."""

    location: str
    reachable: bool | None = None  # None: not used yet
    last_error: str | None = None  # a REASONS word, never a message (health is public)
    errors: int = 0
    last_poll: float | None = None  # wall clock of the last successful certificate poll
    locks_held: set[str] = field(default_factory=set)

    def report(self, now: float) -> dict[str, object]:
        """The ``acme_storage`` section of ``/ready?verbose`` (no location: health is public)."""
        return {
            "reachable": self.reachable,
            "last_error_reason": self.last_error,
            "errors": self.errors,
            "lock_held": sorted(self.locks_held),
            "last_poll_age_seconds": (
                None if self.last_poll is None else round(max(0.0, now - self.last_poll), 3)
            ),
        }


class SharedStorage:
    """The object store plus the bookkeeping every call goes through."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        clock: Clock,
        metrics: EventMetrics | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.metrics: EventMetrics = metrics or NullMetrics()
        self.status = StorageStatus(store.describe())

    async def call(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run one store operation, recording reachability; re-raises :class:`StorageError`."""
        try:
            result = await op()
        except PreconditionFailed:
            self._ok()
            raise
        except StorageError as exc:
            self._failed(exc)
            raise
        self._ok()
        return result

    def _ok(self) -> None:
        if self.status.reachable is False:
            log.info("acme_storage_reachable", storage=self.status.location)
        self.status.reachable = True

    def _failed(self, exc: StorageError) -> None:
        if self.status.reachable is not False or self.status.last_error != exc.reason:
            log.warning(
                "acme_storage_unreachable",
                storage=self.status.location,
                reason=exc.reason,
                error=str(exc),
                detail="the current certificate keeps being served; retried with backoff",
            )
        self.status.reachable = False
        self.status.last_error = exc.reason
        self.status.errors += 1
        self.metrics.acme_storage_error(exc.reason)

    # The ObjectStore interface, so that the locks go through the same bookkeeping.
    def describe(self) -> str:
        return self.status.location

    async def get(self, key: str) -> StoredObject | None:
        return await self.call(lambda: self.store.get(key))

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        mode: PutMode = OVERWRITE,
        content_type: str | None = None,
        cache_control: str | None = None,
    ) -> str:
        return await self.call(
            lambda: self.store.put(
                key, data, mode=mode, content_type=content_type, cache_control=cache_control
            )
        )

    async def close(self) -> None:
        await self.store.close()


class StoreCache:
    """The manager's cache on the shared storage (:class:`~spire_oidc.acme.cache.AsyncCache`)."""

    def __init__(self, shared: SharedStorage) -> None:
        self.shared = shared

    def describe(self) -> str:
        return self.shared.status.location

    async def _get(self, name: str) -> StoredObject | None:
        try:
            return await self.shared.get(name)
        except StorageError as exc:
            raise CacheError(f"read {name}: {exc}", reason=exc.reason) from exc

    async def get(self, name: str) -> bytes | None:
        obj = await self._get(name)
        return obj.data if obj is not None and obj.data else None

    async def put(self, name: str, data: bytes) -> None:
        try:
            await self.shared.put(name, data, mode=OVERWRITE)
        except StorageError as exc:
            raise CacheError(f"write {name}: {exc}", reason=exc.reason) from exc

    async def put_new(self, name: str, data: bytes) -> bytes:
        current = await self._get(name)
        if current is not None and current.data:
            return current.data
        mode = CREATE if current is None else IfMatch(current.etag)
        try:
            await self.shared.put(name, data, mode=mode)
        except PreconditionFailed:
            winner = await self._get(name)
            if winner is None or not winner.data:
                raise CacheError(f"write {name}: lost a race and found nothing") from None
            log.info("acme_account_key_from_another_replica", entry=name)
            return winner.data
        except StorageError as exc:
            raise CacheError(f"write {name}: {exc}", reason=exc.reason) from exc
        return data

    async def set_aside(self, name: str) -> str | None:
        """Copy the entry to ``<name>.invalid`` and blank the original (IfMatch)."""
        current = await self._get(name)
        if current is None or not current.data:
            return None
        aside = f"{name}.invalid"
        try:
            await self.shared.put(aside, current.data, mode=OVERWRITE)
            await self.shared.put(name, b"", mode=IfMatch(current.etag))
        except StorageError as exc:  # PreconditionFailed too: another replica replaced it
            raise CacheError(f"set aside {name}: {exc}", reason=exc.reason) from exc
        return aside


class SharedChallenges:
    """Challenge answers through the storage: published by the lock holder, looked up by any
    replica that gets a validation it does not hold in memory (bounded: a token is checked
    before any lookup, at most ``LOOKUP_CONCURRENCY`` run at once, each for at most
    ``LOOKUP_TIMEOUT`` seconds, one read per key at a time, and an http-01 miss is remembered
    for ``NEGATIVE_TTL`` seconds)."""

    def __init__(self, shared: SharedStorage, names: tuple[str, ...]) -> None:
        self.shared = shared
        self.names = frozenset(names)
        self._misses: OrderedDict[str, float] = OrderedDict()  # http-01 tokens only
        self._inflight: dict[str, asyncio.Future[bytes | None]] = {}
        self.lookups = 0  # store reads made for validations (tests)
        self.served = 0  # validations answered from the storage

    # -- the holder --------------------------------------------------------------------------
    async def publish(self, typ: str, ident: str, data: bytes) -> None:
        await self.shared.put(challenge_key(typ, ident), data)

    async def withdraw(self, typ: str, ident: str) -> None:
        await self.shared.put(challenge_key(typ, ident), b"")

    # -- any replica -------------------------------------------------------------------------
    async def http01(self, token: str) -> str | None:
        """The key authorization for ``token`` from the storage, or None."""
        if not TOKEN.fullmatch(token):
            return None
        data = await self._lookup(challenge_key(HTTP_01, token))
        if data is None:
            return None
        try:
            return data.decode("ascii")
        except UnicodeDecodeError:
            return None

    async def tls_alpn(self, name: str) -> ssl.SSLContext | None:
        """The tls-alpn-01 challenge context for a configured ``name`` from the storage."""
        if name not in self.names:
            return None
        # No negative cache here: names are few (one read in flight per name bounds the load),
        # and a remembered miss would let anyone block a validation with acme-tls/1 hellos.
        data = await self._lookup(challenge_key(TLS_ALPN_01, name), remember_miss=False)
        if data is None:
            return None
        marker = data.find(b"-----BEGIN CERTIFICATE-----")
        if marker <= 0:
            return None
        try:
            return context_from_pem(data[marker:], data[:marker], alpn=[ACME_TLS_ALPN])
        except (ssl.SSLError, ValueError, OSError):
            log.warning("acme_shared_challenge_unusable", name=name)
            return None

    async def _lookup(self, key: str, *, remember_miss: bool = True) -> bytes | None:
        now = self.shared.clock.monotonic()
        missed = self._misses.get(key)
        if missed is not None and now - missed < NEGATIVE_TTL:
            return None
        running = self._inflight.get(key)
        if running is None:  # one read per key at a time; concurrent validations share it
            if len(self._inflight) >= LOOKUP_CONCURRENCY:
                return None  # a flood of distinct keys: the store is not hammered
            running = asyncio.ensure_future(self._read(key))
            self._inflight[key] = running
            running.add_done_callback(lambda _: self._inflight.pop(key, None))
        data = await asyncio.shield(running)
        if data is None and remember_miss:
            self._misses[key] = now
            self._misses.move_to_end(key)
            while len(self._misses) > NEGATIVE_SIZE:
                self._misses.popitem(last=False)
        return data

    async def _read(self, key: str) -> bytes | None:
        self.lookups += 1
        try:
            async with asyncio.timeout(LOOKUP_TIMEOUT):
                obj = await self.shared.get(key)
        except (StorageError, TimeoutError):
            return None
        if obj is None or not obj.data:
            return None
        self.served += 1
        return obj.data

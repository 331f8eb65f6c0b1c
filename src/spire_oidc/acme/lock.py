"""The order lock shared by the replicas: one object per name in the shared storage.

The lock is a JSON object ``{"owner", "state", "lease_seconds", "written_at"}`` under
``spire-oidc/locks/<name>``; every write is conditional, never exists-then-put:

* **take**: ``CREATE`` (``If-None-Match: *``) when there is no lock object, or ``IfMatch`` on
  the ETag of a ``released`` one;
* **renew**: ``IfMatch`` on the ETag this holder wrote last (a new ETag each time); a lost
  condition means another replica took the lock over: the holder stops at once;
* **release**: an ``IfMatch`` overwrite with ``state = "released"`` (no unconditional delete);
* **takeover** of a holder that died: a contender takes the lock only after it has seen the
  *same* ETag, unchanged, for a full lease measured on its **own monotonic clock**, and then
  with ``IfMatch`` on that ETag, so two contenders cannot both win. No wall clock of any
  machine is compared (``written_at`` is informational): replicas whose clocks are 30 s apart
  agree, since a live holder renews every ``lease / 3`` and so changes the ETag long before
  anyone's observation window closes.

A holder that cannot renew (storage unreachable) gives the lock up on its side once ``0.8 ×
lease`` has passed since its last successful write: a contender's window only opens at its
first read of that write, so the holder has stopped before anyone can take over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeVar

import structlog

from spire_oidc.core.clock import Clock
from spire_oidc.errors import ProviderError
from spire_oidc.storage.base import CREATE, IfMatch, ObjectStore, PreconditionFailed, StorageError

log = structlog.get_logger("spire_oidc.acme")

T = TypeVar("T")

HELD: Final = "held"
RELEASED: Final = "released"
MIN_LEASE: Final = 1.0
RENEW_FRACTION: Final = 1 / 3  # renew every lease / 3
GIVE_UP_FRACTION: Final = 0.8  # a holder that could not renew for 0.8 lease stops
RELEASE_TIMEOUT: Final = 5.0


class LockLost(ProviderError):
    """The lock was taken over (or could not be renewed in time): the holder's work stops."""


@dataclass(frozen=True)
class LockRecord:
    """What a lock object holds."""

    owner: str
    state: str  # HELD or RELEASED
    lease_seconds: float
    written_at: float  # the writer's wall clock: for humans, never compared
    retry_in: float = 0.0  # released after a failed order: nobody takes it for this long

    def encode(self) -> bytes:
        return json.dumps(
            {
                "owner": self.owner,
                "state": self.state,
                "lease_seconds": self.lease_seconds,
                "written_at": self.written_at,
                "retry_in": self.retry_in,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> LockRecord | None:
        """The record, or None when the bytes are not one (treated like a held lock)."""
        try:
            raw = json.loads(data)
            return cls(
                str(raw["owner"]),
                str(raw["state"]),
                float(raw["lease_seconds"]),
                float(raw.get("written_at", 0.0)),
                float(raw.get("retry_in", 0.0)),
            )
        except (ValueError, KeyError, TypeError):
            return None


def new_owner() -> str:
    """A random owner token (one per lock instance: a restarted replica is a new owner)."""
    return secrets.token_hex(16)


class StorageLock:
    """One replica's handle on one lock object."""

    def __init__(
        self,
        store: ObjectStore,
        key: str,
        *,
        lease: float,
        clock: Clock,
        owner: str | None = None,
    ) -> None:
        if lease < MIN_LEASE:
            raise ValueError(f"lock lease must be at least {MIN_LEASE}s, not {lease}")
        self.store = store
        self.key = key
        self.lease = lease
        self.owner = owner or new_owner()
        self._clock = clock
        self._etag: str | None = None  # the ETag we wrote last, while we hold the lock
        self._last_write = 0.0  # monotonic time of our last successful write
        self._seen: tuple[str, float] | None = None  # (another holder's ETag, first seen at)
        self.takeovers = 0

    @property
    def held(self) -> bool:
        return self._etag is not None

    def _record(self, state: str, retry_in: float = 0.0) -> bytes:
        return LockRecord(self.owner, state, self.lease, self._clock.now(), retry_in).encode()

    async def try_acquire(self) -> bool:
        """Take the lock if it is free, released, or dead for a full observed lease.

        False when another replica holds it (call again later: the observation of its ETag
        carries over between calls); :class:`StorageError` when the store fails.
        """
        if self.held:
            return True
        current = await self.store.get(self.key)
        if current is None:
            return await self._take(None)
        record = LockRecord.decode(current.data)
        released = record is not None and record.state == RELEASED
        if record is not None and record.owner == self.owner:
            return await self._take(current.etag)
        if released and record is not None and record.retry_in <= 0:
            return await self._take(current.etag)
        now = self._clock.monotonic()
        if self._seen is None or self._seen[0] != current.etag:
            self._seen = (current.etag, now)  # a new write: the window starts again
            return False
        if released and record is not None:  # the last order failed: its backoff is shared
            window = record.retry_in
        else:
            window = max(self.lease, record.lease_seconds if record is not None else 0.0)
        watched = now - self._seen[1]
        if watched < window:
            return False
        taken = await self._take(current.etag)
        if taken and not released:
            self.takeovers += 1
            log.warning(
                "acme_lock_taken_over",
                lock=self.key,
                previous_owner=record.owner if record is not None else None,
                unchanged_for_seconds=round(watched, 1),
            )
        return taken

    async def _take(self, etag: str | None) -> bool:
        mode = CREATE if etag is None else IfMatch(etag)
        try:
            self._etag = await self.store.put(self.key, self._record(HELD), mode=mode)
        except PreconditionFailed:
            return False  # another contender won the same race
        self._last_write = self._clock.monotonic()
        self._seen = None
        return True

    async def renew(self) -> None:
        """Extend the lease; :class:`LockLost` when it was taken over, :class:`StorageError`
        when the store fails (the caller retries until :meth:`expired_locally`)."""
        if self._etag is None:
            raise LockLost(f"{self.key}: not held")
        try:
            self._etag = await self.store.put(
                self.key, self._record(HELD), mode=IfMatch(self._etag)
            )
        except PreconditionFailed:
            self._etag = None
            raise LockLost(f"{self.key}: taken over by another replica") from None
        self._last_write = self._clock.monotonic()

    def expired_locally(self) -> bool:
        """True when the last successful write is too old to keep working under the lock."""
        return self._clock.monotonic() - self._last_write >= GIVE_UP_FRACTION * self.lease

    async def release(self, *, retry_in: float = 0.0) -> None:
        """Mark the lock released (IfMatch); a lost condition or a store failure is logged.

        ``retry_in`` > 0 (after a failed order): the other replicas wait that long, on their
        own clocks from when they first see this release, before taking the lock: the failure
        backoff is shared, so a CA that refuses is not asked again by every replica in turn.
        """
        etag, self._etag = self._etag, None
        if etag is None:
            return
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT):
                await self.store.put(self.key, self._record(RELEASED, retry_in), mode=IfMatch(etag))
        except TimeoutError:  # the lease runs out on its own
            log.warning("acme_lock_release_failed", lock=self.key, reason="unreachable")
        except PreconditionFailed:
            log.warning("acme_lock_release_lost", lock=self.key)
        except StorageError as exc:
            log.warning("acme_lock_release_failed", lock=self.key, reason=exc.reason)

    async def keep(self) -> None:
        """Renew every ``lease / 3`` until cancelled; raises :class:`LockLost` when lost."""
        while True:
            await self._clock.sleep(self.lease * RENEW_FRACTION)
            try:
                async with asyncio.timeout(self.lease * RENEW_FRACTION):
                    await self.renew()
            except TimeoutError:
                if self.expired_locally():
                    self._etag = None
                    raise LockLost(f"{self.key}: could not renew (timed out)") from None
                log.warning("acme_lock_renew_failed", lock=self.key, reason="unreachable")
            except StorageError as exc:
                if self.expired_locally():
                    self._etag = None
                    raise LockLost(f"{self.key}: could not renew ({exc.reason})") from exc
                log.warning("acme_lock_renew_failed", lock=self.key, reason=exc.reason)

    async def run(
        self,
        work: Callable[[], Awaitable[T]],
        *,
        retry_in: Callable[[BaseException], float] | None = None,
    ) -> T:
        """Run ``work()`` under the (held) lock, renewing it; if the lock is lost the work is
        cancelled at once and :class:`LockLost` is raised. The lock is released afterwards
        (with ``retry_in(exc)`` when the work raised ``exc``)."""
        pause = 0.0
        keeper = asyncio.create_task(self.keep(), name=f"lock:{self.key}")
        job = asyncio.ensure_future(work())
        try:
            done, _ = await asyncio.wait({keeper, job}, return_when=asyncio.FIRST_COMPLETED)
            if job in done:
                exc = job.exception()
                if exc is not None and retry_in is not None:
                    pause = retry_in(exc)
                return job.result()
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
            keeper.result()  # raises LockLost
            raise LockLost(f"{self.key}: the lock keeper stopped")
        finally:
            pending = {task for task in (keeper, job) if not task.done()}
            for task in pending:
                task.cancel()
            if pending:  # a cancellation of this task itself still propagates
                await asyncio.wait(pending)
            await self.release(retry_in=pause)

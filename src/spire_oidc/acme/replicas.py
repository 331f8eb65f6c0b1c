"""The per-name loop of a replica when ``acme.storage`` is set: one order per issuance or
renewal across every replica, and every replica serving the result.

* **Due** (no certificate, or its renewal time has come; replicas draw the same renewal jitter):
  try the name's lock (acme/lock.py). The holder re-reads the certificate from the storage
  first (another replica may just have finished): a valid one that is not due is installed and
  nothing is ordered. Otherwise it orders, with the lock renewed every ``lease / 3``; if the
  lock is lost the order stops at once. The result is written to the storage, then installed.
* **Not holder**: poll the storage every 3-5 s (jittered) while this replica has no certificate,
  its certificate is due, the lock is held by someone, or the renewal time is near; otherwise
  every 30-60 s (which still picks up a certificate another replica renewed early). A newer
  valid certificate is installed (the same swap as a renewal: no connection is dropped).
* **Storage unreachable**: the current certificate keeps being served; retried with backoff
  (1 s doubling to 1 min), reported in ``/ready?verbose`` and the metrics.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import structlog

from spire_oidc.acme.certs import CertEntry, renewal_time, utc
from spire_oidc.acme.lock import HELD, LockLost, LockRecord, StorageLock
from spire_oidc.acme.manager import AcmeManager, backoff
from spire_oidc.acme.session import AcmeError
from spire_oidc.acme.shared import SharedStorage, lock_key
from spire_oidc.core.backoff import Backoff, BackoffPolicy
from spire_oidc.core.clock import Clock
from spire_oidc.storage.base import StorageError

log = structlog.get_logger("spire_oidc.acme")

STORAGE_BACKOFF = BackoffPolicy(1.0, 60.0, jitter=0.1)


@dataclass(frozen=True)
class PollIntervals:
    """How often non-holders read the storage (seconds, jittered uniformly in each range)."""

    fast: tuple[float, float] = (3.0, 5.0)
    slow: tuple[float, float] = (30.0, 60.0)


class Replicas:
    """Coordinates one manager with the other replicas through the shared storage."""

    def __init__(
        self,
        shared: SharedStorage,
        *,
        lease: float,
        polls: PollIntervals = PollIntervals(),
        rng: random.Random | None = None,
    ) -> None:
        self.shared = shared
        self._clock: Clock = shared.clock
        self.lease = lease
        self.polls = polls
        self._rng = rng or random.Random()
        self.locks: dict[str, StorageLock] = {}
        self._busy: dict[str, bool] = {}  # the lock was held by another replica at the last poll
        self._failures: dict[str, int] = {}  # consecutive failed orders (this replica's)
        self._delays: dict[str, float] = {}  # the backoff chosen when the last order failed
        self.manager: AcmeManager | None = None

    def attach(self, manager: AcmeManager) -> None:
        self.manager = manager

    def _lock(self, name: str) -> StorageLock:
        lock = self.locks.get(name)
        if lock is None:
            lock = StorageLock(self.shared, lock_key(name), lease=self.lease, clock=self._clock)
            self.locks[name] = lock
        return lock

    def _manager(self) -> AcmeManager:
        if self.manager is None:
            raise RuntimeError("Replicas.attach() was not called")
        return self.manager

    def _due(self, name: str) -> bool:
        m = self._manager()
        return name not in m.entries or self._clock.now() >= m.renew_at[name]

    def _interval(self, name: str) -> float:
        m = self._manager()
        low, high = self.polls.fast
        slow_low, slow_high = self.polls.slow
        near = name in m.renew_at and m.renew_at[name] - self._clock.now() < slow_high
        if self._due(name) or self._busy.get(name, False) or near:
            return self._rng.uniform(low, high)
        return self._rng.uniform(slow_low, slow_high)

    async def maintain(self, name: str) -> None:
        """The loop for ``name`` (runs until cancelled)."""
        storage = Backoff(STORAGE_BACKOFF, self._rng)
        self._failures[name] = 0
        while True:
            try:
                if not self._due(name):
                    await self._clock.sleep(self._until_due_or_poll(name))
                    await self.poll(name)
                    storage.reset()
                    continue
                if not await self._lock(name).try_acquire():
                    self._busy[name] = True
                    await self._clock.sleep(self._interval(name))
                    await self.poll(name)
                    storage.reset()
                    continue
                storage.reset()
                await self._holding(name)
                self._failures[name] = 0
            except StorageError as exc:
                delay = storage.next_delay()
                log.warning(
                    "acme_storage_retry",
                    name=name,
                    reason=exc.reason,
                    next_attempt_in_seconds=round(delay, 1),
                )
                await self._clock.sleep(delay)
            except LockLost as exc:
                log.warning("acme_lock_lost", name=name, error=str(exc))
            except AcmeError as exc:
                delay = self._delays.pop(name, 0.0) or self._retry_in(name, exc)
                self._manager().failed(name, exc, self._failures[name], delay)
                await self._clock.sleep(delay)

    def _retry_in(self, name: str, exc: BaseException) -> float:
        """After a failed order: the backoff, also written into the released lock."""
        if not isinstance(exc, AcmeError):
            return 0.0
        self._failures[name] = self._failures.get(name, 0) + 1
        delay = backoff(self._failures[name], exc, self._rng)
        self._delays[name] = delay
        return delay

    def _until_due_or_poll(self, name: str) -> float:
        left = self._manager().renew_at[name] - self._clock.now()
        return max(0.0, min(left, self._interval(name)))

    async def poll(self, name: str) -> CertEntry | None:
        """Read the lock and the certificate; install a newer valid certificate."""
        m = self._manager()
        lock_obj = await self.shared.get(lock_key(name))
        record = LockRecord.decode(lock_obj.data) if lock_obj is not None else None
        self._busy[name] = record is not None and record.state == HELD
        current = m.entries.get(name)
        data = await self.shared.get(name)
        self.shared.status.last_poll = self._clock.now()
        if data is None or not data.data:
            return None
        entry = m.decode(name, data.data)
        if entry is None or (current is not None and entry.not_after <= current.not_after):
            return None
        m.install(name, entry, source="storage (issued by another replica)")
        return entry

    async def _holding(self, name: str) -> None:
        m = self._manager()
        lock = self._lock(name)
        self.shared.status.locks_held.add(name)
        m.metrics.acme_lock_held(name, True)
        log.info("acme_lock_acquired", name=name, lease_seconds=self.lease)
        try:
            await lock.run(
                lambda: self._order_or_adopt(name), retry_in=lambda e: self._retry_in(name, e)
            )
        finally:
            self.shared.status.locks_held.discard(name)
            m.metrics.acme_lock_held(name, False)

    async def _order_or_adopt(self, name: str) -> None:
        m = self._manager()
        current = m.entries.get(name)
        obj = await self.shared.get(name)
        stored = m.decode(name, obj.data) if obj is not None and obj.data else None
        now = self._clock.now()
        if stored is not None and (current is None or stored.not_after > current.not_after):
            due_at = renewal_time(stored.not_before, stored.not_after, random.Random(stored.serial))
            if due_at > now:
                m.install(name, stored, source="storage (issued by another replica)")
                return
            if current is None:  # due, but valid: serve it while the renewal runs
                m.install(name, stored, source="storage (due for renewal)")
                current = stored
        entry = await m.obtain(name)
        if not await m.store_entry(name, entry):
            log.error(
                "acme_shared_store_failed",
                name=name,
                serial=entry.serial,
                detail="served here only; other replicas order again after the lease",
            )
        m.install(name, entry, source="renewed" if current is not None else "issued")
        log.info(
            "acme_certificate_shared",
            name=name,
            serial=entry.serial,
            not_after=utc(entry.not_after),
        )

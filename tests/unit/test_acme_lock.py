"""The replicas' order lock on a shared store (MemoryStore, FakeClock): take, renew, release,
contention, takeover of a dead holder after a full observed lease, clock skew, lost renewal."""

from __future__ import annotations

import asyncio
import json

import pytest

from spire_oidc.acme.lock import LockLost, LockRecord, StorageLock
from spire_oidc.core.clock import FakeClock
from spire_oidc.storage.base import StorageError
from spire_oidc.storage.memory import MemoryStore

KEY = "spire-oidc/locks/oidc.test"
LEASE = 120.0


def _lock(store: MemoryStore, clock: FakeClock, owner: str, lease: float = LEASE) -> StorageLock:
    return StorageLock(store, KEY, lease=lease, clock=clock, owner=owner)


def _record(store: MemoryStore) -> LockRecord:
    record = LockRecord.decode(store.objects[KEY].data)
    assert record is not None
    return record


async def test_take_renew_release() -> None:
    """The first take creates the object; a renewal rewrites it (new ETag); a release marks it
    released with IfMatch, after which another owner takes it at once."""
    store, clock = MemoryStore(), FakeClock()
    a, b = _lock(store, clock, "a"), _lock(store, clock, "b")
    assert await a.try_acquire() and a.held
    assert _record(store).owner == "a" and _record(store).state == "held"
    etag = store.objects[KEY].etag
    await a.renew()
    assert store.objects[KEY].etag != etag
    assert not await b.try_acquire()
    await a.release()
    assert not a.held and _record(store).state == "released"
    assert await b.try_acquire()
    assert _record(store).owner == "b"


async def test_contention_has_exactly_one_winner() -> None:
    """Ten owners racing for a free lock: exactly one holds it."""
    store, clock = MemoryStore(), FakeClock()
    locks = [_lock(store, clock, f"o{i}") for i in range(10)]
    won = await asyncio.gather(*(lock.try_acquire() for lock in locks))
    assert sum(won) == 1


async def test_takeover_only_after_a_full_unchanged_lease() -> None:
    """A dead holder's lock is taken over only once the same ETag was seen unchanged for a full
    lease on the contender's monotonic clock, and only by one of two contenders."""
    store, clock = MemoryStore(), FakeClock()
    dead = _lock(store, clock, "dead")
    assert await dead.try_acquire()
    b, c = _lock(store, clock, "b"), _lock(store, clock, "c")
    assert not await b.try_acquire() and not await c.try_acquire()  # observation starts
    clock.advance(LEASE - 1)
    assert not await b.try_acquire() and not await c.try_acquire()
    clock.advance(1)
    won = await asyncio.gather(b.try_acquire(), c.try_acquire())
    assert sorted(won) == [False, True]
    winner = b if b.held else c
    assert winner.takeovers == 1 and _record(store).owner == winner.owner
    with pytest.raises(LockLost):
        await dead.renew()  # the dead holder, if it comes back, learns it lost


async def test_a_live_holder_that_renews_is_never_taken_over() -> None:
    """While the holder renews every lease/3, a contender never sees the same ETag for a lease."""
    store, clock = MemoryStore(), FakeClock()
    holder, other = _lock(store, clock, "h"), _lock(store, clock, "o")
    assert await holder.try_acquire()
    for _ in range(12):
        assert not await other.try_acquire()
        clock.advance(LEASE / 3)
        await holder.renew()
    assert holder.held and not other.held and _record(store).owner == "h"


async def test_clocks_30_seconds_apart_still_agree() -> None:
    """Two replicas whose wall clocks differ by 30 s: the one ahead never takes over a live
    holder, and takes over a dead one only after a full lease of its own observation."""
    store = MemoryStore()
    clock_a, clock_b = FakeClock(start=1_700_000_000.0), FakeClock(start=1_700_000_030.0)
    a, b = _lock(store, clock_a, "a", lease=60.0), _lock(store, clock_b, "b", lease=60.0)
    assert await a.try_acquire()
    for _ in range(6):  # a renews every 20 s for 2 minutes; b polls every 5 s
        for _ in range(4):
            assert not await b.try_acquire()
            clock_a.advance(5)
            clock_b.advance(5)
        await a.renew()
    written = json.loads(store.objects[KEY].data)["written_at"]
    assert written < clock_b.now() - 29  # b's wall clock says the record is 30 s old
    # a dies now: b takes over after 60 s of unchanged ETag, not 30 s sooner.
    assert not await b.try_acquire()
    clock_b.advance(30)
    assert not await b.try_acquire()
    clock_b.advance(30)
    assert await b.try_acquire()


async def test_a_lost_renewal_aborts_the_work_at_once() -> None:
    """When another replica takes the lock over, the holder's renewal fails and its work is
    cancelled immediately; the lock is not released over the new owner."""
    store, clock = MemoryStore(), FakeClock()
    holder = _lock(store, clock, "h", lease=3.0)
    assert await holder.try_acquire()
    cancelled = asyncio.Event()

    async def order() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "finished"

    task = asyncio.create_task(holder.run(order))
    await clock.wait_for_sleepers(1)
    intruder = _lock(store, clock, "i", lease=3.0)
    assert not await intruder.try_acquire()
    # Simulate a takeover: the intruder overwrites the lock (as after a missed lease).
    await intruder._take(store.objects[KEY].etag)
    clock.advance(1.0)  # the holder's renewal is due and loses
    with pytest.raises(LockLost):
        await asyncio.wait_for(task, 2.0)
    assert cancelled.is_set()
    assert _record(store).owner == "i" and _record(store).state == "held"


async def test_a_holder_that_cannot_renew_gives_up_before_a_takeover_is_possible() -> None:
    """With the store unreachable the holder keeps trying and stops its work once 0.8 lease
    passed since its last write (a contender needs a full lease from its first read)."""
    store, clock = MemoryStore(), FakeClock()
    holder = _lock(store, clock, "h", lease=3.0)
    assert await holder.try_acquire()
    task = asyncio.create_task(holder.run(lambda: asyncio.sleep(30)))
    await clock.wait_for_sleepers(1)
    store.fail_with = StorageError("down", reason="unreachable")
    clock.advance(1.0)  # first renewal fails: still within the lease
    await asyncio.sleep(0.01)
    assert not task.done()
    clock.advance(1.0)
    await asyncio.sleep(0.01)
    clock.advance(1.0)
    with pytest.raises(LockLost):
        await asyncio.wait_for(task, 2.0)


async def test_the_work_result_is_returned_and_the_lock_released() -> None:
    """Work that finishes under the lock returns its value; the lock is then released."""
    store, clock = MemoryStore(), FakeClock()
    holder = _lock(store, clock, "h")
    assert await holder.try_acquire()

    async def work() -> int:
        return 7

    assert await holder.run(work) == 7
    assert _record(store).state == "released" and not holder.held


def test_a_lease_below_one_second_is_refused() -> None:
    """The minimum lease is 1 s (small values are for tests only)."""
    with pytest.raises(ValueError, match="at least"):
        StorageLock(MemoryStore(), KEY, lease=0.5, clock=FakeClock())


async def test_a_release_after_a_failed_order_shares_its_backoff() -> None:
    """A lock released with retry_in is not taken by another replica before that delay has
    passed on its own clock (the CA is not asked again by each replica in turn)."""
    store, clock = MemoryStore(), FakeClock()
    a, b = _lock(store, clock, "a"), _lock(store, clock, "b")
    assert await a.try_acquire()
    await a.release(retry_in=60.0)
    assert _record(store).state == "released" and _record(store).retry_in == 60.0
    assert not await b.try_acquire()
    clock.advance(59)
    assert not await b.try_acquire()
    clock.advance(1)
    assert await b.try_acquire() and b.takeovers == 0

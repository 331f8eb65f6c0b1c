"""The publisher on an in-memory store with a fake clock: order, skips, the empty-set and
first-real-set rules, no rollback between replicas, retries with backoff and failure reasons."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import pytest

from spire_oidc.core.clock import FakeClock
from spire_oidc.core.keys import KeySet
from spire_oidc.core.publication import PublishStatus
from spire_oidc.core.store import KeyStore
from spire_oidc.publish.publisher import Publisher
from spire_oidc.publish.render import STATE_KEY
from spire_oidc.storage.base import StorageError, StoredObject
from spire_oidc.storage.memory import MemoryStore
from tests.fakes.sink import wait_until
from tests.unit.publish_support import (
    DISCOVERY_KEY,
    JWKS_KEY,
    CorruptingStore,
    RecordingStore,
    keyset,
    target,
)


def kids_in(store: MemoryStore) -> list[str]:
    return [k["kid"] for k in json.loads(store.objects[JWKS_KEY].data)["keys"]]


def make(store: MemoryStore, clock: FakeClock) -> tuple[Publisher, PublishStatus]:
    status = PublishStatus(target="memory")
    return Publisher(store, target(), status, clock=clock), status


class Running:
    """A KeyStore feeding a running publisher (as the daemon wires them)."""

    def __init__(self, store: MemoryStore, clock: FakeClock) -> None:
        self.clock = clock
        self.keys = KeyStore(set_key_use=False, clock=clock)
        self.publisher, self.status = make(store, clock)
        self.keys.add_delivery_listener(self.publisher.offer)
        self.task: asyncio.Task[None] | None = None

    async def until(self, done: Callable[[], bool], within: float = 5.0) -> None:
        await wait_until(done, within=within)


@pytest.fixture
async def running() -> AsyncIterator[Callable[[MemoryStore, FakeClock], Running]]:
    started: list[Running] = []

    def start(store: MemoryStore, clock: FakeClock) -> Running:
        r = Running(store, clock)
        r.task = asyncio.create_task(r.publisher.run())
        started.append(r)
        return r

    yield start
    for r in started:
        assert r.task is not None
        r.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await r.task


async def test_jwks_is_written_before_discovery_and_read_back() -> None:
    """A first publication writes the record, then the JWKS, then the discovery document."""
    store = RecordingStore()
    publisher, status = make(store, FakeClock())
    result = await publisher.publish(keyset("a"))
    assert result.outcome == "written" and result.writes == 3
    assert store.written == [STATE_KEY, JWKS_KEY, DISCOVERY_KEY]
    obj = store.objects[JWKS_KEY]
    assert (obj.content_type, obj.cache_control) == ("application/json", "public, max-age=300")
    assert status.writes == 3


async def test_equal_stored_bytes_skip_the_write() -> None:
    """Publishing the same key set again writes nothing and counts a skip."""
    store = RecordingStore()
    publisher, status = make(store, FakeClock())
    await publisher.publish(keyset("a", "b"))
    store.written.clear()
    result = await publisher.publish(keyset("b", "a"))
    assert result.outcome == "in_sync" and store.written == []
    assert (status.writes, status.skips) == (3, 1)


async def test_a_rotation_rewrites_only_what_changed() -> None:
    """With discovery independent of the keys, a rotation writes the record and the JWKS."""
    store = RecordingStore()
    publisher, _ = make(store, FakeClock())
    await publisher.publish(keyset("a"))
    store.written.clear()
    await publisher.publish(keyset("a", "b"))
    assert store.written == [STATE_KEY, JWKS_KEY]
    assert kids_in(store) == ["a", "b"]


async def test_changed_cache_control_is_rewritten() -> None:
    """Same bytes but another Cache-Control (a config change) is not "equal": it is rewritten."""
    store = MemoryStore()
    await make(store, FakeClock())[0].publish(keyset("a"))
    other = Publisher(
        store,
        target(keys_cache_control="public, max-age=60"),
        PublishStatus("m"),
        clock=FakeClock(),
    )
    assert (await other.publish(keyset("a"))).outcome == "written"
    assert store.objects[JWKS_KEY].cache_control == "public, max-age=60"


async def test_nothing_is_published_before_the_first_delivery(running) -> None:  # type: ignore[no-untyped-def]
    """Restored keys (state_dir) are served but never published; the first delivery is."""
    clock = FakeClock()
    store = MemoryStore()
    r = running(store, clock)
    r.keys.restore(keyset("old"), clock.now() - 60)
    await asyncio.sleep(0.05)
    assert store.objects == {} and r.status.phase == "waiting_for_keys"
    r.keys.publish(keyset("old"))  # the source confirms the restored keys: now published
    await r.until(lambda: JWKS_KEY in store.objects and not r.status.pending)
    assert kids_in(store) == ["old"] and r.status.phase == "in_sync"
    assert r.status.lag.count == 1


async def test_an_empty_set_is_published_only_when_the_source_delivers_it(running) -> None:  # type: ignore[no-untyped-def]
    """Revocation: a delivered empty set replaces the published one ({"keys": []})."""
    clock = FakeClock()
    store = MemoryStore()
    r = running(store, clock)
    r.keys.publish(keyset("a"))
    await r.until(lambda: JWKS_KEY in store.objects and not r.status.pending)
    r.keys.publish(KeySet())
    await r.until(lambda: kids_in(store) == [])
    assert json.loads(store.objects[JWKS_KEY].data) == {"keys": []}


async def test_a_fresh_process_with_an_empty_set_leaves_the_store_alone() -> None:
    """A process whose source never delivered the stored kids cannot revoke them (behind)."""
    store = MemoryStore()
    await make(store, FakeClock())[0].publish(keyset("a"))
    fresh, _ = make(store, FakeClock())
    result = await fresh.publish(KeySet())
    assert result.outcome == "behind" and kids_in(store) == ["a"]


class Replica:
    """A key store and a publisher fed by it, driven step by step (no background task)."""

    def __init__(self, store: MemoryStore, clock: FakeClock) -> None:
        self.keys = KeyStore(set_key_use=False, clock=clock)
        self.publisher, self.status = make(store, clock)
        self.keys.add_delivery_listener(self.publisher.offer)

    async def deliver(self, ks: KeySet) -> str:
        """The source delivers ``ks``; publish it once; the outcome."""
        self.keys.publish(ks)
        return (await self.publisher.publish(ks)).outcome


async def test_two_replicas_rotate_without_rollback_or_flapping() -> None:
    """Replica B lags A through a rotation: B never rolls the store back; writes are counted."""
    store = RecordingStore()
    clock = FakeClock()
    a, b = Replica(store, clock), Replica(store, clock)
    steps = [  # (A's source, B's source): B is one step behind A throughout
        (("k1",), ("k1",)),
        (("k1", "k2"), ("k1",)),
        (("k2",), ("k1", "k2")),
        (("k2", "k3"), ("k2",)),
        (("k2", "k3"), ("k2", "k3")),
    ]
    published, outcomes_b = [], []
    for ka, kb in steps:
        await a.deliver(keyset(*ka))
        outcomes_b.append(await b.deliver(keyset(*kb)))
        published.append(tuple(kids_in(store)))
    assert published == [("k1",), ("k1", "k2"), ("k2",), ("k2", "k3"), ("k2", "k3")]
    assert outcomes_b == ["in_sync", "behind", "behind", "behind", "in_sync"]
    # Four changes of the published set: one record and one JWKS each, never more.
    assert store.written.count(JWKS_KEY) == 4 and store.written.count(STATE_KEY) == 4
    assert store.written.count(DISCOVERY_KEY) == 1


async def test_a_fresh_replica_supersedes_stale_kids_by_a_newer_one() -> None:
    """A process that never saw k1 may still drop it once it holds a kid published after it."""
    store = MemoryStore()
    clock = FakeClock()
    a = Replica(store, clock)
    await a.deliver(keyset("k1"))
    await a.deliver(keyset("k1", "k2"))
    fresh = Replica(store, clock)  # e.g. the one-shot publish command
    assert await fresh.deliver(keyset("k2")) == "written"
    assert kids_in(store) == ["k2"]


async def test_a_lost_condition_rereads_and_redecides() -> None:
    """If another replica writes between our read and our write, we re-read and re-decide."""
    store = MemoryStore()
    clock = FakeClock()
    a, b = Replica(store, clock), Replica(store, clock)
    await a.deliver(keyset("k1"))
    await a.deliver(keyset("k1", "k2"))
    original_get = store.get
    sneaked = False

    async def get(key: str) -> StoredObject | None:
        nonlocal sneaked
        obj = await original_get(key)
        if key == DISCOVERY_KEY and not sneaked:  # B has read everything: A rotates now
            sneaked = True
            await a.deliver(keyset("k2"))
        return obj

    store.get = get  # type: ignore[method-assign]
    # B's set adds k3 to what it read: allowed then, but k1 is retired by the time it writes.
    assert await b.deliver(keyset("k1", "k2", "k3")) == "behind"
    assert kids_in(store) == ["k2"]


async def test_outage_retries_with_backoff_then_catches_up(running) -> None:  # type: ignore[no-untyped-def]
    """Failures are counted by reason and retried with growing delays until the store is back."""
    clock = FakeClock()
    store = MemoryStore()
    r = running(store, clock)
    store.fail_with = StorageError("connection refused", reason="unreachable")
    r.keys.publish(keyset("a"))
    for _ in range(4):
        await clock.wait_for_sleepers(1)
        deadline = clock.next_deadline()
        assert deadline is not None
        clock.advance(deadline)
        await asyncio.sleep(0.01)
    assert r.status.failures["unreachable"] >= 4
    assert r.status.phase == "retrying" and r.status.pending
    assert r.status.last_error_reason == "unreachable"
    delays = [d for d in clock.slept if d < 100]
    assert delays[2] > delays[0]  # the backoff grows
    store.fail_with = None
    await clock.wait_for_sleepers(1)
    clock.advance(clock.next_deadline() or 0)
    await r.until(lambda: not r.status.pending)
    assert kids_in(store) == ["a"] and r.status.last_error_reason is None
    assert r.status.lag.count == 1 and r.status.lag.total > 0


async def test_read_back_mismatch_is_a_failure() -> None:
    """A store that returns other bytes than were written fails with reason "mismatch"."""
    from spire_oidc.publish.publisher import MismatchError, failure_reason

    publisher, _ = make(CorruptingStore(), FakeClock())
    with pytest.raises(MismatchError) as info:
        await publisher.publish(keyset("a"))
    assert failure_reason(info.value) == "mismatch"


async def test_an_unreadable_record_is_never_overwritten() -> None:
    """A state record this version cannot read stops publication with reason "invalid"."""
    store = MemoryStore()
    await store.put(STATE_KEY, b"garbage")
    publisher, _ = make(store, FakeClock())
    with pytest.raises(StorageError) as info:
        await publisher.publish(keyset("a"))
    assert info.value.reason == "invalid"
    assert store.objects[STATE_KEY].data == b"garbage" and JWKS_KEY not in store.objects


async def test_offer_never_blocks_and_coalesces(running) -> None:  # type: ignore[no-untyped-def]
    """Deliveries during a slow write are coalesced: the newest set is published last."""
    clock = FakeClock()
    store = MemoryStore()
    r = running(store, clock)
    for i in range(20):
        r.keys.publish(keyset("base", f"k{i}"))
    await r.until(lambda: JWKS_KEY in store.objects and not r.status.pending)
    assert kids_in(store) == ["base", "k19"]
    assert store.puts < 20

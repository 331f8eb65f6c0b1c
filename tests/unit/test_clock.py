"""The fake clock wakes sleepers as SPIRE's clock.Mock does; the system clock really sleeps."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from spire_oidc.core.clock import Clock, FakeClock, SystemClock


async def test_advance_wakes_exactly_the_due_sleepers_in_deadline_order() -> None:
    """advance() wakes every sleeper whose deadline passed, earliest first, and no other."""
    clock = FakeClock()
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    tasks = [
        asyncio.create_task(sleeper(name, seconds))
        for name, seconds in [("c", 3.0), ("a", 1.0), ("b", 2.0), ("a2", 1.0), ("late", 10.0)]
    ]
    await clock.wait_for_sleepers(5)
    clock.advance(0.5)
    await asyncio.sleep(0)
    assert woke == []
    clock.advance(2.5)  # now 3.0 after start: a, a2, b, c are due
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert woke == ["a", "a2", "b", "c"]
    assert clock.sleepers == 1
    assert clock.next_deadline() == pytest.approx(7.0)
    clock.advance(7.0)
    await asyncio.gather(*tasks)
    assert woke[-1] == "late"
    assert clock.sleepers == 0 and clock.next_deadline() is None


async def test_sleep_of_zero_or_less_returns_without_advance() -> None:
    """sleep(0) and negative sleeps only yield to the loop; they do not wait for advance()."""
    clock = FakeClock()
    await asyncio.wait_for(clock.sleep(0), 1.0)
    await asyncio.wait_for(clock.sleep(-1.0), 1.0)
    assert clock.slept == [0, -1.0]


async def test_cancelled_sleeper_is_forgotten() -> None:
    """A cancelled sleep leaves no sleeper behind and advance() does not trip over it."""
    clock = FakeClock()
    task = asyncio.create_task(clock.sleep(5.0))
    await clock.wait_for_sleepers(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.sleepers == 0
    clock.advance(10.0)


async def test_advance_moves_both_readings() -> None:
    """now() and monotonic() both move by exactly the advanced amount."""
    clock = FakeClock(start=100.0)
    mono = clock.monotonic()
    clock.advance(2.5)
    assert clock.now() == 102.5
    assert clock.monotonic() == mono + 2.5


async def test_run_until_drives_a_retry_loop_without_waiting() -> None:
    """run_until advances by a step whenever the loop sleeps, until the condition holds."""
    clock = FakeClock()
    attempts: list[float] = []

    async def retry_forever() -> None:
        while True:
            attempts.append(clock.monotonic())
            await clock.sleep(30.0)

    task = asyncio.create_task(retry_forever())
    started = time.monotonic()
    await clock.run_until(lambda: len(attempts) >= 5, step=30.0)
    task.cancel()
    assert [b - a for a, b in itertools.pairwise(attempts)] == [30.0] * 4
    assert time.monotonic() - started < 1.0, "150 s of clock time took no real waiting"


async def test_system_clock_sleeps_for_real() -> None:
    """SystemClock.sleep waits real time (and a negative duration does not raise)."""
    clock: Clock = SystemClock()
    started = time.monotonic()
    await clock.sleep(0.05)
    await clock.sleep(-1.0)
    assert time.monotonic() - started >= 0.04

"""Time, injected so that sources, health, retries and renewals can be tested without sleeping.

Every wait the provider makes on purpose (retry backoff, renewal deadlines) goes through
:meth:`Clock.sleep`, so a test drives it with :class:`FakeClock` instead of waiting on real timers.
:class:`FakeClock` follows SPIRE's ``clock.Mock`` (``test/clock``): time moves only when a test
calls :meth:`FakeClock.advance`, which wakes every sleeper whose deadline has passed, earliest
deadline first (ties in the order they went to sleep).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """Wall-clock seconds since the epoch, a monotonic reading, and a sleep on that clock."""

    def now(self) -> float: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that only moves when told to (tests).

    ``sleep(d)`` returns once :meth:`advance` has moved the monotonic reading by ``d`` or more
    since the call (``d <= 0`` only yields to the event loop once). A cancelled sleeper is
    forgotten.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._mono = 1000.0
        self._seq = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._changed = asyncio.Event()  # set whenever a task starts sleeping
        self.slept: list[float] = []  # every requested duration, in call order (for assertions)

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._seq), future))
        self._changed.set()
        try:
            await future
        finally:
            if not future.done():
                future.cancel()
            self._sleepers = [s for s in self._sleepers if s[2] is not future]
            heapq.heapify(self._sleepers)

    def advance(self, seconds: float) -> None:
        """Move both readings forward and wake, in deadline order, every sleeper now due."""
        self._now += seconds
        self._mono += seconds
        while self._sleepers and self._sleepers[0][0] <= self._mono:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    @property
    def sleepers(self) -> int:
        """How many tasks are waiting in :meth:`sleep` right now."""
        return sum(1 for s in self._sleepers if not s[2].done())

    def next_deadline(self) -> float | None:
        """Seconds from now until the earliest sleeper is due (None: nobody sleeps)."""
        pending = [d for d, _, f in self._sleepers if not f.done()]
        return min(pending) - self._mono if pending else None

    async def wait_for_sleepers(self, count: int = 1, *, within: float = 5.0) -> None:
        """Wait (real time, at most ``within`` seconds) until ``count`` tasks sleep here."""
        async with asyncio.timeout(within):
            while self.sleepers < count:
                self._changed.clear()
                await self._changed.wait()

    async def run_until(
        self, done: Callable[[], bool], *, step: float, within: float = 5.0
    ) -> None:
        """Advance by ``step`` each time somebody sleeps, until ``done()`` is true."""
        async with asyncio.timeout(within):
            while not done():
                await self.wait_for_sleepers(1, within=within)
                if done():
                    return
                self.advance(step)
                await asyncio.sleep(0)

"""The heap trimmer: glibc's malloc_trim runs only after connection churn, never when idle."""

from __future__ import annotations

import asyncio
import contextlib

from spire_oidc.http.memory import HeapTrimmer


async def _run_for(trimmer: HeapTrimmer, seconds: float) -> None:
    task = asyncio.create_task(trimmer.run())
    try:
        await asyncio.sleep(seconds)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_trims_only_when_activity_changed() -> None:
    """No churn, no trim; each interval with churn gives one trim."""
    churn = [0]
    trimmer = HeapTrimmer(lambda: churn[0], interval=0.02)
    assert trimmer.available  # Debian's glibc has malloc_trim
    await _run_for(trimmer, 0.15)
    assert trimmer.trims == 0
    task = asyncio.create_task(trimmer.run())
    try:
        await asyncio.sleep(0)
        for _ in range(3):
            churn[0] += 5
            await asyncio.sleep(0.06)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert 1 <= trimmer.trims <= 4


async def test_returns_memory_to_the_os() -> None:
    """After freeing many heap blocks, a trim lowers the process's resident memory."""

    def rss_kib() -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

    # 200 KB blocks come from the heap once glibc's mmap threshold has adapted to them.
    keep = [bytearray(200_000) for _ in range(2)]
    del keep
    blocks = [bytes(bytearray(b"x" * 200_000)) for _ in range(200)]
    pinned = blocks[-1]  # the top of the heap stays in use: only a trim can release the rest
    del blocks
    before = rss_kib()
    churn = [0]
    trimmer = HeapTrimmer(lambda: churn[0], interval=0.01)
    task = asyncio.create_task(trimmer.run())
    try:
        await asyncio.sleep(0)  # the trimmer notes the current activity
        churn[0] += 1
        for _ in range(100):
            await asyncio.sleep(0.01)
            if trimmer.trims:
                break
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert trimmer.trims >= 1
    assert rss_kib() < before - 10_000, (before, rss_kib())
    assert pinned[:1] == b"x"

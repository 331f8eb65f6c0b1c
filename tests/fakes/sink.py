"""A recording :class:`~spire_oidc.sources.base.KeySink` for source tests and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from spire_oidc.core.keys import KeySet


@dataclass
class SinkEvent:
    kind: str  # "publish" | "error" | "streaming"
    value: object
    at: float  # time.perf_counter()


@dataclass
class RecordingSink:
    """Records every call; ``publish`` does the store's change detection (order ignored)."""

    events: list[SinkEvent] = field(default_factory=list)
    publishes: list[KeySet] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    streaming_changes: list[bool] = field(default_factory=list)
    streaming: bool = False
    changes: int = 0  # publishes that changed the content (would move Last-Modified)

    @property
    def current(self) -> KeySet | None:
        return self.publishes[-1] if self.publishes else None

    @property
    def current_kids(self) -> tuple[str, ...] | None:
        return self.current.kids if self.current is not None else None

    def publish(self, keys: KeySet) -> bool:
        previous = self.current
        self.publishes.append(keys)
        self.events.append(SinkEvent("publish", keys, time.perf_counter()))
        changed = previous is None or not previous.same_content(keys)
        if changed:
            self.changes += 1
        return changed

    def report_error(self, message: str) -> None:
        self.errors.append(message)
        self.events.append(SinkEvent("error", message, time.perf_counter()))

    def set_streaming(self, connected: bool) -> None:
        self.streaming = connected
        self.streaming_changes.append(connected)
        self.events.append(SinkEvent("streaming", connected, time.perf_counter()))

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    async def wait_for(
        self, predicate: Callable[[], bool], *, within: float = 5.0, what: str = "condition"
    ) -> None:
        """Wait until ``predicate()`` holds (checked every few ms); fail after ``within`` s."""
        await wait_until(predicate, within=within, what=what)


async def wait_until(predicate: Callable[[], bool], *, within: float = 5.0, what: str = "") -> None:
    """Poll ``predicate`` every 5 ms; raise ``AssertionError`` naming ``what`` after ``within``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what or predicate}")
        await asyncio.sleep(0.005)


class _Runnable(Protocol):
    async def run(self, sink: RecordingSink) -> None: ...


@contextlib.asynccontextmanager
async def running(source: _Runnable, sink: RecordingSink) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``source.run(sink)`` as a task for the ``async with`` body; cancel it afterwards.

    The source must never finish on its own (an upstream failure must not escape ``run``): if it
    did, the exit raises so the test fails.
    """
    task = asyncio.create_task(source.run(sink))
    try:
        yield task
    finally:
        finished_early = task.done()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=5.0)
    if finished_early:
        raise AssertionError(f"source.run() returned or raised on its own: {task!r}")


def short_socket_dir(tmp_path: Path) -> Path:
    """``tmp_path``, or a short directory under /tmp when unix socket paths would be too long.

    Unix socket paths are limited to 107 bytes (grpc-and-config.md §1.8).
    """
    if len(str(tmp_path)) <= 80:
        return tmp_path
    return Path(tempfile.mkdtemp(prefix="spo-", dir="/tmp"))

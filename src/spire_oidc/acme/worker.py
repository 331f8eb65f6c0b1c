"""The one thread that runs the synchronous ACME client (and the cache's file I/O).

certbot's ``acme`` client blocks (``requests``) and is not thread-safe (one HTTP session, one
nonce pool), so every call goes through this single worker, in order, and the event loop only
awaits the result. The thread is a daemon: a request that hangs on a dead CA (each is bounded
by the client's timeout) never holds up the process's exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import TypeVar

from spire_oidc.errors import ProviderError

T = TypeVar("T")

_Job = tuple[Callable[[], object], asyncio.Future[object], asyncio.AbstractEventLoop]


class WorkerStopped(ProviderError, RuntimeError):
    """The worker was stopped before the call ran."""


class Worker:
    """A single daemon thread executing callables submitted from the event loop."""

    def __init__(self, name: str = "acme-worker") -> None:
        self._name = name
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def _ensure_started(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` in the worker thread and return its result (or raise its exception)."""
        if self._stopped:
            raise WorkerStopped("the ACME worker is stopped")
        self._ensure_started()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[object] = loop.create_future()
        self._queue.put((fn, fut, loop))
        result = await fut
        return result  # type: ignore[return-value]

    def stop(self) -> None:
        """Stop taking jobs; a call already running finishes in the background."""
        self._stopped = True
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            fn, fut, loop = job
            if fut.cancelled():
                continue
            try:
                value: object = fn()
            except BaseException as exc:  # delivered to the awaiting coroutine
                _deliver(loop, fut, None, exc)
            else:
                _deliver(loop, fut, value, None)


def _deliver(
    loop: asyncio.AbstractEventLoop,
    fut: asyncio.Future[object],
    value: object,
    exc: BaseException | None,
) -> None:
    def settle() -> None:
        if fut.done():
            return
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
        loop.call_soon_threadsafe(settle)

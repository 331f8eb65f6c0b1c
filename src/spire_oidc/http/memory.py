"""Give freed C-heap pages back to the OS while connections come and go (glibc ``malloc_trim``).

Each TLS connection holds a few hundred KiB of C heap while it lives (uvloop's 256 KiB read
buffer, OpenSSL's handshake state). glibc keeps freed pages resident and reuses them, so a burst of
new connections leaves RSS near the burst's high-water mark. Trimming a few times a second, only
while connections open or close, keeps the peak close to what is really live (measured in
docs/performance.md). It costs well under a millisecond per trim and nothing when idle; where the
C library has no ``malloc_trim`` (musl, macOS) it does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import Callable

TRIM_INTERVAL = 0.2  # seconds between checks for connection churn


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        fn = ctypes.CDLL(None).malloc_trim  # the process's own C library; no ldconfig lookup
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    trim: Callable[[int], int] = fn
    return trim


class HeapTrimmer:
    """Trims the C heap after every interval in which ``activity()`` changed."""

    def __init__(self, activity: Callable[[], int], *, interval: float = TRIM_INTERVAL) -> None:
        self._activity = activity
        self._interval = interval
        self._trim = _malloc_trim()
        self.trims = 0

    @property
    def available(self) -> bool:
        return self._trim is not None

    async def run(self) -> None:
        trim = self._trim
        if trim is None:
            return
        last = self._activity()
        while True:
            await asyncio.sleep(self._interval)
            now = self._activity()
            if now != last:
                last = now
                trim(0)
                self.trims += 1

"""A cap on concurrent connections to the main listener (``max_connections``).

Past the cap a new connection is closed at once (no response), and a warning says so at most
every ``WARN_EVERY`` seconds with the number refused meanwhile: the process keeps serving the
connections it has instead of running out of file descriptors. Like Go's runtime (which SPIRE's
provider inherits), start-up raises the soft open-file limit to the hard one, so the cap and not
the descriptor table decides.
"""

from __future__ import annotations

import asyncio
import resource
import time

import structlog

log = structlog.get_logger(__name__)

WARN_EVERY = 10.0


class ConnectionCap:
    """Admits a new connection while fewer than ``limit`` are open."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.refused = 0
        self._unreported = 0
        self._last_warning = -WARN_EVERY

    def admit(self, open_now: int, transport: asyncio.Transport) -> bool:
        """``open_now`` counts this connection too; past the cap it is closed and False."""
        if open_now <= self.limit:
            return True
        transport.abort()
        self.refused += 1
        self._unreported += 1
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY:
            log.warning(
                "connection_limit_reached",
                max_connections=self.limit,
                refused=self._unreported,
                detail="new connections are closed until others finish",
            )
            self._last_warning = now
            self._unreported = 0
        return False


def raise_open_file_limit(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE toward the hard limit (as Go does); returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted + 1024)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < wanted + 64:
        log.warning(
            "open_file_limit_low",
            limit=soft,
            max_connections=wanted,
            detail="raise LimitNOFILE (systemd) or ulimit -n, or lower max_connections",
        )
    return soft

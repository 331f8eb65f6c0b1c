"""Caps on concurrent connections (``max_connections``), one per listener.

The main listener gets ``max_connections``; the health listener and the ACME http-01 listener
each get a share on top of it (:func:`side_share`), so that no listener can exhaust the
descriptors the others need. A TLS listener counts a connection from accept, through its
handshake (and the ACME ClientHello peek), not only once the handshake finished.

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
from aiohttp import web

log = structlog.get_logger(__name__)

WARN_EVERY = 10.0
# The health and the http-01 listeners each get this fraction of max_connections, at least
# SIDE_SHARE_MIN (docs/configuration.md, max_connections).
SIDE_SHARE_DIVISOR = 20
SIDE_SHARE_MIN = 8


def side_share(max_connections: int) -> int:
    """The cap of a side listener (health/metrics, ACME http-01) for a given ``max_connections``."""
    return max(SIDE_SHARE_MIN, max_connections // SIDE_SHARE_DIVISOR)


class ConnectionCap:
    """Admits a new connection while fewer than ``limit`` are open.

    A plain listener admits in the protocol's ``connection_made`` (:meth:`admit`). A TLS
    listener with its own accept loop admits at accept (:meth:`enter_handshake`), holds the slot
    through the handshake (``handshaking``) and releases it with :meth:`leave_handshake`; its
    protocols' later :meth:`admit` calls then only confirm (the connection already holds a slot).
    """

    def __init__(self, limit: int, *, listener: str = "main", from_accept: bool = False) -> None:
        self.limit = limit
        self.listener = listener
        self.from_accept = from_accept
        self.refused = 0
        self.handshaking = 0  # accepted, still in the TLS handshake or the ClientHello peek
        self._unreported = 0
        self._last_warning = -WARN_EVERY

    def admit(self, open_now: int, transport: asyncio.Transport) -> bool:
        """``open_now`` counts this connection too; past the cap it is closed and False."""
        if self.from_accept or open_now + self.handshaking <= self.limit:
            return True
        transport.abort()
        self._refuse()
        return False

    def enter_handshake(self, established: int) -> bool:
        """At accept: take a slot for a new connection while ``established`` (served, past
        their handshake) plus those in a handshake stay within the cap. False: refuse it."""
        if established + self.handshaking < self.limit:
            self.handshaking += 1
            return True
        self._refuse()
        return False

    def leave_handshake(self) -> None:
        """The handshake ended (the server now counts the connection, or it was closed)."""
        self.handshaking -= 1

    def _refuse(self) -> None:
        self.refused += 1
        self._unreported += 1
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY:
            log.warning(
                "connection_limit_reached",
                max_connections=self.limit,
                listener=self.listener,
                refused=self._unreported,
                detail="new connections are closed until others finish",
            )
            self._last_warning = now
            self._unreported = 0


def open_connections(server: web.Server) -> int:
    """Connections ``server`` serves now (the fast path keeps its own set besides aiohttp's)."""
    fast: object = getattr(server, "fast_connections", ())
    return len(server.connections) + (len(fast) if isinstance(fast, (set, list, dict)) else 0)


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

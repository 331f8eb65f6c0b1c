"""A TLS site with its own accept loop, so that a connection counts against the cap from accept.

asyncio's TLS server calls the protocol's ``connection_made`` only after the handshake, so a
cap applied there would not see connections still in their handshake (or, for ACME, in the
ClientHello peek). This site accepts itself, takes a slot (:meth:`ConnectionCap.enter_handshake`)
before anything else happens, and hands the socket to asyncio's TLS with
``loop.connect_accepted_socket`` once a context is chosen. Subclasses choose the context per
connection (:meth:`CountedTlsSite.select`); the certificate-file listener has one context.

The site plugs into aiohttp's runner like any other, so the runner's graceful shutdown (stop
accepting, drain in-flight requests) covers these connections too. Handshakes still running
when the site stops are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct

import structlog
from aiohttp import web

from spire_oidc.http.connlimit import ConnectionCap, open_connections

log = structlog.get_logger(__name__)

KEEPALIVE_IDLE = 180  # SPIRE's listener: TCP keep-alive 3 min


class CountedTlsSite(web.BaseSite):
    """Serve ``runner`` over TLS on an already-bound socket, counting from accept."""

    def __init__(
        self,
        runner: web.BaseRunner,
        sock: socket.socket,
        *,
        context: ssl.SSLContext | None = None,
        cap: ConnectionCap | None = None,
        handshake_timeout: float = 10.0,
    ) -> None:
        super().__init__(runner)
        self._sock = sock
        self._context = context
        self._cap = cap
        self._handshake_timeout = handshake_timeout
        self._accept_task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.accepted = 0
        self.failed = 0

    @property
    def name(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"

    @property
    def in_handshake(self) -> int:
        """Accepted connections whose handshake has not finished yet."""
        return len(self._pending)

    async def start(self) -> None:
        await super().start()
        self._accept_task = asyncio.create_task(self._accept_loop())

    async def stop(self) -> None:
        if self._accept_task is not None:
            self._accept_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accept_task
            self._accept_task = None
        self._sock.close()
        for task in list(self._pending):
            task.cancel()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await super().stop()

    async def select(
        self, conn: socket.socket, deadline: float
    ) -> ssl.SSLContext | None:  # pragma: no cover - overridden by ACME
        """The context for this connection, or None when it was refused (and closed)."""
        return self._context

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        server = self._runner.server
        while True:
            try:
                conn, _addr = await loop.sock_accept(self._sock)
            except OSError as exc:  # EMFILE, ECONNABORTED, ...: keep accepting
                log.warning("tls_accept_failed", error=str(exc))
                await asyncio.sleep(0.1)
                continue
            self.accepted += 1
            cap = self._cap
            if (
                cap is not None
                and server is not None
                and not cap.enter_handshake(open_connections(server))
            ):
                _abort(conn)
                continue
            task = asyncio.create_task(self._serve(conn))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _serve(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            conn.setblocking(False)
            _keepalive(conn)
            context = await self.select(conn, loop.time() + self._handshake_timeout)
            if context is None:
                return
            server = self._runner.server
            if server is None:  # the runner is shutting down
                conn.close()
                return
            # From here asyncio owns the socket (and closes it on failure).
            await loop.connect_accepted_socket(
                server, conn, ssl=context, ssl_handshake_timeout=self._handshake_timeout
            )
        except asyncio.CancelledError:
            conn.close()
            raise
        except OSError as exc:  # ssl.SSLError, ConnectionError, handshake timeout
            self.failed += 1
            log.debug("tls_handshake_failed", error=str(exc) or type(exc).__name__)
        finally:
            if self._cap is not None:
                self._cap.leave_handshake()


def _abort(conn: socket.socket) -> None:
    """Close at once with a reset (SO_LINGER 0), as a transport's ``abort()`` would."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def _keepalive(conn: socket.socket) -> None:
    with contextlib.suppress(OSError, AttributeError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_IDLE)

"""The ACME mode's TLS listener: accept, peek the ClientHello, pick the context, hand over.

DESIGN decision 5 and acme.md §3.3: each accepted socket is read with ``MSG_PEEK`` until its
ClientHello is complete (nothing is consumed), the context is chosen from the SNI name and the
ALPN list (:mod:`spire_oidc.acme.selector`), and only then is the socket given to asyncio's TLS
with ``loop.connect_accepted_socket`` and the runner's protocol factory. Public APIs only.

The site plugs into aiohttp's runner like any other, so the runner's graceful shutdown (stop
accepting, drain in-flight requests) covers these connections too. Handshakes still being
peeked when the site stops are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from spire_oidc.acme.clienthello import (
    MAX_HELLO_BYTES,
    ClientHello,
    Incomplete,
    NotClientHello,
    parse_client_hello,
)
from spire_oidc.acme.selector import Refusal

log = structlog.get_logger(__name__)

Chooser = Callable[[ClientHello], Awaitable[ssl.SSLContext | Refusal]]

HANDSHAKE_TIMEOUT = 10.0
KEEPALIVE_IDLE = 180  # SPIRE's listener: TCP keep-alive 3 min


def alert_record(refusal: Refusal) -> bytes:
    """A fatal TLS alert record (sent in clear before any handshake, RFC 8446 §6)."""
    return bytes([21, 3, 3, 0, 2, 2, int(refusal)])


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    fut: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(sock.fileno(), ready)
    try:
        await fut
    finally:
        loop.remove_reader(sock.fileno())


async def peek_client_hello(sock: socket.socket) -> ClientHello:
    """Wait until the socket holds a whole ClientHello and parse it, consuming nothing.

    Raises :class:`NotClientHello` for anything else and ``ConnectionError`` on EOF. A socket
    stays readable while peeked bytes wait in it, so a partial hello is re-peeked after a short
    sleep (a ClientHello rarely spans TCP segments; the caller bounds the whole wait).
    """
    loop = asyncio.get_running_loop()
    pause = 0.001
    while True:
        try:
            data = sock.recv(MAX_HELLO_BYTES + 5, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            await _readable(loop, sock)
            continue
        if not data:
            raise ConnectionResetError("connection closed before the ClientHello")
        hello = parse_client_hello(data)
        if not isinstance(hello, Incomplete):
            return hello
        if len(data) > MAX_HELLO_BYTES:
            raise NotClientHello("ClientHello too large")
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.05)


class PeekSite(web.BaseSite):
    """A TLS site on an already-bound socket that picks the certificate per ClientHello."""

    def __init__(
        self,
        runner: web.BaseRunner,
        sock: socket.socket,
        choose: Chooser,
        *,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        super().__init__(runner)
        self._sock = sock
        self._choose = choose
        self._handshake_timeout = handshake_timeout
        self._accept_task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.accepted = 0
        self.refused = 0
        self.failed = 0

    @property
    def name(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"

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

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _addr = await loop.sock_accept(self._sock)
            except OSError as exc:  # EMFILE, ECONNABORTED, ...: keep accepting
                log.warning("acme_accept_failed", error=str(exc))
                await asyncio.sleep(0.1)
                continue
            self.accepted += 1
            task = asyncio.create_task(self._serve(conn))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _serve(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._handshake_timeout
        try:
            conn.setblocking(False)
            _keepalive(conn)
            async with asyncio.timeout_at(deadline):
                hello = await peek_client_hello(conn)
            choice = await self._choose(hello)  # bounded by the table's own wait
        except asyncio.CancelledError:
            conn.close()
            raise
        except (OSError, NotClientHello, TimeoutError) as exc:
            self.failed += 1
            log.debug("acme_tls_hello_failed", error=str(exc) or type(exc).__name__)
            conn.close()
            return
        if isinstance(choice, Refusal):
            self.refused += 1
            log.debug(
                "acme_tls_refused",
                server_name=hello.server_name,
                alpn=hello.alpn,
                alert=choice.name.lower(),
            )
            with contextlib.suppress(OSError):
                conn.send(alert_record(choice))
            conn.close()
            return
        server = self._runner.server
        assert server is not None
        try:
            # From here asyncio owns the socket (and closes it on failure).
            await loop.connect_accepted_socket(
                server,
                conn,
                ssl=choice,
                ssl_handshake_timeout=self._handshake_timeout,
            )
        except OSError as exc:  # ssl.SSLError, ConnectionError, handshake timeout
            self.failed += 1
            log.debug(
                "acme_tls_handshake_failed",
                server_name=hello.server_name,
                error=str(exc) or type(exc).__name__,
            )


def _keepalive(conn: socket.socket) -> None:
    with contextlib.suppress(OSError, AttributeError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_IDLE)

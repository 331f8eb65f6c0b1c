"""The ACME mode's TLS listener: accept, peek the ClientHello, pick the context, hand over.

DESIGN decision 5 and acme.md §3.3: each accepted socket is read with ``MSG_PEEK`` until its
ClientHello is complete (nothing is consumed), the context is chosen from the SNI name and the
ALPN list (:mod:`spire_oidc.acme.selector`), and only then is the socket given to asyncio's TLS
(the accept loop, the connection cap counted from accept, and the hand-over are
:class:`spire_oidc.http.accept.CountedTlsSite`'s). Public APIs only.

The peek is bounded in CPU: the record headers say how many bytes the ClientHello takes
(:func:`bytes_needed`), ``SO_RCVLOWAT`` keeps the socket from waking the loop until that many
have arrived, the full parse runs once, and a connection gets at most ``MAX_PEEKS`` wake-ups.
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
    bytes_needed,
    parse_client_hello,
)
from spire_oidc.acme.selector import Refusal
from spire_oidc.http.accept import CountedTlsSite
from spire_oidc.http.connlimit import ConnectionCap

log = structlog.get_logger(__name__)

Chooser = Callable[[ClientHello], Awaitable[ssl.SSLContext | Refusal]]

HANDSHAKE_TIMEOUT = 10.0
# Wake-ups one ClientHello may take: a real one arrives in one to three (its records, or TCP
# segments); a hello trickled in more pieces than this is refused.
MAX_PEEKS = 16


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


async def peek_client_hello(
    sock: socket.socket, *, max_peeks: int = MAX_PEEKS, on_peek: Callable[[], None] | None = None
) -> ClientHello:
    """Wait until the socket holds a whole ClientHello and parse it, consuming nothing.

    Raises :class:`NotClientHello` for anything else (or a hello in more than ``max_peeks``
    pieces) and ``ConnectionError`` on EOF. The caller bounds the whole wait. ``on_peek`` is
    called at each peek (the site counts them).
    """
    loop = asyncio.get_running_loop()
    lowat = _set_lowat(sock, 5)
    want, seen = 5, 0
    try:
        for _ in range(max_peeks if lowat else 1 << 30):
            await _readable(loop, sock)
            if on_peek is not None:
                on_peek()
            try:
                data = sock.recv(MAX_HELLO_BYTES + 5, socket.MSG_PEEK)
            except (BlockingIOError, InterruptedError):
                continue
            if not data:
                raise ConnectionResetError("connection closed before the ClientHello")
            if len(data) == seen and lowat:  # woken without new bytes: the peer shut down
                raise ConnectionResetError("connection closed inside the ClientHello")
            seen = len(data)
            want = bytes_needed(data)
            if want <= len(data):
                hello = parse_client_hello(data)
                if isinstance(hello, Incomplete):  # bytes_needed and the parser disagree
                    raise NotClientHello("inconsistent ClientHello records")
                return hello
            if want > MAX_HELLO_BYTES + 5:
                raise NotClientHello("ClientHello too large")
            if lowat:
                _set_lowat(sock, want)
            else:  # no SO_RCVLOWAT: a socket with peeked bytes stays readable, so pace it
                await asyncio.sleep(0.05)
        raise NotClientHello(f"ClientHello in more than {max_peeks} pieces")
    finally:
        if lowat:
            _set_lowat(sock, 1)  # asyncio's TLS reads the socket next


def _set_lowat(sock: socket.socket, n: int) -> bool:
    """Let epoll see the socket readable only once ``n`` bytes wait in it (False: unsupported)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, n)
    except (OSError, AttributeError):
        return False
    return True


class PeekSite(CountedTlsSite):
    """A TLS site on an already-bound socket that picks the certificate per ClientHello."""

    def __init__(
        self,
        runner: web.BaseRunner,
        sock: socket.socket,
        choose: Chooser,
        *,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        cap: ConnectionCap | None = None,
    ) -> None:
        super().__init__(runner, sock, cap=cap, handshake_timeout=handshake_timeout)
        self._choose = choose
        self.refused = 0
        self.peeks = 0  # MSG_PEEK reads, all connections together (bounded per connection)

    def _peeked(self) -> None:
        self.peeks += 1

    async def select(self, conn: socket.socket, deadline: float) -> ssl.SSLContext | None:
        try:
            async with asyncio.timeout_at(deadline):
                hello = await peek_client_hello(conn, on_peek=self._peeked)
            choice = await self._choose(hello)  # bounded by the table's own wait
        except (OSError, NotClientHello, TimeoutError) as exc:
            self.failed += 1
            log.debug("acme_tls_hello_failed", error=str(exc) or type(exc).__name__)
            conn.close()
            return None
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
            return None
        return choice

"""The one module that touches aiohttp's internals: the main listener's server and connections.

:class:`FullServer` is aiohttp's low-level server with three corrections every connection gets:
no ``Server`` header on any response (aiohttp's own parser-level 400s included), only HTTP/1.0
and HTTP/1.1 answered (others: 505 or 400, as Go's net/http answers them), and a half-closed
connection (the client sent its requests, then ``SHUT_WR``) still gets the answers to every
request it sent completely. :class:`FastServer` adds the fast path in front: each connection
starts as a :class:`FastPathProtocol`, which answers plain ``GET``/``HEAD`` of ``/keys`` and of
the discovery document from the response table (responses.py) after the pure
:func:`~spire_oidc.http.route.classify` accepted the head, and hands everything else, with every
unanswered byte, to aiohttp's ``RequestHandler`` running the full provider handler.

Timeouts: a deadline set at connect (``Timeouts.header``) and after each response
(``Timeouts.idle``) bounds the wait for a complete head and keep-alive idleness; a connection
handed over keeps its deadline until aiohttp dispatches its first request (so trickling a head
cannot double the timeout), and a connection still writing to a slow reader is never cut.
Shutdown closes idle connections at once and waits (up to the grace) for responses being written.

Private aiohttp names used (tests/unit/test_adapter_compat.py fails loudly when one goes):
``RequestHandler`` and its ``_messages``/``_waiter``, ``Server._loop``/``_kwargs``, and
``StreamResponse``'s ``_prepare_headers``/``_write_headers``/``_headers``/``_req``/
``_payload_writer``/``_send_headers_immediately``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiohttp import web
from aiohttp.http import HttpVersion10, HttpVersion11
from aiohttp.web_protocol import RequestHandler

from spire_oidc.http.connlimit import ConnectionCap
from spire_oidc.http.proxies import peer_address
from spire_oidc.http.responses import GET, HEAD, ResponseTables
from spire_oidc.http.route import MAX_HEAD, classify_cached
from spire_oidc.http.timeouts import Timeouts

RequestLog = Callable[[str, str, int, str, str, float], None]  # method path status remote ua s
Observe = Callable[[str, int, float], None]  # route, status, seconds
FullHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

READ_BUFFER = 64 * 1024
SWEEP_FRACTION = 0.1  # idle connections close between 1.0x and 1.1x the timeout
KEYS, DISCOVERY = 1, 2  # route kinds (build_main_server maps the configured routes to them)


class Response(web.Response):
    """An aiohttp response that sends no ``Server`` header (SPIRE sends none) and answers an
    unsupported protocol version's request with an ``HTTP/1.1`` status line."""

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        self._headers.popall("Server", None)

    async def _write_headers(self) -> None:
        request, writer = self._req, self._payload_writer
        if request is None or writer is None:
            raise RuntimeError("response headers written before prepare()")
        version = "1.0" if request.version == HttpVersion10 else "1.1"
        await writer.write_headers(f"HTTP/{version} {self.status} {self.reason}", self._headers)
        if self._send_headers_immediately:
            writer.send_headers()


def _go_refusal(status: int, reason: str) -> Response:
    """Go's net/http answer to a request line it will not serve (body text and headers)."""
    text = f"{status} {reason}"
    resp = Response(status=status, reason=reason, body=text.encode("ascii"))
    resp.headers["Content-Type"] = "text/plain; charset=utf-8"
    resp.headers["Connection"] = "close"
    resp.force_close()
    return resp


def version_refusal(version: tuple[int, int]) -> Response | None:
    """None for HTTP/1.0 and 1.1; Go's 505 for another major version, its 400 for HTTP/0.x
    (aiohttp's C parser reads a request line without a version as HTTP/0.9)."""
    if version in (HttpVersion11, HttpVersion10):
        return None
    if version[0] == 0:
        return _go_refusal(400, "Bad Request")
    return _go_refusal(505, "HTTP Version Not Supported: unsupported protocol version")


class ProviderRequestHandler(RequestHandler):
    """aiohttp's connection handler, with Go's answers for errors and half-closed connections."""

    handed_over = False  # came from the fast path (already counted by the connection cap)
    half_closed = False  # the client shut down its sending side

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        resp = super().handle_error(request, status, exc, message)
        if not isinstance(resp, web.Response):
            return resp
        ours = Response(status=resp.status, body=resp.body, headers=resp.headers)
        ours.force_close()
        return ours

    def eof_received(self) -> bool:  # type: ignore[override]  # asyncio's signature
        """Keep the sending side open until every request received completely is answered."""
        self.half_closed = True
        asyncio.get_running_loop().call_soon(self._settle_half_close)
        return True

    def _settle_half_close(self) -> None:
        if self.transport is None or self._messages:
            return  # gone, or FullServer._dispatch closes after the last queued request
        if self._waiter is not None:
            self.force_close()  # idle, or an incomplete head that can never complete
        else:
            self.close()  # the request being answered is the last one


class FullServer(web.Server):
    """aiohttp's low-level server with our connection handler, one connection cap, and Go's
    version and half-close rules (the fast path's server builds on it)."""

    def __init__(
        self, handler: FullHandler, *, timeouts: Timeouts, cap: ConnectionCap | None, **kwargs: Any
    ) -> None:
        super().__init__(handler, keepalive_timeout=timeouts.idle, **kwargs)
        self.timeouts = timeouts
        self.cap = cap
        self.loop_time = self._loop.time
        self._full_handler = self.request_handler
        self.request_handler = self._dispatch

    def __call__(self) -> RequestHandler:
        return ProviderRequestHandler(self, loop=self._loop, **self._kwargs)

    def open_connections(self) -> int:
        return len(self._connections)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        handed = isinstance(handler, ProviderRequestHandler) and handler.handed_over
        if self.cap is not None and not handed:
            self.cap.admit(self.open_connections(), transport)

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        protocol = request.protocol
        half_closed = isinstance(protocol, ProviderRequestHandler) and protocol.half_closed
        if half_closed and not protocol._messages:
            protocol.close()  # the last request the client sent before SHUT_WR
        refusal = version_refusal(request.version)
        if refusal is not None:
            return refusal
        return await self._full_handler(request)


class FastServer(FullServer):
    """:class:`FullServer` whose connections start on the fast path."""

    def __init__(
        self,
        handler: FullHandler,
        *,
        tables: ResponseTables,
        routes: dict[str, int],
        plain_scheme: Callable[[asyncio.BaseTransport | None], str],
        timeouts: Timeouts,
        cap: ConnectionCap | None,
        observe: Observe | None,
        request_log: RequestLog | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, timeouts=timeouts, cap=cap, **kwargs)
        self.tables = tables
        self.routes = {r.encode("ascii"): kind for r, kind in routes.items() if r.isascii()}
        self.route_names = {kind: r for r, kind in routes.items()}
        self.plain_scheme = plain_scheme
        self.observe = observe
        self.request_log = request_log
        self.fast_connections: set[FastPathProtocol] = set()
        # One read buffer for every fast-path connection: transports fill it and call
        # buffer_updated() synchronously, and the bytes are consumed (or copied) before return.
        self.read_buffer = memoryview(bytearray(READ_BUFFER))
        self.fast_requests = 0  # answered on the fast path (tests and benchmarks read it)
        self.handovers = 0  # connections handed to the full handler
        self.churn = 0  # connections opened or closed (memory.HeapTrimmer watches it)
        # One timer for every fast-path connection: it closes those whose deadline passed.
        self._sweep_interval = min(1.0, min(timeouts.header, timeouts.idle) * SWEEP_FRACTION)
        self._sweeper: asyncio.TimerHandle | None = None
        self._handed: dict[RequestHandler, float] = {}  # handed over, no request dispatched yet
        self.draining: set[FastPathProtocol] = set()  # closed with a response still written
        self._drained = asyncio.Event()

    def __call__(self) -> FastPathProtocol:  # type: ignore[override]
        return FastPathProtocol(self)

    def open_connections(self) -> int:
        return len(self.fast_connections) + len(self._connections)

    def watch(self, conn: FastPathProtocol) -> None:
        self.fast_connections.add(conn)
        self.churn += 1
        self._arm()

    def hand_over(
        self, transport: asyncio.Transport, data: bytes, paused: bool, deadline: float
    ) -> None:
        """Give a connection (and its unanswered bytes) to aiohttp's request handler."""
        self.handovers += 1
        protocol = cast(ProviderRequestHandler, super().__call__())
        protocol.handed_over = True
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if paused:
            protocol.pause_writing()
        self._handed[protocol] = deadline
        self._arm()
        protocol.data_received(data)

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        if self._handed:
            self._handed.pop(request.protocol, None)
        return await super()._dispatch(request)

    def drained(self) -> None:
        self._drained.set()

    def _arm(self) -> None:
        if self._sweeper is None:
            self._sweeper = self._loop.call_later(self._sweep_interval, self._sweep)

    def _sweep(self) -> None:
        now = self._loop.time()
        for conn in [c for c in self.fast_connections if c.deadline <= now]:
            if conn.writing():  # a slow reader still receiving a response: not idle
                conn.deadline = now + self.timeouts.idle
            else:
                conn.close()  # idle: closed without an answer, like aiohttp
        for protocol in [p for p, deadline in self._handed.items() if deadline <= now]:
            del self._handed[protocol]
            transport = protocol.transport
            if transport is not None and transport.get_write_buffer_size() == 0:
                protocol.force_close()  # its head never completed in time
        self._sweeper = None
        if self.fast_connections or self._handed:
            self._sweeper = self._loop.call_later(self._sweep_interval, self._sweep)

    def pre_shutdown(self) -> None:
        for conn in list(self.fast_connections):
            conn.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        super().pre_shutdown()

    async def shutdown(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        for conn in list(self.fast_connections):
            conn.close()
        self._handed.clear()
        if self.draining:  # responses still buffered for slow readers finish within the grace
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout)
        for conn in list(self.draining):
            conn.abort()
        await super().shutdown(timeout)


class FastPathProtocol(asyncio.BufferedProtocol):
    """One connection; answers recognised requests itself until the first one it does not."""

    __slots__ = ("_remote", "_scheme", "_server", "_transport", "_write_paused", "deadline")

    def __init__(self, server: FastServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._scheme = ""
        self._remote: str | None = None
        self._write_paused = False
        self.deadline = 0.0  # the sweep closes the connection once this has passed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # No SO_KEEPALIVE (aiohttp sets it): an idle connection is closed after the idle
        # timeout, long before TCP keep-alive's first probe; a handed-over one gets it anyway.
        self._transport = cast(asyncio.Transport, transport)  # uvloop's: no asyncio subclass
        server = self._server
        self.deadline = server.loop_time() + server.timeouts.header
        server.watch(self)
        if server.cap is not None:
            server.cap.admit(server.open_connections(), self._transport)

    def connection_lost(self, exc: Exception | None) -> None:
        server = self._server
        server.fast_connections.discard(self)
        self._transport = None
        server.churn += 1
        if self in server.draining:
            server.draining.discard(self)
            if not server.draining:
                server.drained()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._server.read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        transport = self._transport
        if transport is None:
            return
        server = self._server
        data = server.read_buffer[:nbytes].tobytes()
        pos, size, answered = 0, len(data), False
        timed = server.observe is not None or server.request_log is not None
        while pos < size:
            end = data.find(b"\r\n\r\n", pos, pos + MAX_HEAD)
            if end < 0 or self._write_paused:  # an incomplete or long head; back-pressure
                self._hand_over(data[pos:])
                return
            started = time.perf_counter() if timed else 0.0
            route = classify_cached(data[pos : end + 4])
            kind = server.routes.get(route.target, 0) if route is not None else 0
            response: bytes | None = None
            if route is not None and kind:
                variant = (HEAD if route.head else GET) + route.close
                if kind == KEYS:
                    response = server.tables.wire_keys(variant)
                elif route.host:
                    scheme = self._scheme or self._connection_scheme()
                    response = server.tables.wire_discovery(scheme, route.host, variant)
            if response is None or route is None:
                self._hand_over(data[pos:])
                return
            transport.write(response)
            server.fast_requests += 1
            if timed:
                self._report(route.method, kind, route.user_agent, time.perf_counter() - started)
            answered = True
            if route.close:
                self.close()
                return
            pos = end + 4
        if answered:
            self.deadline = server.loop_time() + server.timeouts.idle

    def eof_received(self) -> bool | None:
        return None  # everything received was answered (or handed over): close our side too

    def _report(self, method: str, kind: int, user_agent: bytes, seconds: float) -> None:
        server = self._server
        path = server.route_names[kind]
        if server.observe is not None:
            server.observe(path, 200, seconds)
        if server.request_log is not None:
            if self._remote is None:
                self._remote = peer_address(self._transport)
            agent = user_agent.decode("latin-1")
            server.request_log(method, path, 200, self._remote, agent, seconds)

    def _connection_scheme(self) -> str:
        self._scheme = self._server.plain_scheme(self._transport)
        return self._scheme

    def _hand_over(self, data: bytes) -> None:
        transport = self._transport
        if transport is None:
            return
        server = self._server
        server.fast_connections.discard(self)
        self._transport = None
        server.hand_over(transport, data, self._write_paused, self.deadline)

    def writing(self) -> bool:
        """True while a response is still in the transport's buffer (a slow reader)."""
        transport = self._transport
        return transport is not None and transport.get_write_buffer_size() > 0

    def close(self) -> None:
        """Close after the responses already written are flushed."""
        transport = self._transport
        self._server.fast_connections.discard(self)
        if transport is not None and not transport.is_closing():
            if transport.get_write_buffer_size() > 0:
                self._server.draining.add(self)
            transport.close()

    def abort(self) -> None:
        """Drop the connection now (shutdown grace exhausted)."""
        self._server.draining.discard(self)
        if self._transport is not None:
            self._transport.abort()

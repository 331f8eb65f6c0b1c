"""The fast path: a small asyncio protocol that answers the two hot requests from ready bytes.

Relying parties send plain ``GET /keys`` and ``GET /.well-known/openid-configuration`` requests.
For exactly those (HTTP/1.1, ``GET``/``HEAD``, the exact route, one ``Host``, no body, no
conditional, range or forwarding header, strictly well-formed header lines) this protocol writes
a pre-assembled response: the same status line, headers (in the same order) and body the full
aiohttp handler produces, taken from the store's rendered bytes. Anything else — another path or
method, ``If-*``/``Range``, proxy headers, a body, HTTP/1.0, unusual syntax, a head over 4 KiB
or one that is not complete in what was read, write back-pressure, a key set not loaded yet —
hands the connection, with every byte not yet answered, to aiohttp's ``RequestHandler`` running
the full :class:`~spire_oidc.http.web.ProviderHandler`, and the connection stays there. So aiohttp's
parser and the full handler decide every case the fast path does not recognise, and the HTTP
behaviour is the same on both paths (the tests in tests/integration pin it).

Timeouts are aiohttp's: a deadline set at connect and after each response bounds the wait for a
complete head and keep-alive idleness; a connection handed over keeps its deadline until aiohttp
dispatches its first request (so trickling a head cannot double the timeout), and a connection
still writing a response to a slow reader is never cut. Shutdown closes idle connections at once
and waits (up to the grace period) for responses still being written.

Per request the fast path does a bounded scan of the head, a few comparisons and a dict lookup:
no JSON encoding, no key conversion, no response objects (DESIGN.md decision 7).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from typing import Any, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from spire_oidc.core.store import RenderedKeys
from spire_oidc.http.connlimit import ConnectionCap
from spire_oidc.http.web import DISCOVERY_HEADERS, ProviderHandler, keys_headers

# A request head longer than this (or more header lines) goes to aiohttp, which applies its own
# limits (8190-byte lines and fields, 128 headers) and answers 400/431 as it always did.
MAX_HEAD = 4096
MAX_HEADER_LINES = 64
READ_BUFFER = 64 * 1024
SWEEP_FRACTION = 0.1  # idle connections close between 1.0x and 1.1x keepalive_timeout

# Each header line: a token, a colon, then only visible ASCII, space and tab (RFC 9110 §5.5).
# obs-fold, bare CR/LF, NUL, obs-text and whitespace before the colon all fall back to aiohttp.
_HEADER_LINES = re.compile(rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t -~]*\r\n)*")
# Headers that change what the full handler or aiohttp's parser does with a request.
_FALLBACK_HEADERS = frozenset(
    {
        b"content-length",
        b"transfer-encoding",
        b"expect",
        b"upgrade",
        b"range",
        b"forwarded",
        b"proxy-connection",
        b"keep-alive",
    }
)
_FALLBACK_PREFIXES = (b"if-", b"x-forwarded-")

_KEYS = 1
_DISCOVERY = 2

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(seconds: int) -> str:
    """An IMF-fixdate, formatted as aiohttp formats its ``Date`` header."""
    t = time.gmtime(seconds)
    return (
        f"{_WEEKDAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def _assemble(headers: tuple[tuple[str, str], ...], body: bytes, date: str) -> list[bytes]:
    """The four wire variants of a 200: [GET, GET + close, HEAD, HEAD + close]."""
    head = "HTTP/1.1 200 OK\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers)
    head += f"Content-Length: {len(body)}\r\nDate: {date}\r\n"
    keep = (head + "\r\n").encode("latin-1")
    close = (head + "Connection: close\r\n\r\n").encode("latin-1")
    return [keep + body, close + body, keep, close]


class ResponseCache:
    """Whole responses for the current second: rebuilt when the clock second or the keys change."""

    def __init__(self, handler: ProviderHandler) -> None:
        self._handler = handler
        self._store = handler.store
        self._second = -1
        self._date = ""
        self._keys_for: RenderedKeys | None = None
        self._keys: list[bytes] = []
        self._discovery: dict[tuple[str, bytes], list[bytes]] = {}
        self.builds = 0  # how many response sets were assembled (a test bounds it)

    def _new_second(self, now: int) -> None:
        self._second = now
        self._date = http_date(now)
        self._keys_for = None
        self._discovery.clear()

    def keys(self, variant: int) -> bytes | None:
        """The 200 for ``/keys``; None when the full handler must answer (no keys, 500/501)."""
        current = self._store.current
        if current is None or not current.keys.keys:
            return None
        now = int(time.time())
        if now != self._second:
            self._new_second(now)
        if current is not self._keys_for:
            self._keys = _assemble(keys_headers(current), current.body, self._date)
            self._keys_for = current
            self.builds += 1
        return self._keys[variant]

    def discovery(self, scheme: str, host: bytes, variant: int) -> bytes | None:
        """The 200 for the discovery document; None unless the full handler already allowed
        and rendered this (scheme, host)."""
        now = int(time.time())
        if now != self._second:
            self._new_second(now)
        key = (scheme, host)
        responses = self._discovery.get(key)
        if responses is None:
            body = self._handler.cached_discovery(scheme, host.decode("ascii"))
            if body is None:
                return None
            if len(self._discovery) >= 64:
                self._discovery.clear()
            responses = self._discovery[key] = _assemble(DISCOVERY_HEADERS, body, self._date)
            self.builds += 1
        return responses[variant]


class FastServer(web.Server):
    """aiohttp's low-level server whose connections start on the fast path.

    Everything aiohttp's runner and sites do with a ``web.Server`` keeps working: the protocol
    factory, graceful shutdown (idle fast-path connections close at once; those still writing a
    response get the grace period), and every connection handed over becomes an ordinary
    ``RequestHandler``.
    """

    def __init__(self, handler: ProviderHandler, *, keepalive_timeout: float, **kwargs: Any):
        super().__init__(handler, keepalive_timeout=keepalive_timeout, **kwargs)
        self.provider = handler
        self.keepalive_timeout = keepalive_timeout
        self.responses = ResponseCache(handler)
        self.loop_time = self._loop.time
        routes: dict[bytes, int] = {}
        for route, kind in (
            (handler.plan.keys_route, _KEYS),
            (handler.plan.discovery_route, _DISCOVERY),
        ):
            if route.isascii():
                routes[route.encode("ascii")] = kind
        self.routes = routes
        self.route_names = {
            _KEYS: handler.plan.keys_route,
            _DISCOVERY: handler.plan.discovery_route,
        }
        # Request metrics for fast-path answers (aiohttp's access-log hook never sees them):
        # called with (route, status, seconds) after each answer; None when metrics are off.
        self.observer: Callable[[str, int, float], None] | None = None
        self.cap: ConnectionCap | None = None  # max_connections
        self.fast_connections: set[FastPathProtocol] = set()
        # One read buffer for every fast-path connection: transports fill it and call
        # buffer_updated() synchronously, and the bytes are consumed (or copied) before return.
        # (uvloop's SSL layer would otherwise allocate a 256 KiB bytes object per read.)
        self.read_buffer = memoryview(bytearray(READ_BUFFER))
        self.fast_requests = 0  # answered on the fast path (tests and benchmarks read it)
        self.handovers = 0  # connections handed to the full handler
        self.churn = 0  # connections opened or closed (memory.HeapTrimmer watches it)
        # One timer for every fast-path connection (not one per connection): it closes those
        # whose deadline passed, checking every SWEEP_FRACTION of the timeout (at most 1 s).
        self._sweep_interval = min(1.0, keepalive_timeout * SWEEP_FRACTION)
        self._sweeper: asyncio.TimerHandle | None = None
        # Handed over before aiohttp dispatched a request on them: their fast-path deadline.
        self._handed: dict[RequestHandler, float] = {}
        # Closed while a response was still being written: shutdown waits for them.
        self.draining: set[FastPathProtocol] = set()
        self._drained = asyncio.Event()
        self._full_handler = self.request_handler
        self.request_handler = self._dispatch

    def __call__(self) -> FastPathProtocol:  # type: ignore[override]
        return FastPathProtocol(self)

    def watch(self, conn: FastPathProtocol) -> None:
        """Track a new fast-path connection (for the idle sweep and for shutdown)."""
        self.fast_connections.add(conn)
        self.churn += 1
        self._arm()

    def watch_handover(self, protocol: RequestHandler, deadline: float) -> None:
        """Keep ``deadline`` for a handed-over connection until its first request is dispatched."""
        self._handed[protocol] = deadline
        self._arm()

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        if self._handed:
            self._handed.pop(request.protocol, None)
        return await self._full_handler(request)

    def drained(self) -> None:
        """The last connection closed with a response pending has finished writing it."""
        self._drained.set()

    def _arm(self) -> None:
        if self._sweeper is None and self.keepalive_timeout > 0:
            self._sweeper = self._loop.call_later(self._sweep_interval, self._sweep)

    def _sweep(self) -> None:
        now = self._loop.time()
        for conn in [c for c in self.fast_connections if c.deadline <= now]:
            if conn.writing():  # a slow reader still receiving a response: not idle
                conn.deadline = now + self.keepalive_timeout
            else:
                conn.close()  # idle: closed without an answer, like aiohttp
        for protocol in [p for p, deadline in self._handed.items() if deadline <= now]:
            del self._handed[protocol]
            transport = protocol.transport
            if transport is not None and transport.get_write_buffer_size() == 0:
                protocol.force_close()  # its head never completed in time (aiohttp's own close)
        self._sweeper = None
        if self.fast_connections or self._handed:
            self._sweeper = self._loop.call_later(self._sweep_interval, self._sweep)

    def full_protocol(self) -> RequestHandler:
        """A standard aiohttp connection handler running the full provider handler."""
        return super().__call__()

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
        # Responses still in a transport's buffer (slow readers) are finished, within the grace.
        if self.draining:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout)
        for conn in list(self.draining):
            conn.abort()
        await super().shutdown(timeout)


class FastPathProtocol(asyncio.BufferedProtocol):
    """One connection; answers recognised requests itself until the first one it does not."""

    __slots__ = ("_kind", "_scheme", "_server", "_transport", "_write_paused", "deadline")

    def __init__(self, server: FastServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._scheme = ""
        self._kind = 0
        self._write_paused = False
        # Like aiohttp's keep-alive timer: set at connect and after every response, it bounds
        # both the wait for a complete request head and keep-alive idleness (SPIRE's
        # ReadHeaderTimeout). The server's sweep closes the connection once it has passed.
        self.deadline = 0.0

    # -- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # No SO_KEEPALIVE (aiohttp sets it): an idle connection is closed after keepalive_timeout,
        # long before TCP keep-alive's first probe (2 h); a handed-over connection gets it anyway.
        self._transport = cast(asyncio.Transport, transport)  # uvloop's: no asyncio subclass
        server = self._server
        self.deadline = server.loop_time() + server.keepalive_timeout
        server.watch(self)
        cap = server.cap
        if cap is not None:
            cap.admit(len(server.fast_connections) + len(server.connections), self._transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._detach()
        self._transport = None
        server = self._server
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
        pos = 0
        size = len(data)
        answered = False
        while pos < size:
            end = data.find(b"\r\n\r\n", pos, pos + MAX_HEAD)
            if end < 0 or self._write_paused:  # an incomplete or long head; back-pressure
                self._handover(data[pos:])
                return
            observer = server.observer
            started = time.perf_counter() if observer is not None else 0.0
            answer = self._answer(data, pos, end)
            if answer is None:
                self._handover(data[pos:])
                return
            response, close = answer
            transport.write(response)
            server.fast_requests += 1
            if observer is not None:
                observer(server.route_names[self._kind], 200, time.perf_counter() - started)
            answered = True
            if close:
                self.close()
                return
            pos = end + 4
        if answered:
            self.deadline = server.loop_time() + server.keepalive_timeout

    def eof_received(self) -> bool | None:
        return None  # close our side too

    # -- the request head --------------------------------------------------------------------------
    def _answer(self, data: bytes, pos: int, end: int) -> tuple[bytes, bool] | None:
        """The response to the head ``data[pos:end]``, or None to hand it to the full handler."""
        line_end = data.find(b"\r\n", pos, end)
        if line_end < 0:  # no header at all (HTTP/1.1 needs Host): aiohttp answers
            return None
        method, _, rest = data[pos:line_end].partition(b" ")
        target, _, version = rest.partition(b" ")
        if version != b"HTTP/1.1":
            return None
        if method == b"GET":
            variant = 0
        elif method == b"HEAD":
            variant = 2
        else:
            return None
        kind = self._server.routes.get(target)
        if kind is None:
            return None
        self._kind = kind
        if _HEADER_LINES.fullmatch(data, line_end + 2, end + 2) is None:
            return None
        lines = data[line_end + 2 : end].split(b"\r\n")
        if len(lines) > MAX_HEADER_LINES:
            return None
        host: bytes | None = None
        close = False
        for line in lines:
            name, _, value = line.partition(b":")
            name = name.lower()
            if name == b"host":
                if host is not None:
                    return None  # duplicate Host: aiohttp answers 400
                host = value.strip(b" \t")
            elif name == b"connection":
                token = value.strip(b" \t").lower()
                if token == b"close":
                    if close:
                        return None
                    close = True
                elif token != b"keep-alive":
                    return None
            elif name in _FALLBACK_HEADERS or name.startswith(_FALLBACK_PREFIXES):
                return None
        if host is None:
            return None
        if close:
            variant += 1
        responses = self._server.responses
        if kind == _KEYS:
            response = responses.keys(variant)
        else:
            if not host:
                return None
            scheme = self._scheme or self._connection_scheme()
            response = responses.discovery(scheme, host, variant)
        if response is None:
            return None
        return response, close

    def _connection_scheme(self) -> str:
        if not self._scheme:
            assert self._transport is not None
            self._scheme = self._server.provider.plain_scheme(self._transport)
        return self._scheme

    # -- leaving the fast path ---------------------------------------------------------------------
    def _handover(self, data: bytes) -> None:
        """Give the connection (and the unanswered bytes) to aiohttp's full request handler."""
        transport = self._transport
        assert transport is not None
        self._detach()
        self._transport = None
        server = self._server
        server.handovers += 1
        protocol = server.full_protocol()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self._write_paused:
            protocol.pause_writing()
        if server.keepalive_timeout > 0:
            server.watch_handover(protocol, self.deadline)
        protocol.data_received(data)

    def writing(self) -> bool:
        """True while a response is still in the transport's buffer (a slow reader)."""
        transport = self._transport
        return transport is not None and transport.get_write_buffer_size() > 0

    def close(self) -> None:
        """Close after the responses already written are flushed."""
        transport = self._transport
        self._detach()
        if transport is not None and not transport.is_closing():
            if transport.get_write_buffer_size() > 0:
                self._server.draining.add(self)
            transport.close()

    def abort(self) -> None:
        """Drop the connection now (shutdown grace exhausted)."""
        self._server.draining.discard(self)
        if self._transport is not None:
            self._transport.abort()

    def _detach(self) -> None:
        self._server.fast_connections.discard(self)

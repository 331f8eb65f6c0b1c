"""The fast path (adapter.py + route.py) answers exactly like the full aiohttp handler, on real
sockets."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trustme

from spire_oidc.config.model import Config, ServingCertFileConfig
from spire_oidc.core.clock import SystemClock
from spire_oidc.core.keys import KeySet, key_from_jwk
from spire_oidc.core.store import KeyStore
from spire_oidc.daemon import Provider, run_blocking
from spire_oidc.http.timeouts import DEFAULT_TIMEOUTS, Timeouts
from spire_oidc.http.web import WebSettings
from tests.integration.pair_support import Pair, serve_pair
from tests.integration.support import file_config, get, parse_response, tcp_target, wait_for
from tests.keyfactory import bundle_bytes, ec_key, public_jwk, rsa_key

pytestmark = pytest.mark.integration

D = "/.well-known/openid-configuration"
_DATE = re.compile(rb"\r\nDate: [^\r]+\r\n")


def _no_date(data: bytes) -> bytes:
    return _DATE.sub(b"\r\nDate: -\r\n", data)


def _keyset(*jwks: dict[str, str]) -> KeySet:
    return KeySet(tuple(key_from_jwk(j) for j in jwks))


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    store = KeyStore(set_key_use=False, clock=SystemClock())
    store.publish(_keyset(public_jwk("kid-a", ec_key()), public_jwk("kid-b", rsa_key())))
    settings = WebSettings(domains=("localhost", "domain.test"), allow_insecure_scheme=True)
    served = await serve_pair(settings, store)
    yield served
    await served.close()


async def _exchange(addr: tuple[str, int], data: bytes, *, responses: int = 1) -> bytes:
    """Write ``data`` on one connection; read until ``responses`` responses (or EOF) arrived."""
    reader, writer = await asyncio.open_connection(*addr)
    writer.write(data)
    await writer.drain()
    out = b""
    head_only = data.startswith(b"HEAD ")
    try:
        while out.count(b"HTTP/1.") < responses or not _complete(out, head_only):
            chunk = await asyncio.wait_for(reader.read(65536), 5)
            if not chunk:
                break
            out += chunk
    finally:
        writer.close()
    return out


def _complete(data: bytes, head_only: bool = False) -> bool:
    """True when the last response in ``data`` has its whole body (Content-Length)."""
    last = data.rfind(b"HTTP/1.")
    head, sep, body = data[last:].partition(b"\r\n\r\n")
    if not sep:
        return False
    m = re.search(rb"\r\nContent-Length: (\d+)", head)
    if m is None or head_only or head.startswith((b"HTTP/1.1 304", b"HTTP/1.0 304")):
        return True
    return len(body) >= int(m.group(1))


REQUESTS = [
    get("/keys"),
    get("/keys", method="HEAD"),
    get("/keys", extra="Connection: close\r\n"),
    get("/keys", extra="Connection: Keep-Alive\r\n"),
    get("/keys", "whatever.invalid", "User-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n"),
    b"GET /keys HTTP/1.1\r\nhost:   localhost  \r\naccept: */*\r\n\r\n",
    get(D),
    get(D, "domain.test:8443"),
    get(D, method="HEAD"),
    get(D, extra="Connection: close\r\n"),
    get(D, "evil.test"),
    get(D, "LOCALHOST"),
    get(D, extra="X-Forwarded-Proto: http\r\n"),
    get(D, extra="X-Forwarded-Host: domain.test\r\n"),
    get("/keys", extra='If-None-Match: "x", *\r\n'),
    get("/keys", extra="If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"),
    get("/keys", extra="Range: bytes=0-9\r\n"),
    get("/keys?x=1"),
    get("/%6Beys"),
    get("/keys/"),
    get("/nope"),
    get("/keys", method="POST", extra="Content-Length: 0\r\n"),
    get("/keys", method="get"),
    b"GET /keys HTTP/1.0\r\nHost: localhost\r\n\r\n",
    b"GET /keys HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET /keys HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\nUser-Agent: y\r\n\r\n",
    b"GET /keys HTTP/1.1\r\n\r\n",
    b"GET /keys HTTP/1.1\r\nHost : localhost\r\n\r\n",
    b"GET /keys HTTP/1.1\r\nHost: localhost\r\n folded\r\n\r\n",
    b"GET /keys HTTP/1.1\r\nHost: localhost\r\nX-Bin: \xff\r\n\r\n",
    b"GET  /keys HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"GET /keys HTTP/1.1\r\nHost: localhost\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
    b"GET /keys HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /keys HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n\r\n",
    b"GET http://localhost/keys HTTP/1.1\r\nHost: localhost\r\n\r\n",
]


@pytest.mark.parametrize("request_bytes", REQUESTS, ids=lambda r: r.split(b"\r\n")[0].decode())
async def test_same_bytes_as_full_handler(pair: Pair, request_bytes: bytes) -> None:
    """Every request gets the same status line, headers (order included) and body on both paths."""
    fast = await _exchange(pair.fast, request_bytes)
    full = await _exchange(pair.full, request_bytes)
    assert fast.startswith(b"HTTP/1.")
    assert _no_date(fast) == _no_date(full)


async def test_hot_requests_stay_on_the_fast_path(pair: Pair) -> None:
    """Plain GET/HEAD of both routes never reach aiohttp's request machinery."""
    await _exchange(pair.fast, get(D))  # the first request for a host renders it (full handler)
    before = pair.server.handovers
    for req in (get("/keys"), get("/keys", method="HEAD"), get(D), get(D, method="HEAD")):
        await _exchange(pair.fast, req)
    assert pair.server.handovers == before
    assert pair.server.fast_requests >= 4


async def test_handover_mid_connection_and_pipelining(pair: Pair) -> None:
    """Pipelined fast, full and fast requests on one connection are answered in order."""
    conditional = get("/keys", extra='If-None-Match: "nope"\r\n')
    data = get("/keys") + get("/keys", extra="Range: bytes=0-4\r\n") + get("/keys") + conditional
    fast = await _exchange(pair.fast, data, responses=4)
    full = await _exchange(pair.full, data, responses=4)
    assert re.findall(rb"HTTP/1\.1 \d{3} [A-Za-z ]+", fast) == [
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 206 Partial Content",
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 200 OK",
    ]
    assert _no_date(fast) == _no_date(full)
    assert pair.server.handovers == 1


async def test_head_split_over_many_writes(pair: Pair) -> None:
    """A request head that arrives in pieces goes to the full handler, which answers it."""
    reader, writer = await asyncio.open_connection(*pair.fast)
    for piece in (b"GET /ke", b"ys HTTP/1.1\r\nHo", b"st: localhost\r", b"\n\r\n"):
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0.01)
    data = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert data.startswith(b"HTTP/1.1 200 OK")
    writer.close()
    assert pair.server.handovers == 1


async def test_unfinished_garbage_is_rejected_at_once(pair: Pair) -> None:
    """Bytes that can never be an HTTP head (a TLS ClientHello on the plain port) get aiohttp's
    immediate 400 on both paths, not a silent wait for the timeout."""
    hello = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(32)
    fast = await _exchange(pair.fast, hello)
    full = await _exchange(pair.full, hello)
    assert fast.startswith(b"HTTP/1.1 400") or fast.startswith(b"HTTP/1.0 400")
    assert _no_date(fast) == _no_date(full)


async def test_many_pipelined_requests_without_reading(pair: Pair) -> None:
    """A client that pipelines thousands of requests before reading gets every answer, in order;
    once the server's write buffer is full the connection moves to aiohttp's flow control."""
    n = 3000
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel absorbs little
    sock.connect(pair.fast)
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock)
    await wait_for(lambda: len(pair.server.fast_connections) == 1, what="connection")
    for conn in pair.server.fast_connections:  # a small buffer: back-pressure comes early
        conn._transport.set_write_buffer_limits(high=8192)  # type: ignore[union-attr]
    writer.write(get("/keys") * n)
    await writer.drain()
    await asyncio.sleep(0.2)  # let the server fill its buffer while nobody reads
    data = b""
    while data.count(b"HTTP/1.1 200 OK") < n:
        chunk = await asyncio.wait_for(reader.read(1 << 20), 10)
        assert chunk, f"closed after {data.count(b'HTTP/1.1 200 OK')} responses"
        data += chunk
    writer.close()
    body = pair.store.current.body if pair.store.current else b"-"
    assert data.count(b"HTTP/1.1 200 OK") == n and data.count(body) == n
    assert pair.server.handovers == 1
    assert 0 < pair.server.fast_requests < n


async def test_keys_change_is_served_at_once(pair: Pair) -> None:
    """A new key set replaces the ready-made /keys response on the next request."""
    first = parse_response(await _exchange(pair.fast, get("/keys")))
    pair.store.publish(_keyset(public_jwk("kid-rotated", ec_key())))
    second = parse_response(await _exchange(pair.fast, get("/keys")))
    assert b"kid-rotated" in second.body and b"kid-rotated" not in first.body
    assert second.header("ETag") != first.header("ETag")


# -- through daemon.start: timeouts, shutdown, TLS, uvloop -----------------------------------------
Start = Callable[..., Awaitable[Provider]]


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "bundle.json"
    path.write_bytes(bundle_bytes([public_jwk("kid-a", ec_key())]))
    return path


async def test_idle_keepalive_connection_is_closed(run_provider: Start, bundle: Path) -> None:
    """After a fast response an idle connection is closed after the keep-alive timeout."""
    p = await run_provider(file_config(bundle), timeouts=Timeouts(header=0.3, idle=0.3))
    await wait_for(lambda: p.store.current is not None, what="keys")
    reader, writer = await asyncio.open_connection(*tcp_target(p))
    writer.write(get("/keys"))
    await writer.drain()
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    rest = await asyncio.wait_for(reader.read(), 5)  # the body, then EOF when the server closes
    assert loop.time() - started >= 0.2
    assert not rest.endswith(b"HTTP/1.1")
    writer.close()


async def test_stop_closes_idle_fast_connections(run_provider: Start, bundle: Path) -> None:
    """Graceful shutdown closes idle keep-alive connections at once."""
    p = await run_provider(file_config(bundle))
    await wait_for(lambda: p.store.current is not None, what="keys")
    reader, writer = await asyncio.open_connection(*tcp_target(p))
    writer.write(get("/keys"))
    await writer.drain()
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await p.stop()
    assert loop.time() - started < DEFAULT_TIMEOUTS.idle / 2
    await asyncio.wait_for(reader.read(), 5)  # EOF
    writer.close()


def _tls_files(tmp_path: Path) -> tuple[trustme.CA, ServingCertFileConfig]:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_path.write_bytes(b"".join(b.bytes() for b in cert.cert_chain_pems))
    key_path.write_bytes(cert.private_key_pem.bytes())
    return ca, ServingCertFileConfig(
        cert_file_path=str(cert_path),
        key_file_path=str(key_path),
        addr="127.0.0.1:0",
        host="127.0.0.1",
        port=0,
    )


async def _tls_exchange(port: int, ca: trustme.CA, data: bytes, responses: int) -> bytes:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname="localhost"
    )
    writer.write(data)
    await writer.drain()
    out = b""
    while out.count(b"HTTP/1.1 ") < responses or not _complete(out):
        chunk = await asyncio.wait_for(reader.read(65536), 5)
        if not chunk:
            break
        out += chunk
    writer.close()
    return out


async def _tls_round(bundle: Path, tmp_path: Path) -> list[bytes]:  # status lines, issuers
    """Start a TLS provider, send fast + handed-over requests on one connection, stop it."""
    from spire_oidc.daemon import start

    ca, scf = _tls_files(tmp_path)
    p = await start(
        file_config(bundle, insecure_addr="", serving_cert_file=scf, allow_insecure_scheme=True)
    )
    try:
        await wait_for(lambda: p.store.current is not None, what="keys")
        port = int(p.addresses[0].rpartition(":")[2])
        data = get(D) + get(D) + get("/keys") + get("/keys", extra="Range: bytes=0-3\r\n")
        data += get("/keys") + get(D, extra="Connection: close\r\n")
        out = await _tls_exchange(port, ca, data, 6)
    finally:
        await p.stop()
    return re.findall(rb'HTTP/1\.1 \d{3} [A-Za-z ]+|"issuer": "[^"]+"', out)


async def test_tls_fast_path_and_handover(bundle: Path, tmp_path: Path) -> None:
    """Over TLS both paths answer on one connection and the issuer is https."""
    lines = await _tls_round(bundle, tmp_path)
    assert lines.count(b'"issuer": "https://localhost"') == 3
    ok, partial = b"HTTP/1.1 200 OK", b"HTTP/1.1 206 Partial Content"
    assert [x for x in lines if x.startswith(b"HTTP")] == [ok, ok, ok, partial, ok, ok]


def test_under_uvloop(bundle: Path, tmp_path: Path) -> None:
    """The fast path, the hand-over and TLS behave the same on uvloop's transports."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        lines = runner.run(_tls_round(bundle, tmp_path))
        assert type(runner.get_loop()).__module__.startswith("uvloop")
    assert lines.count(b'"issuer": "https://localhost"') == 3
    assert b"HTTP/1.1 206 Partial Content" in lines


def test_run_blocking_uses_uvloop(bundle: Path) -> None:
    """The console script's runner picks uvloop when it is installed."""
    from spire_oidc import daemon

    seen: list[str] = []

    async def fake_run(config: Config, *, stop: asyncio.Event | None = None) -> int:
        seen.append(type(asyncio.get_running_loop()).__module__)
        return 0

    original = daemon.run
    daemon.run = fake_run  # type: ignore[assignment]
    try:
        assert run_blocking(file_config(bundle)) == 0
    finally:
        daemon.run = original
    assert seen and seen[0].startswith("uvloop")


def test_fast_path_imports_no_upstream_client() -> None:
    """The fast path's modules, like web.py, read rendered bytes only: no gRPC, SPIFFE, ACME or
    sources."""
    from tests.unit.test_architecture import FORBIDDEN, _imports

    for module in ("http/adapter.py", "http/route.py", "http/responses.py", "http/server.py"):
        for name in _imports(module):
            assert not name.startswith(FORBIDDEN), (module, name)
            assert not name.startswith("spire_oidc.sources"), (module, name)

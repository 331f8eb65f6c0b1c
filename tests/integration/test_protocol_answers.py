"""Protocol answers on the real provider: no Server header, HTTP/1.x only, half-close answered."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from spire_oidc.config.model import Config
from spire_oidc.daemon import Provider
from tests.integration.support import file_config, get, tcp_target, wait_for
from tests.keyfactory import bundle_bytes, ec_key, public_jwk

pytestmark = pytest.mark.integration

Start = Callable[[Config], Awaitable[Provider]]
D = "/.well-known/openid-configuration"


@pytest.fixture
async def provider(run_provider: Start, tmp_path: Path) -> Provider:
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(bundle_bytes([public_jwk("kid-a", ec_key())]))
    p = await run_provider(file_config(bundle))
    await wait_for(lambda: p.store.current is not None, what="keys")
    return p


async def _send(p: Provider, data: bytes, *, half_close: bool = False) -> bytes:
    """Write ``data`` (then SHUT_WR when asked) and read until the server closes."""
    reader, writer = await asyncio.open_connection(*tcp_target(p))
    try:
        writer.write(data)
        if half_close:
            writer.write_eof()
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(32) + b"\r\n\r\n",
        b"GET /keys HTTP/1.1\r\nHost: localhost\r\nno colon here\r\n\r\n",
        b"GET /keys HTTP/1.1\r\nHost: localhost\r\nContent-Length: x\r\n\r\n",
        b"GET /keys HTTP/2.0\r\nHost: localhost\r\n\r\n",
        b"GET /keys\r\n\r\n",
    ],
    ids=["tls-hello", "no-colon", "bad-length", "http2", "no-version"],
)
async def test_no_server_header_on_refusals(provider: Provider, request_bytes: bytes) -> None:
    """Parser-level refusals and version refusals name no server software."""
    out = await _send(provider, request_bytes)
    assert out.startswith(b"HTTP/1.")
    head = out.partition(b"\r\n\r\n")[0].lower()
    assert b"\r\nserver:" not in head, out
    assert b"aiohttp" not in out.lower() and b"python" not in out.lower()


async def test_http2_request_line_gets_go_505(provider: Provider) -> None:
    """GET ... HTTP/2.0 is refused with Go's 505 on an HTTP/1.1 status line, then closed."""
    out = await _send(provider, get("/keys").replace(b"HTTP/1.1", b"HTTP/2.0"))
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 505 HTTP Version Not Supported: unsupported protocol version")
    assert body == b"505 HTTP Version Not Supported: unsupported protocol version"
    assert b"Connection: close" in head


async def test_request_line_without_version_gets_go_400(provider: Provider) -> None:
    """A request line with no version is not served as HTTP/0.9: Go's 400 on HTTP/1.1."""
    out = await _send(provider, b"GET /keys\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert body == b"400 Bad Request"


@pytest.mark.parametrize(
    ("request_bytes", "statuses"),
    [
        (get("/keys"), [b"200"]),
        (get("/nope"), [b"404"]),
        (b"GET /keys HTTP/1.0\r\nHost: localhost\r\n\r\n", [b"200"]),
        (get(D, "evil.test"), [b"400"]),
        (
            get("/keys", extra="Range: bytes=0-3\r\n") + get("/nope") + get("/keys"),
            [b"206", b"404", b"200"],
        ),
    ],
    ids=["fast-keys", "404", "http1.0", "bad-host", "pipelined"],
)
async def test_half_close_answers_what_was_received(
    provider: Provider, request_bytes: bytes, statuses: list[bytes]
) -> None:
    """After the requests and SHUT_WR, both paths answer every complete request, then close."""
    out = await _send(provider, request_bytes, half_close=True)
    got = re.findall(rb"HTTP/1\.[01] (\d{3}) ", out)
    assert got == statuses, out


async def test_half_closed_incomplete_head_is_closed_at_once(provider: Provider) -> None:
    """A head that can never complete (SHUT_WR in the middle) is closed without an answer."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    out = await _send(provider, b"GET /keys HTTP/1.1\r\nHost: loc", half_close=True)
    assert out == b""
    assert loop.time() - started < 2

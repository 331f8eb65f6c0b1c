"""The peeking TLS listener on real sockets: split ClientHellos, refusals with TLS alerts,
non-TLS clients, and graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator

import pytest
import trustme
from aiohttp import web

from spire_oidc.acme.certs import context_from_pem
from spire_oidc.acme.listener import PeekSite
from spire_oidc.acme.selector import CertificateTable
from spire_oidc.http.listeners import bind_tcp

pytestmark = pytest.mark.integration


async def _ok(request: web.BaseRequest) -> web.StreamResponse:
    return web.Response(text="ok")


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def site(ca: trustme.CA) -> AsyncIterator[tuple[int, PeekSite]]:
    leaf = ca.issue_cert("oidc.test")
    table = CertificateTable(["oidc.test"], wait_timeout=0.2)
    chain = b"".join(b.bytes() for b in leaf.cert_chain_pems)
    table.install("oidc.test", context_from_pem(chain, leaf.private_key_pem.bytes()))
    runner = web.ServerRunner(web.Server(_ok), shutdown_timeout=1.0)
    await runner.setup()
    sock = bind_tcp("127.0.0.1:0")[0]
    port = sock.getsockname()[1]
    peek = PeekSite(runner, sock, table.choose, handshake_timeout=1.0)
    await peek.start()
    yield port, peek
    await runner.cleanup()


def _client(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


async def _get(port: int, ctx: ssl.SSLContext, name: str | None = "oidc.test") -> bytes:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=name), 5
    )
    writer.write(b"GET / HTTP/1.1\r\nHost: oidc.test\r\nConnection: close\r\n\r\n")
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


async def test_a_client_hello_split_over_slow_writes_is_served(
    site: tuple[int, PeekSite], ca: trustme.CA
) -> None:
    """A ClientHello arriving in pieces 50 ms apart is peeked whole and the handshake completes."""
    port, _ = site
    ctx = _client(ca)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="oidc.test")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    for i in range(0, len(hello), 100):
        writer.write(hello[i : i + 100])
        await writer.drain()
        await asyncio.sleep(0.05)
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            if outgoing.pending:
                writer.write(outgoing.read())
            incoming.write(await asyncio.wait_for(reader.read(65536), 5))
    writer.write(outgoing.read())
    assert ("DNS", "oidc.test") in tls.getpeercert()["subjectAltName"]
    writer.close()


async def test_unknown_sni_is_refused_with_an_unrecognized_name_alert(
    site: tuple[int, PeekSite], ca: trustme.CA
) -> None:
    """A name outside domains gets a TLS unrecognized_name alert, not a certificate."""
    port, peek = site
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
        await _get(port, _client(ca), name="evil.test")
    assert peek.refused == 1


async def test_known_name_and_no_sni_are_served(site: tuple[int, PeekSite], ca: trustme.CA) -> None:
    """The configured name is served; a client without SNI gets the first name's certificate."""
    port, _ = site
    assert (await _get(port, _client(ca))).startswith(b"HTTP/1.1 200")
    ctx = _client(ca)
    ctx.check_hostname = False
    assert (await _get(port, ctx, name=None)).endswith(b"ok")


async def test_plain_http_and_silent_clients_are_closed(site: tuple[int, PeekSite]) -> None:
    """Plain HTTP on the TLS port is closed at once; a client that never speaks is dropped
    after the handshake time-out."""
    port, peek = site
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: oidc.test\r\n\r\n")
    with contextlib.suppress(ConnectionResetError):  # a FIN or a RST, never an answer
        assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await asyncio.wait_for(reader.read(), 3) == b""
    writer.close()
    assert peek.failed == 2

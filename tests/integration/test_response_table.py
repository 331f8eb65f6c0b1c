"""One response table per key snapshot: the fast path never serves a document of older keys."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from spire_oidc.core.clock import SystemClock
from spire_oidc.core.documents import DiscoveryOptions
from spire_oidc.core.keys import KeySet, key_from_jwk
from spire_oidc.core.store import KeyStore
from spire_oidc.http.adapter import FastServer
from spire_oidc.http.listeners import start_sites
from spire_oidc.http.server import build_main_server
from spire_oidc.http.timeouts import Timeouts
from spire_oidc.http.web import ProviderHandler, WebSettings
from tests.integration.support import get
from tests.keyfactory import ec_key, public_jwk, rsa_key

pytestmark = pytest.mark.integration

D = "/.well-known/openid-configuration"
ALGS = "id_token_signing_alg_values_supported"


def _keyset(*jwks: dict[str, str]) -> KeySet:
    return KeySet(tuple(key_from_jwk(j) for j in jwks))


async def _serve(server: web.Server) -> tuple[web.ServerRunner, tuple[str, int]]:
    runner = web.ServerRunner(server)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    await start_sites(runner, [sock])
    host, port = sock.getsockname()
    return runner, (host, port)


async def _document(addr: tuple[str, int]) -> dict[str, object]:
    reader, writer = await asyncio.open_connection(*addr)
    try:
        writer.write(get(D))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        body = await asyncio.wait_for(reader.readexactly(length), 5)
    finally:
        writer.close()
    doc = json.loads(body)
    assert isinstance(doc, dict)
    return doc


@pytest.fixture
async def served() -> AsyncIterator[tuple[KeyStore, FastServer, tuple[str, int]]]:
    store = KeyStore(set_key_use=False, clock=SystemClock())
    store.publish(_keyset(public_jwk("kid-ec", ec_key())))
    settings = WebSettings(
        domains=("localhost",),
        allow_insecure_scheme=True,
        discovery=DiscoveryOptions(signing_algs_from_keys=True),
    )
    server = build_main_server(
        ProviderHandler(settings, store),
        timeouts=Timeouts(),
        cap=None,
        observer=None,
        log_requests=False,
    )
    assert isinstance(server, FastServer)
    runner, addr = await _serve(server)
    yield store, server, addr
    await runner.cleanup()


async def test_rotation_is_seen_by_the_fast_path_at_once(
    served: tuple[KeyStore, FastServer, tuple[str, int]],
) -> None:
    """After an EC -> RSA rotation the very next discovery read lists RS256, on either path."""
    store, server, addr = served
    assert (await _document(addr))[ALGS] == ["ES256"]  # rendered by the full handler
    before = server.fast_requests
    assert (await _document(addr))[ALGS] == ["ES256"]  # now from the table, on the fast path
    assert server.fast_requests == before + 1
    store.publish(_keyset(public_jwk("kid-rsa", rsa_key())))
    assert (await _document(addr))[ALGS] == ["RS256"]
    before = server.fast_requests
    assert (await _document(addr))[ALGS] == ["RS256"]
    assert server.fast_requests == before + 1  # the new snapshot's variant is on the fast path


def test_restore_and_expiry_swap_the_table() -> None:
    """A snapshot change without publish (restored keys expiring) also retires the old table."""
    store = KeyStore(set_key_use=False, clock=SystemClock())
    store.restore(_keyset(public_jwk("kid-ec", ec_key())), mod_time=1.0)
    settings = WebSettings(domains=("localhost",), allow_insecure_scheme=True)
    tables = ProviderHandler(settings, store).tables
    table = tables.current()
    assert table.snapshot is store.current and tables.wire_keys(0) is not None
    table.add_discovery("http", "localhost", b"{}")
    assert tables.wire_discovery("http", b"localhost", 0) is not None
    assert store.expire_restored()
    fresh = tables.current()
    assert fresh is not table and fresh.snapshot is None
    assert fresh.discovery("http", "localhost") is None
    assert tables.wire_discovery("http", b"localhost", 0) is None
    assert tables.wire_keys(0) is None  # /keys goes to the full handler (500)

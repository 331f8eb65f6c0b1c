"""max_connections: past the cap new connections are closed; the open ones keep being served."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from spire_oidc.config.model import Config
from spire_oidc.daemon import Provider
from tests.integration.support import file_config, get, parse_response, tcp_target, wait_for
from tests.keyfactory import bundle_bytes, ec_key, public_jwk

pytestmark = pytest.mark.integration

Start = Callable[[Config], Awaitable[Provider]]


@pytest.mark.parametrize("log_requests", [False, True])  # fast path, and plain aiohttp
async def test_connection_cap(run_provider: Start, tmp_path: Path, log_requests: bool) -> None:
    """With 5 idle connections open and max_connections 5, a 6th is closed; after they go, it works."""
    bundle = tmp_path / "b.json"
    bundle.write_bytes(bundle_bytes([public_jwk("k", ec_key())]))
    p = await run_provider(file_config(bundle, max_connections=5, log_requests=log_requests))
    await wait_for(lambda: p.store.current is not None, what="keys")
    host, port = tcp_target(p)
    idle = [await asyncio.open_connection(host, port) for _ in range(5)]
    await asyncio.sleep(0.1)
    reader, writer = await asyncio.open_connection(host, port)
    with contextlib.suppress(ConnectionError):
        writer.write(get("/keys"))
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed without an answer
    writer.close()
    # The connections that were in keep serving.
    r0, w0 = idle[0]
    w0.write(get("/keys").replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
    assert parse_response(await asyncio.wait_for(r0.read(), 5)).status == 200
    for _, w in idle:
        w.close()
    await asyncio.sleep(0.2)
    r, w = await asyncio.open_connection(host, port)
    w.write(get("/keys").replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
    assert parse_response(await asyncio.wait_for(r.read(), 5)).status == 200
    w.close()

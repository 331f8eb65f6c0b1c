"""Issue 12.3: connections count against ``max_connections`` from accept, through the TLS
handshake (certificate-file listener) and the ClientHello peek (ACME listener); the peek's CPU is
bounded, and a real handshake completes promptly while many partial ClientHellos are held."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trustme

from spire_oidc.daemon import Provider
from spire_oidc.http.connlimit import ConnectionCap
from tests.integration.listener_support import (
    NAME,
    acme_config,
    cert_file_config,
    close_all,
    install_certificate,
    open_partial_hellos,
    target,
    tls_get,
)
from tests.integration.support import wait_for

pytestmark = pytest.mark.integration

Start = Callable[..., Awaitable[Provider]]
PROMPT = 5.0  # generous: a real handshake must finish well within this


def _cap(p: Provider) -> ConnectionCap:
    cap = getattr(p.main, "cap", None)
    if not isinstance(cap, ConnectionCap):
        raise AssertionError("the main listener has no connection cap")
    return cap


async def _refused(addr: tuple[str, int], ca: trustme.CA, name: str) -> bool:
    """A real TLS client is closed before its handshake completes."""
    try:
        await asyncio.wait_for(tls_get(addr, ca, name), PROMPT)
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        return True
    return False


@pytest.mark.parametrize("kind", ["cert_file", "acme"])
async def test_connections_in_handshake_count_against_the_cap(
    run_provider: Start, tmp_path: Path, kind: str
) -> None:
    """With max_connections 20 and 20 partial ClientHellos held, the cap counts all 20 as in
    handshake and refuses a 21st connection; once they go, a real client is served."""
    ca = trustme.CA()
    if kind == "cert_file":
        p = await run_provider(cert_file_config(tmp_path, ca, max_connections=20))
        name = "localhost"
    else:
        p = await run_provider(acme_config(tmp_path, ca, max_connections=20))
        install_certificate(p, ca)
        name = NAME
    await wait_for(lambda: p.store.current is not None, what="keys")
    addr = target(p.addresses[0])
    cap = _cap(p)
    held = await open_partial_hellos(addr, 20)
    try:
        await wait_for(lambda: cap.handshaking == 20, what="20 connections in handshake")
        assert await _refused(addr, ca, name)
        assert cap.refused >= 1
    finally:
        close_all(held)
    await wait_for(lambda: cap.handshaking == 0, what="handshakes released")
    response = await asyncio.wait_for(tls_get(addr, ca, name), PROMPT)
    assert response.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("kind", ["cert_file", "acme"])
async def test_real_handshake_completes_beside_200_partial_client_hellos(
    run_provider: Start, tmp_path: Path, kind: str
) -> None:
    """200 nearly complete 60 KiB ClientHellos are all counted, the ACME peek wakes at most
    twice per connection for them (no re-parsing every 50 ms), and a real client is served."""
    ca = trustme.CA()
    if kind == "cert_file":
        p = await run_provider(cert_file_config(tmp_path, ca))
        name = "localhost"
    else:
        p = await run_provider(acme_config(tmp_path, ca))
        install_certificate(p, ca)
        name = NAME
    await wait_for(lambda: p.store.current is not None, what="keys")
    addr = target(p.addresses[0])
    cap = _cap(p)
    held = await open_partial_hellos(addr, 200)
    try:
        await wait_for(lambda: cap.handshaking == 200, what="200 connections in handshake")
        await asyncio.sleep(1.0)  # the old peek re-parsed each hello ~20 times in this second
        if p.acme is not None:
            peeks = sum(site.peeks for site in p.acme.sites)
            assert peeks <= 2 * 200, f"{peeks} peeks for 200 partial hellos"
        response = await asyncio.wait_for(tls_get(addr, ca, name), PROMPT)
        assert response.startswith(b"HTTP/1.1 200")
        assert cap.handshaking == 200  # the held ones are still counted
    finally:
        close_all(held)

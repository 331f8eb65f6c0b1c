"""Host forms that must never name the issuer, over a raw socket to the real provider (issue 12.1)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from spire_oidc.config.model import Config
from spire_oidc.daemon import Provider
from tests.integration.support import file_config, get, tcp_target, wait_for
from tests.keyfactory import bundle_bytes, ec_key, public_jwk

pytestmark = pytest.mark.integration

Start = Callable[[Config], Awaitable[Provider]]
DISCOVERY = "/.well-known/openid-configuration"


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "bundle.json"
    path.write_bytes(bundle_bytes([public_jwk("kid-a", ec_key())]))
    return path


async def _twice(target: tuple[str, int], request: bytes) -> bytes:
    """The same request twice on one keep-alive connection (the second may take the fast path)."""
    reader, writer = await asyncio.open_connection(*target)
    closing = request[:-2] + b"Connection: close\r\n\r\n"
    writer.write(request + closing)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Host", "[localhost]:@evil.com"),
        ("X-Forwarded-Host", "[domain.test]:@evil.com"),
        ("Host", "[localhost]:443"),
        ("Host", "localhost:1" + "0" * 200),
        ("X-Forwarded-Host", "localhost:65536"),
        ("X-Forwarded-Host", "localhost:0"),
    ],
)
async def test_bracketed_or_absurd_host_is_refused_by_both_paths(
    run_provider: Start, bundle: Path, header: str, value: str
) -> None:
    """A bracketed name or an out-of-range port is 400 twice in a row, never an issuer."""
    p = await run_provider(file_config(bundle))
    await wait_for(lambda: p.store.current is not None, what="keys")
    if header == "Host":
        request = get(DISCOVERY, host=value)
    else:
        request = get(DISCOVERY, extra=f"{header}: {value}\r\n")
    data = await _twice(tcp_target(p), request)
    assert data.count(b"HTTP/1.1 400 ") == 2, data[:300]
    assert b"evil.com" not in data.replace(value.encode(), b"")
    assert b'"issuer"' not in data and b"HTTP/1.1 200" not in data


async def test_listed_host_with_port_still_served(run_provider: Start, bundle: Path) -> None:
    """A listed name with a decimal port, or SPIRE's empty port, still names the issuer."""
    p = await run_provider(file_config(bundle))
    for host, issuer in (
        ("localhost:8443", b"https://localhost:8443"),
        ("localhost:", b"https://localhost:"),
    ):
        data = await _twice(tcp_target(p), get(DISCOVERY, host=host))
        assert data.count(b"HTTP/1.1 200 ") == 2
        assert b'"issuer": "' + issuer + b'"' in data


async def test_bracketed_forwarded_host_from_a_trusted_proxy_is_refused(
    run_provider: Start, bundle: Path
) -> None:
    """With trusted_proxies listing the peer, a bracketed X-Forwarded-Host is still a 400."""
    p = await run_provider(file_config(bundle, trusted_proxies=("127.0.0.0/8",)))
    extra = "X-Forwarded-Host: [localhost]:@evil.com\r\n"
    data = await _twice(tcp_target(p), get(DISCOVERY, extra=extra))
    assert data.count(b"HTTP/1.1 400 ") == 2, data[:300]
    ok = await _twice(tcp_target(p), get(DISCOVERY, extra="X-Forwarded-Host: domain.test:8443\r\n"))
    assert b'"issuer": "https://domain.test:8443"' in ok  # the proxy is trusted: it is honoured

"""``cache_control`` on the provider's own listener: the same caching headers on the fast path and
the full aiohttp path, on GET, HEAD and 304, and SPIRE's exact headers for what is left unset."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from multidict import CIMultiDict

from spire_oidc.config.model import CacheControlConfig
from spire_oidc.core.clock import SystemClock
from spire_oidc.core.documents import DiscoveryOptions
from spire_oidc.core.keys import KeySet, key_from_jwk
from spire_oidc.core.store import KeyStore
from spire_oidc.daemon import Provider
from spire_oidc.http.responses import CachePolicy
from spire_oidc.http.web import WebSettings
from tests.integration.pair_support import Pair, serve_pair
from tests.integration.support import file_config, get, parse_response, tcp_target, wait_for
from tests.keyfactory import bundle_bytes, ec_key, public_jwk, rsa_key

pytestmark = pytest.mark.integration

D = "/.well-known/openid-configuration"
KEYS_CC = "public, max-age=300"
DISCOVERY_CC = "public, max-age=3600"
SPIRE_KEYS = {
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
    "Expires": "0",
}
_DATE = re.compile(rb"\r\nDate: [^\r]+\r\n")


MakePair = Callable[..., Awaitable[Pair]]


@pytest.fixture
async def make_pair() -> AsyncIterator[MakePair]:
    pairs: list[Pair] = []

    async def _make(
        policy: CachePolicy, *, keys: bool = True, discovery: DiscoveryOptions | None = None
    ) -> Pair:
        store = KeyStore(set_key_use=False, clock=SystemClock())
        if keys:
            store.publish(
                KeySet(
                    (
                        key_from_jwk(public_jwk("kid-a", ec_key())),
                        key_from_jwk(public_jwk("kid-b", rsa_key())),
                    )
                )
            )
        settings = WebSettings(
            domains=("localhost",),
            allow_insecure_scheme=True,
            cache=policy,
            discovery=discovery or DiscoveryOptions(),
        )
        served = await serve_pair(settings, store)
        pairs.append(served)
        return served

    yield _make
    for served in pairs:
        await served.close()


async def _raw(addr: tuple[str, int], request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(*addr)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


async def _client(
    addr: tuple[str, int], method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, CIMultiDict[str], bytes]:
    """One request through aiohttp's client (a real HTTP client, as relying parties use)."""
    url = f"http://{addr[0]}:{addr[1]}{path}"
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, headers={"Host": "localhost", **(headers or {})}) as resp,
    ):
        return resp.status, CIMultiDict(resp.headers), await resp.read()


async def test_configured_headers_on_both_paths_get_and_head(make_pair: MakePair) -> None:
    """Set, /keys carries only Cache-Control: <keys> and discovery gains Cache-Control: <discovery>, on GET and HEAD, fast path and aiohttp alike."""
    pair = await make_pair(CachePolicy(keys=KEYS_CC, discovery=DISCOVERY_CC))
    for addr in pair.both:
        for method in ("GET", "HEAD"):
            status, headers, _ = await _client(addr, method, "/keys")
            assert status == 200
            assert headers["Cache-Control"] == KEYS_CC
            assert "Pragma" not in headers and "Expires" not in headers
            assert headers["Access-Control-Allow-Origin"] == "*"
            status, headers, _ = await _client(addr, method, D)
            assert status == 200
            assert headers["Cache-Control"] == DISCOVERY_CC
            assert "Pragma" not in headers and "Expires" not in headers


async def test_fast_and_full_paths_send_identical_bytes(make_pair: MakePair) -> None:
    """With cache_control set, the fast path's wire responses equal aiohttp's byte for byte (Date aside), including HEAD."""
    pair = await make_pair(CachePolicy(keys=KEYS_CC, discovery=DISCOVERY_CC))
    for path in ("/keys", D):
        for method in ("GET", "HEAD"):
            request = get(path, extra="Connection: close", method=method)
            fast = _DATE.sub(b"\r\nDate: -\r\n", await _raw(pair.fast, request))
            full = _DATE.sub(b"\r\nDate: -\r\n", await _raw(pair.full, request))
            assert fast == full, (path, method)
            assert b"\r\nCache-Control: public, max-age=" in fast


@pytest.mark.parametrize("how", ["etag", "date"])
async def test_not_modified_carries_the_same_cache_control(make_pair: MakePair, how: str) -> None:
    """A /keys 304 (If-None-Match or If-Modified-Since) carries the configured Cache-Control and no Pragma/Expires (RFC 9110 §15.4.5)."""
    pair = await make_pair(CachePolicy(keys=KEYS_CC))
    for addr in pair.both:
        _, first, _ = await _client(addr, "GET", "/keys")
        cond = (
            {"If-None-Match": first["ETag"]}
            if how == "etag"
            else {"If-Modified-Since": first["Last-Modified"]}
        )
        status, headers, body = await _client(addr, "GET", "/keys", cond)
        assert status == 304 and body == b""
        assert headers["Cache-Control"] == KEYS_CC
        assert headers["ETag"] == first["ETag"]
        assert "Pragma" not in headers and "Expires" not in headers


async def test_not_modified_keeps_spire_headers_when_unset(make_pair: MakePair) -> None:
    """Without cache_control a 304 keeps SPIRE's Cache-Control, Pragma and Expires."""
    pair = await make_pair(CachePolicy())
    for addr in pair.both:
        _, first, _ = await _client(addr, "GET", "/keys")
        status, headers, _ = await _client(addr, "GET", "/keys", {"If-None-Match": first["ETag"]})
        assert status == 304
        assert {k: headers.get(k) for k in SPIRE_KEYS} == SPIRE_KEYS


async def test_an_unset_member_keeps_spire_behaviour(make_pair: MakePair) -> None:
    """Only keys set: discovery has no Cache-Control; only discovery set: /keys keeps SPIRE's three headers."""
    keys_only = await make_pair(CachePolicy(keys=KEYS_CC))
    discovery_only = await make_pair(CachePolicy(discovery=DISCOVERY_CC))
    for addr in keys_only.both:
        for method in ("GET", "HEAD"):
            _, headers, _ = await _client(addr, method, D)
            assert "Cache-Control" not in headers
    for addr in discovery_only.both:
        for method in ("GET", "HEAD"):
            _, headers, _ = await _client(addr, method, "/keys")
            assert {k: headers.get(k) for k in SPIRE_KEYS} == SPIRE_KEYS
            _, headers, _ = await _client(addr, method, D)
            assert headers["Cache-Control"] == DISCOVERY_CC


async def test_range_error_and_precondition_failed_follow_the_policy(make_pair: MakePair) -> None:
    """With keys set, a 416 carries none of SPIRE's Pragma/Expires and a 412 the configured Cache-Control."""
    pair = await make_pair(CachePolicy(keys=KEYS_CC))
    for addr in pair.both:
        status, headers, _ = await _client(addr, "GET", "/keys", {"Range": "bytes=100000-"})
        assert status == 416
        assert not {"Pragma", "Expires", "Cache-Control"} & set(headers)
        status, headers, _ = await _client(addr, "GET", "/keys", {"If-Match": '"nope"'})
        assert status == 412
        assert headers["Cache-Control"] == KEYS_CC and "Pragma" not in headers


async def test_placeholder_before_keys_is_not_stored(make_pair: MakePair) -> None:
    """A discovery placeholder rendered before the first key set says no-store; the real document then carries the configured value."""
    options = DiscoveryOptions(signing_algs_from_keys=True)
    pair = await make_pair(CachePolicy(discovery=DISCOVERY_CC), keys=False, discovery=options)
    for addr in pair.both:
        status, headers, _ = await _client(addr, "GET", D)
        assert status == 200 and headers["Cache-Control"] == "no-store"
    pair.store.publish(KeySet((key_from_jwk(public_jwk("kid-c", ec_key())),)))
    for addr in pair.both:
        _, headers, _ = await _client(addr, "GET", D)
        assert headers["Cache-Control"] == DISCOVERY_CC


async def test_headers_are_built_once_into_the_table(make_pair: MakePair) -> None:
    """The configured header is part of the precomputed table: many requests, at most one build per second."""
    pair = await make_pair(CachePolicy(keys=KEYS_CC, discovery=DISCOVERY_CC))
    table = pair.server.tables.current()
    assert table.keys is not None and ("Cache-Control", KEYS_CC) in table.keys[0]
    assert ("Cache-Control", DISCOVERY_CC) in table.discovery_headers
    assert table.not_modified is not None and ("Cache-Control", KEYS_CC) in table.not_modified
    before = pair.server.tables.builds
    reader, writer = await asyncio.open_connection(*pair.fast)
    try:
        for _ in range(50):
            writer.write(get("/keys"))
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            length = int(parse_response(head, head_only=True).header("Content-Length") or 0)
            await asyncio.wait_for(reader.readexactly(length), 5)
    finally:
        writer.close()
    assert pair.server.tables.builds - before <= 2  # the first build, plus one per new second


StartProvider = Callable[..., Awaitable[Provider]]


async def test_config_block_reaches_the_listener(
    run_provider: StartProvider, tmp_path: Path
) -> None:
    """The cache_control config block, through start-up, sets the listener's headers."""
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(bundle_bytes([public_jwk("kid-a", ec_key())]))
    config = file_config(
        bundle, cache_control=CacheControlConfig(keys=KEYS_CC, discovery=DISCOVERY_CC)
    )
    provider = await run_provider(config)
    await wait_for(lambda: provider.store.current is not None, what="keys")
    addr = tcp_target(provider)
    _, headers, _ = await _client(addr, "GET", "/keys")
    assert headers["Cache-Control"] == KEYS_CC and "Pragma" not in headers
    _, headers, _ = await _client(addr, "GET", D)
    assert headers["Cache-Control"] == DISCOVERY_CC

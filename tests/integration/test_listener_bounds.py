"""Issue 12.2: every listener is bounded. The health/metrics listener and the ACME http-01
listener close idle and trickling connections within the header timeout, refuse connections past
their share of ``max_connections`` while the main listener keeps answering, and a start-up that
fails after the ACME listener was built leaves no temp directory behind."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trustme

from spire_oidc.config.model import HealthChecksConfig, WorkloadAPIConfig
from spire_oidc.daemon import Provider, start
from spire_oidc.errors import ProviderError, StartupError
from spire_oidc.http.connlimit import SIDE_SHARE_MIN, side_share
from tests.integration.listener_support import (
    SHORT,
    acme_config,
    closed_by_server,
    health_config,
    target,
)
from tests.integration.support import get, raw_http, tcp_target, wait_for

pytestmark = pytest.mark.integration

Start = Callable[..., Awaitable[Provider]]
SLACK = 2.0  # how late a close may be on a loaded 2-core machine


async def _trickle(addr: tuple[str, int], deadline: float) -> float:
    """Send a request head one byte every 100 ms; returns how long until the server closed."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(*addr)
    started = loop.time()
    try:
        for byte in b"GET /live HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 1000:
            writer.write(bytes([byte]))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            if reader.at_eof() or loop.time() - started > deadline:
                break
            with contextlib.suppress(TimeoutError):
                if await asyncio.wait_for(reader.read(1), 0.1) == b"":
                    break
        return loop.time() - started
    finally:
        writer.close()


def test_side_share_is_a_twentieth_with_a_floor() -> None:
    """The side listeners' share: max_connections // 20, at least SIDE_SHARE_MIN."""
    assert side_share(10000) == 500
    assert side_share(5) == SIDE_SHARE_MIN


async def test_health_listener_closes_idle_and_trickling_connections(
    run_provider: Start, tmp_path: Path
) -> None:
    """An idle connection and a trickled request head on the health listener are closed
    within the header timeout (aiohttp's default would keep them over an hour)."""
    p = await run_provider(health_config(tmp_path), timeouts=SHORT)
    addr = target(p.health_addresses[0])
    assert await closed_by_server(addr, within=SHORT.header + SLACK)
    took = await _trickle(addr, deadline=SHORT.header + SLACK + 1)
    assert took < SHORT.header + SLACK


async def test_health_listener_refuses_past_its_share_and_main_still_answers(
    run_provider: Start, tmp_path: Path
) -> None:
    """With max_connections 5 the health listener holds 8 idle connections; a 9th is closed at
    once, and the main listener still answers."""
    p = await run_provider(health_config(tmp_path, max_connections=5))
    await wait_for(lambda: p.store.current is not None, what="keys")
    addr = target(p.health_addresses[0])
    share = side_share(5)
    held = [await asyncio.open_connection(*addr) for _ in range(share)]
    await asyncio.sleep(0.1)
    assert await closed_by_server(addr, send=b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n", within=5)
    assert (await raw_http(tcp_target(p), get("/keys"))).status == 200
    for _, w in held:
        w.close()
    await asyncio.sleep(0.2)
    reader, writer = await asyncio.open_connection(*addr)
    writer.write(b"GET /live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 200")
    writer.close()


async def test_http01_listener_is_bounded(run_provider: Start, tmp_path: Path) -> None:
    """The ACME http-01 listener closes idle and trickling connections within the timeout and
    refuses connections past its share."""
    ca = trustme.CA()
    p = await run_provider(acme_config(tmp_path, ca, max_connections=5), timeouts=SHORT)
    assert p.acme is not None
    addr = target(p.acme.http_addresses[0])
    assert await closed_by_server(addr, within=SHORT.header + SLACK)
    assert await _trickle(addr, deadline=SHORT.header + SLACK + 1) < SHORT.header + SLACK
    held = [await asyncio.open_connection(*addr) for _ in range(side_share(5))]
    await asyncio.sleep(0.1)
    assert await closed_by_server(addr, send=b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", within=0.9)
    for _, w in held:
        w.close()


def _acme_temp_dirs(root: Path) -> list[Path]:
    return list(root.glob("spire-oidc-acme-ca-*"))


async def test_failed_start_after_acme_is_built_leaves_no_temp_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start-up that fails after the ACME listener built its CA-bundle temp directory (here:
    the health port is taken) removes that directory and frees the ACME ports."""
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        hc_port = busy.getsockname()[1]
        hc = HealthChecksConfig(bind_port=hc_port, bind_host="127.0.0.1")
        config = acme_config(tmp_path, trustme.CA(), health_checks=hc)
        with pytest.raises(StartupError, match="address already in use"):
            await start(config, timeouts=SHORT)
    finally:
        busy.close()
    assert _acme_temp_dirs(temp_root) == []


async def test_failed_start_with_a_bad_source_leaves_no_temp_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source that cannot be built (a bad Workload API trust domain) fails start-up without
    leaving the ACME CA-bundle temp directory behind (it used to be created first)."""
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    source = WorkloadAPIConfig(socket_path=str(tmp_path / "agent.sock"), trust_domain="not a td!")
    with pytest.raises(ProviderError):
        await start(acme_config(tmp_path, trustme.CA(), source=source), timeouts=SHORT)
    assert _acme_temp_dirs(temp_root) == []

"""Promise 3 of issue 8: hostile connections on loopback do not starve normal clients.

The header timeout is SPIRE's 10 s ``ReadHeaderTimeout`` (``Timeouts.header``); the tests
shrink it so that they run in seconds. Slow-loris connections (a request head that never
completes, bytes trickled to look alive) must be closed within the timeout, whichever path of
the server holds them, while a normal client keeps getting prompt answers; oversized heads get a
4xx. (Methods other than GET/HEAD are pinned in test_http.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

from spire_oidc.config.model import Config, ServingCertFileConfig
from spire_oidc.daemon import Provider
from spire_oidc.http.timeouts import Timeouts
from tests.integration.support import file_config, get, raw_http, tcp_target, wait_for
from tests.keyfactory import bundle_bytes, ec_key, public_jwk

pytestmark = pytest.mark.integration

Start = Callable[..., Awaitable[Provider]]

TIMEOUT = 1.0  # the header timeout used by these tests (10 s in production)
SLACK = 1.0  # how late a close may be on a loaded 2-core machine
HEAD = b"GET /keys HTTP/1.1\r\nHost: localhost\r\n"


SHORT = Timeouts(header=TIMEOUT, idle=TIMEOUT, handshake=TIMEOUT)


@pytest.fixture
def short_timeout() -> Timeouts:
    """The tests that ask for it start their providers with ``SHORT`` (see ``run_provider``)."""
    return SHORT


@pytest.fixture
def run_provider(run_provider: Start, request: pytest.FixtureRequest) -> Start:
    """conftest's starter, with the short timeouts for the tests that ask for ``short_timeout``."""
    if "short_timeout" not in request.fixturenames:
        return run_provider

    async def start(config: Config) -> Provider:
        return await run_provider(config, timeouts=SHORT)

    return start


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "bundle.json"
    path.write_bytes(bundle_bytes([public_jwk("k1", ec_key())]))
    return path


async def _loaded(run_provider: Start, config: Config) -> Provider:
    provider = await run_provider(config)
    await wait_for(lambda: provider.store.current is not None, what="keys")
    return provider


@dataclass
class Loris:
    """One hostile connection: what it sends first, what it trickles, and what happened."""

    first: bytes
    trickle: bytes = b"X-Loris: 1\r\n"
    every: float = 0.1
    lifetimes: list[float] = field(default_factory=list)
    answers: list[bytes] = field(default_factory=list)

    async def once(self, host: str, port: int, ssl_ctx: ssl.SSLContext | None = None) -> None:
        """Open, send, trickle until the server closes; record the lifetime and any answer."""
        reader, writer = await asyncio.open_connection(host, port)
        started = time.monotonic()
        received = b""
        try:
            if self.first:
                writer.write(self.first)
            while True:
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), self.every)
                except TimeoutError:
                    if time.monotonic() - started > 30:
                        raise AssertionError("a hostile connection was never closed") from None
                    if self.trickle:
                        with contextlib.suppress(ConnectionError):
                            writer.write(self.trickle)
                    continue
                if not chunk:
                    break
                received += chunk
        except ConnectionError:
            pass
        finally:
            writer.close()
        self.lifetimes.append(time.monotonic() - started)
        self.answers.append(received)


@dataclass
class NormalClient:
    """A well-behaved client: one request at a time, each on a new connection; latencies kept."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    async def run(self, target: tuple[str, int], stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                r = await raw_http(target, get("/keys"), timeout=5)
                if r.status != 200:
                    self.failures.append(f"status {r.status}")
            except (OSError, TimeoutError) as exc:
                self.failures.append(repr(exc))
            self.latencies.append(time.monotonic() - started)
            await asyncio.sleep(0.01)


async def test_slowloris_connections_are_cut_and_normal_clients_still_served(
    run_provider: Start, bundle: Path, short_timeout: Timeouts
) -> None:
    """300 slow-loris connections (reconnecting when cut) are each closed within the header
    timeout, unanswered, while a normal client is answered promptly throughout."""
    provider = await _loaded(run_provider, file_config(bundle))
    host, port = tcp_target(provider)
    kinds = {
        # A head that never ends, a header line trickled every 100 ms (the fast path holds it).
        "partial head": Loris(HEAD),
        # One request answered, then a second head that never ends (keep-alive timer re-armed).
        "after a response": Loris(HEAD + b"\r\n" + HEAD),
        # Answered by the full handler (conditional request), then a partial head.
        "after a full-path response": Loris(HEAD + b"If-None-Match: x\r\n\r\n" + HEAD),
        # Connected, silent.
        "silent": Loris(b"", trickle=b""),
    }
    per_kind = 75
    stop = asyncio.Event()

    async def attacker(loris: Loris) -> None:
        while not stop.is_set():
            await loris.once(host, port)

    normal = NormalClient()
    tasks = [asyncio.create_task(attacker(lo)) for lo in kinds.values() for _ in range(per_kind)]
    tasks.append(asyncio.create_task(normal.run((host, port), stop)))
    await asyncio.sleep(3.5 * TIMEOUT)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 3 * (TIMEOUT + SLACK))

    for name, loris in kinds.items():
        assert len(loris.lifetimes) >= per_kind * 3 // 2, name  # cut, reconnected, cut again
        assert max(loris.lifetimes) <= TIMEOUT + SLACK, (name, max(loris.lifetimes))
        for answer in loris.answers:  # never an answer to the unfinished head
            assert answer.count(b"HTTP/1.1 ") == (0 if name in ("partial head", "silent") else 1)
    assert not normal.failures, normal.failures[:5]
    assert len(normal.latencies) >= 20
    assert max(normal.latencies) < 1.0, max(normal.latencies)
    print(
        f"\nslowloris: {sum(len(lo.lifetimes) for lo in kinds.values())} hostile connections "
        f"cut after <= {max(max(lo.lifetimes) for lo in kinds.values()):.2f} s "
        f"(timeout {TIMEOUT} s); normal client {len(normal.latencies)} requests, median "
        f"{statistics.median(normal.latencies) * 1000:.1f} ms, max "
        f"{max(normal.latencies) * 1000:.1f} ms"
    )


async def test_connection_burst_fits_the_accept_queue(run_provider: Start, bundle: Path) -> None:
    """500 connections arriving while the event loop is busy all complete at once (the listen
    backlog is 1024, not aiohttp's default 128, so no SYN is dropped and retried a second later)."""
    provider = await _loaded(run_provider, file_config(bundle))
    target = tcp_target(provider)
    socks: list[socket.socket] = []
    try:
        for _ in range(500):  # the loop is blocked here: nothing is accepted meanwhile
            socks.append(socket.create_connection(target, timeout=0.5))
    finally:
        for sock in socks:
            sock.close()
    assert (await raw_http(target, get("/keys"))).status == 200


async def test_long_unfinished_head_is_cut_within_the_timeout(
    run_provider: Start, bundle: Path, short_timeout: Timeouts
) -> None:
    """A head that grows past the fast path's 4 KiB, slowly, is still cut within the timeout."""
    provider = await _loaded(run_provider, file_config(bundle))
    host, port = tcp_target(provider)
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(HEAD + b"X-Pad: " + b"a" * 3900 + b"\r\n")  # held by the fast path
    await asyncio.sleep(0.8 * TIMEOUT)
    writer.write(b"X-Pad-2: " + b"b" * 300 + b"\r\n")  # past 4 KiB: handed to aiohttp
    with contextlib.suppress(ConnectionError):
        while not reader.at_eof():
            try:
                await asyncio.wait_for(reader.read(65536), 0.1)
            except TimeoutError:
                writer.write(b"X-Loris: 1\r\n")
            assert time.monotonic() - started < 5 * TIMEOUT, "never closed"
    writer.close()
    assert time.monotonic() - started <= TIMEOUT + 0.5


def _tls_config(bundle: Path, tmp_path: Path) -> tuple[Config, trustme.CA]:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_path.write_bytes(b"".join(b.bytes() for b in cert.cert_chain_pems))
    key_path.write_bytes(cert.private_key_pem.bytes())
    scf = ServingCertFileConfig(
        cert_file_path=str(cert_path),
        key_file_path=str(key_path),
        addr="127.0.0.1:0",
        host="127.0.0.1",
        port=0,
    )
    return file_config(bundle, insecure_addr="", serving_cert_file=scf), ca


async def test_tls_handshake_that_never_completes_is_cut_within_the_timeout(
    run_provider: Start, bundle: Path, tmp_path: Path, short_timeout: Timeouts
) -> None:
    """A TLS client that connects and never finishes its handshake is cut within the timeout."""
    config, _ca = _tls_config(bundle, tmp_path)
    provider = await _loaded(run_provider, config)
    host, port = tcp_target(provider)
    loris = Loris(b"\x16\x03\x01\x02\x00\x01", trickle=b"", every=0.1)  # a ClientHello's start
    with contextlib.suppress(AssertionError, TimeoutError):
        await asyncio.wait_for(loris.once(host, port), TIMEOUT + SLACK + 1)
    assert loris.lifetimes and loris.lifetimes[0] <= TIMEOUT + SLACK


async def test_tls_slow_handshakes_do_not_starve_tls_clients(
    run_provider: Start, bundle: Path, tmp_path: Path, short_timeout: Timeouts
) -> None:
    """200 connections stuck mid-handshake leave real TLS clients served promptly."""
    config, ca = _tls_config(bundle, tmp_path)
    provider = await _loaded(run_provider, config)
    host, port = tcp_target(provider)
    writers = []
    for _ in range(200):
        _reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"\x16\x03\x01\x02\x00\x01")
        writers.append(writer)
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    latencies = []
    try:
        for _ in range(20):
            started = time.monotonic()
            r = await raw_http(
                (host, port), get("/keys"), ssl_ctx=ctx, server_hostname="localhost", timeout=5
            )
            latencies.append(time.monotonic() - started)
            assert r.status == 200
    finally:
        for writer in writers:
            writer.close()
    assert max(latencies) < 1.0, max(latencies)


async def _statuses_of_pieces(target: tuple[str, int], data: bytes, size: int) -> list[int]:
    """Send ``data`` in ``size``-byte writes while reading; the status codes answered.

    Writing stops once the server has answered (it closes after a 4xx, and more bytes would
    make its kernel reset the connection, which can discard the answer before it is read).
    """
    reader, writer = await asyncio.open_connection(*target)
    received = bytearray()

    def statuses() -> list[int]:
        return [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d{3}) ", received)]

    async def read_all() -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                received.extend(chunk)

    reading = asyncio.create_task(read_all())
    with contextlib.suppress(ConnectionError):
        for i in range(0, len(data), size):
            if len(statuses()) >= 2 or reading.done():
                break
            writer.write(data[i : i + size])
            await writer.drain()
            await asyncio.sleep(0.001)
    await asyncio.wait_for(reading, 5)
    writer.close()
    return statuses()


async def test_oversized_and_overlong_heads_get_4xx(
    run_provider: Start, bundle: Path, short_timeout: Timeouts
) -> None:
    """Heads past aiohttp's limits (8190-byte lines, 128 fields, so about 1 MiB in all, like Go's
    1 MiB MaxHeaderBytes) get a 4xx on either path, sent at once or in small pieces."""
    provider = await _loaded(run_provider, file_config(bundle))
    target = tcp_target(provider)
    ok = [
        HEAD + b"X-Big: " + b"a" * 8000 + b"\r\n\r\n",
        b"GET /keys?" + b"a" * 8000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n",
        HEAD + b"".join(b"X-%d: v\r\n" % i for i in range(120)) + b"\r\n",
    ]
    refused = [
        HEAD + b"X-Big: " + b"a" * 8191 + b"\r\n\r\n",  # one field over the line limit
        HEAD + b"X" * 8191 + b": v\r\n\r\n",  # a field name over it
        b"GET /keys?" + b"a" * 8191 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n",  # request line
        HEAD + b"".join(b"X-%d: v\r\n" % i for i in range(200)) + b"\r\n",  # too many fields
        HEAD + b"".join(b"X-%d: %s\r\n" % (i, b"a" * 8000) for i in range(140)) + b"\r\n",  # >1 MiB
    ]
    for request in ok:
        assert (await raw_http(target, request)).status == 200
    for request in refused:
        r = await raw_http(target, request)
        assert 400 <= r.status < 500, (r.status, request[:40])
        # The same head in pieces (at most 64, so it beats the header timeout), after an
        # answered request on the same connection.
        pieces = max(512, len(request) // 64)
        statuses = await _statuses_of_pieces(target, get("/keys") + request, pieces)
        assert statuses[0] == 200 and len(statuses) == 2 and 400 <= statuses[1] < 500, statuses
    assert (await raw_http(target, get("/keys"))).status == 200

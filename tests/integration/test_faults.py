"""Promise 1 of issue 8, "keys are never lost": fault injection under load.

A provider runs in-process on loopback with a real upstream (the gRPC fakes of the SPIRE agent
and server on unix sockets, or a bundle file) while a load generator hits ``/keys`` with a bounded
number of concurrent requests. The upstream is then broken every way the issue lists: killed and
restarted many times, its socket removed or left stale, ``PERMISSION_DENIED``, garbage, empty and
truncated responses, a bundle file replaced by invalid JSON. Every answer must be a 200 whose body
is a JWKS the store really published, never an older one than the store held when the request
started; after the faults a rotation must still get through. A valid bundle with no keys is a
revocation (501), not a fault: it has its own test at the end.

Each test prints one ``fault-injection:`` line with its figures (``pytest -s`` shows them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import grpc
import pytest

from spire_oidc._compat import workload_pb2
from spire_oidc._proto.spire.api.server.bundle.v1 import bundle_pb2 as service_pb2
from spire_oidc._proto.spire.api.types import bundle_pb2 as types_pb2
from spire_oidc.config.model import Config, FileConfig, ServerAPIConfig, WorkloadAPIConfig
from spire_oidc.core.store import RenderedKeys
from spire_oidc.daemon import Provider
from tests.fakes.fake_server_api import FakeServerAPI, authority
from tests.fakes.fake_workload_api import FakeWorkloadAPI
from tests.fakes.keys import ec_key, jwk, jwks, pkix
from tests.fakes.sink import short_socket_dir
from tests.integration.support import file_config, get, raw_http, tcp_target, wait_for
from tests.keyfactory import bundle_bytes, public_jwk

pytestmark = pytest.mark.integration

Start = Callable[[Config], Awaitable[Provider]]

TD = "spiffe://example.org"
FED = "spiffe://federated.test"
CONCURRENCY = 6  # requests in flight at any time (4 keep-alive workers, 2 new-connection ones)
REQUEST_TIMEOUT = 5.0


# -- the load generator and its checks ---------------------------------------------------------------
@dataclass
class LoadFigures:
    requests: int = 0
    during_faults: int = 0
    failures: list[str] = field(default_factory=list)
    bodies_seen: set[bytes] = field(default_factory=set)


class KeysLoad:
    """Hits ``/keys`` continuously and checks every answer against what the store published.

    ``published`` maps each JWKS body the store ever served to its publication index (the
    store's change listener fills it). An answer fails when it is not a 200, when its body was
    never published, or when it is older than the key set the store held as the request started.
    """

    def __init__(self, provider: Provider, *, concurrency: int = CONCURRENCY) -> None:
        self.provider = provider
        host, port = tcp_target(provider)
        self.url = f"http://{host}:{port}/keys"
        self.concurrency = concurrency
        self.published: dict[bytes, int] = {}
        self.figures = LoadFigures()
        self.faults = 0
        self._in_fault = 0
        self._stop = asyncio.Event()
        provider.store.add_listener(self._on_publish)
        if provider.store.current is not None:
            self._on_publish(provider.store.current)

    def _on_publish(self, rendered: RenderedKeys) -> None:
        self.published.setdefault(rendered.body, len(self.published))

    @contextlib.contextmanager
    def fault(self, count: int = 1) -> Iterator[None]:
        """Mark a fault window: requests answered meanwhile are counted as served during faults."""
        self.faults += count
        self._in_fault += 1
        try:
            yield
        finally:
            self._in_fault -= 1

    async def _worker(self, session: aiohttp.ClientSession) -> None:
        store = self.provider.store
        fig = self.figures
        while not self._stop.is_set():
            current = store.current
            floor = self.published.get(current.body, -1) if current is not None else -1
            during = self._in_fault > 0
            try:
                async with session.get(self.url) as resp:
                    body = await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                fig.failures.append(f"request failed: {exc!r}")
                await asyncio.sleep(0.01)
                continue
            fig.requests += 1
            if during:
                fig.during_faults += 1
            index = self.published.get(body)
            if status != 200:
                fig.failures.append(f"status {status}: {body[:80]!r}")
            elif index is None:
                fig.failures.append(f"body never published: {body[:80]!r}")
            elif index < floor:
                fig.failures.append(f"stale key set served (publication {index} < {floor})")
            else:
                fig.bodies_seen.add(body)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[KeysLoad]:
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        keep = aiohttp.TCPConnector(limit=self.concurrency)
        fresh = aiohttp.TCPConnector(limit=self.concurrency, force_close=True)
        async with (
            aiohttp.ClientSession(connector=keep, timeout=timeout) as keep_alive,
            aiohttp.ClientSession(connector=fresh, timeout=timeout) as new_conn,
        ):
            n_fresh = max(1, self.concurrency // 3)
            workers = [
                asyncio.create_task(self._worker(new_conn if i < n_fresh else keep_alive))
                for i in range(self.concurrency)
            ]
            try:
                await wait_for(lambda: self.figures.requests >= 20, what="load to start")
                yield self
            finally:
                self._stop.set()
                await asyncio.wait_for(asyncio.gather(*workers), REQUEST_TIMEOUT + 2)

    async def hold(self, seconds: float) -> None:
        """Keep the load running for ``seconds`` (the upstream stays as it is)."""
        await asyncio.sleep(seconds)

    def report(self, scenario: str) -> None:
        fig = self.figures
        print(
            f"\nfault-injection: {scenario}: faults injected {self.faults}, requests "
            f"{fig.requests} ({fig.during_faults} during faults), key sets published "
            f"{len(self.published)}, served {len(fig.bodies_seen)}, failures {len(fig.failures)}"
        )

    def assert_no_failures(self) -> None:
        fig = self.figures
        if fig.failures:
            raise AssertionError(f"{len(fig.failures)} failures, first: {fig.failures[:5]}")
        if fig.during_faults == 0:
            raise AssertionError("no request was served while a fault was active")


async def served_kids(provider: Provider) -> list[str]:
    import json

    r = await raw_http(tcp_target(provider), get("/keys"))
    assert r.status == 200, (r.status, r.body)
    return [k["kid"] for k in json.loads(r.body)["keys"]]


async def wait_serving(provider: Provider, kid: str, within: float = 5.0) -> None:
    """Wait until the store serves a key set containing ``kid``."""

    def has() -> bool:
        current = provider.store.current
        return current is not None and kid in current.keys.kids

    await wait_for(has, timeout=within, what=f"kid {kid} served")
    assert kid in await served_kids(provider)


@pytest.fixture
def sock_dir(tmp_path: Path) -> Iterator[Path]:
    d = short_socket_dir(tmp_path)
    yield d
    if d != tmp_path:
        shutil.rmtree(d, ignore_errors=True)


# -- the Workload API (SPIRE agent) -------------------------------------------------------------------
class Rotation:
    """Successive JWKS generations: each keeps the previous key and adds a new one (as SPIRE)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.generation = 0
        self._keys = [(f"{prefix}-0", ec_key())]

    @property
    def newest(self) -> str:
        return self._keys[-1][0]

    def next(self) -> str:
        self.generation += 1
        self._keys = [*self._keys[-1:], (f"{self.prefix}-{self.generation}", ec_key())]
        return self.newest

    def jwks(self) -> bytes:
        return jwks(*(jwk(kid, key) for kid, key in self._keys))

    def authorities(self) -> list[types_pb2.JWTKey]:
        return [authority(kid, pkix(key)) for kid, key in self._keys]


def workload_config(agent: FakeWorkloadAPI) -> Config:
    source = WorkloadAPIConfig(socket_path=agent.socket_path, trust_domain=TD, poll_interval=0.3)
    return file_config(Path("unused"), source=source)


@contextlib.asynccontextmanager
async def agent_and_provider(
    sock_dir: Path, run_provider: Start, rotation: Rotation
) -> AsyncIterator[tuple[FakeWorkloadAPI, Provider]]:
    agent = FakeWorkloadAPI(sock_dir / "agent.sock")
    await agent.start()
    try:
        agent.set_jwks(TD, rotation.jwks())
        provider = await run_provider(workload_config(agent))
        await wait_serving(provider, rotation.newest)
        yield agent, provider
    finally:
        await agent.stop()


async def test_workload_api_agent_killed_and_restarted_under_load(
    sock_dir: Path, run_provider: Start
) -> None:
    """The agent killed and restarted 15 times under load (rotating every third time): no failure."""
    rng = random.Random(8)
    rotation = Rotation("wl-restart")
    async with agent_and_provider(sock_dir, run_provider, rotation) as (agent, provider):
        load = KeysLoad(provider)
        async with load.running():
            for cycle in range(15):
                await agent.wait_for_streams(1, within=5)
                with load.fault():
                    await agent.stop()  # every open stream is cut, the socket disappears
                    await load.hold(rng.uniform(0.02, 0.25))
                    if cycle % 3 == 2:
                        rotation.next()
                        agent.set_jwks(TD, rotation.jwks(), push=False)
                    await agent.start()
                await load.hold(0.05)
            await wait_serving(provider, rotation.newest)
            rotation.next()
            agent.set_jwks(TD, rotation.jwks())
            await wait_serving(provider, rotation.newest)
        load.report("workload_api agent killed+restarted")
        load.assert_no_failures()
        assert len(load.figures.bodies_seen) >= 5  # the rotations really were served


async def test_workload_api_socket_removed_or_stale_under_load(
    sock_dir: Path, run_provider: Start
) -> None:
    """Socket removed, left stale with nobody listening, or unlinked under a live agent: no failure."""
    rotation = Rotation("wl-socket")
    async with agent_and_provider(sock_dir, run_provider, rotation) as (agent, provider):
        load = KeysLoad(provider)
        async with load.running():
            for _ in range(2):
                with load.fault():  # agent gone, socket file removed
                    await agent.stop()
                    await load.hold(0.4)
                    await agent.start()
                await agent.wait_for_streams(1, within=5)
                with load.fault():  # agent gone, stale socket file left behind
                    await agent.stop(remove_socket=False)
                    await load.hold(0.4)
                    os.unlink(agent.socket_path)
                    await agent.start()
                await agent.wait_for_streams(1, within=5)
                with load.fault():  # socket file deleted under a running agent, streams broken
                    os.unlink(agent.socket_path)
                    agent.break_streams()
                    await load.hold(0.4)
                    await agent.restart()  # recreates the socket
                await agent.wait_for_streams(1, within=5)
                rotation.next()
                agent.set_jwks(TD, rotation.jwks())
                await wait_serving(provider, rotation.newest)
        load.report("workload_api socket removed/stale")
        load.assert_no_failures()


async def test_workload_api_permission_denied_under_load(
    sock_dir: Path, run_provider: Start
) -> None:
    """PERMISSION_DENIED on every reconnect for a while keeps the last keys served, then recovers."""
    rotation = Rotation("wl-denied")
    async with agent_and_provider(sock_dir, run_provider, rotation) as (agent, provider):
        load = KeysLoad(provider)
        async with load.running():
            for _ in range(3):
                with load.fault():
                    agent.deny()
                    agent.break_streams()
                    await load.hold(0.6)
                    assert provider.store.last_error is not None
                    assert "PERMISSION_DENIED" in provider.store.last_error
                    agent.allow()
                rotation.next()
                agent.set_jwks(TD, rotation.jwks(), push=False)
                await wait_serving(provider, rotation.newest)
        load.report("workload_api PERMISSION_DENIED")
        load.assert_no_failures()


def _truncated_response(rotation: Rotation) -> bytes:
    """A JWTBundlesResponse cut in the middle of our trust domain's JWKS value."""
    full = workload_pb2.JWTBundlesResponse(
        bundles={TD: rotation.jwks(), FED: jwks(jwk("fed", ec_key()))}
    ).SerializeToString()
    cut = full.index(b'"keys"') + 20
    return full[:cut]


async def test_workload_api_garbage_empty_and_truncated_under_load(
    sock_dir: Path, run_provider: Start
) -> None:
    """Garbage, empty and truncated messages, bad JWKS, streams ended or aborted: no failure."""
    rotation = Rotation("wl-garbage")
    bad_key = {**jwk("bad", ec_key()), "x": "AAAA"}
    async with agent_and_provider(sock_dir, run_provider, rotation) as (agent, provider):
        load = KeysLoad(provider)
        injections: list[Callable[[], int]] = [
            lambda: agent.push_garbage(),
            lambda: agent.push_garbage(os.urandom(64)),
            lambda: agent.push_garbage(_truncated_response(rotation)),
            lambda: agent.push(workload_pb2.JWTBundlesResponse()),  # empty: no bundle at all
            lambda: agent.push({FED: jwks(jwk("fed", ec_key()))}),  # not our trust domain
            lambda: agent.push({TD: b""}),  # empty JWKS bytes
            lambda: agent.push({TD: b"{}"}),  # no "keys" member
            lambda: agent.push({TD: rotation.jwks()[:25]}),  # truncated JSON
            lambda: agent.push({TD: b'{"keys": "nope"}'}),
            lambda: agent.push({TD: jwks(bad_key)}),  # every key malformed
            lambda: agent.push({TD: b"\xff\xfe"}),  # not UTF-8
            lambda: agent.end_streams(),
            lambda: agent.break_streams(grpc.StatusCode.INTERNAL, "boom"),
            lambda: agent.break_streams(grpc.StatusCode.DATA_LOSS, "lost"),
        ]
        async with load.running():
            for _ in range(2):
                for inject in injections:
                    await agent.wait_for_streams(1, within=5)
                    errors = provider.store.errors
                    with load.fault():
                        assert inject() >= 1
                        await wait_for(
                            lambda e=errors: provider.store.errors > e, what="fault noticed"
                        )
                        await load.hold(0.05)
                rotation.next()
                agent.set_jwks(TD, rotation.jwks())
                await wait_serving(provider, rotation.newest)
        load.report("workload_api garbage/empty/truncated")
        load.assert_no_failures()


# -- the Server API (SPIRE server) -----------------------------------------------------------------------
class RawServerAPI(FakeServerAPI):
    """The fake SPIRE server, able to answer chosen bytes (empty, truncated) as the response."""

    raw: bytes | None = None

    async def _get_bundle(
        self,
        request: service_pb2.GetBundleRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> types_pb2.Bundle | bytes:
        if self.raw is not None:
            self.calls += 1
            return self.raw
        return await super()._get_bundle(request, context)


@contextlib.asynccontextmanager
async def server_and_provider(
    sock_dir: Path, run_provider: Start, rotation: Rotation
) -> AsyncIterator[tuple[RawServerAPI, Provider]]:
    server = RawServerAPI(sock_dir / "server.sock")
    await server.start()
    try:
        server.set_bundle(rotation.authorities())
        source = ServerAPIConfig(address=server.address, poll_interval=0.03)
        provider = await run_provider(file_config(Path("unused"), source=source))
        await wait_serving(provider, rotation.newest)
        yield server, provider
    finally:
        await server.stop()


async def test_server_api_killed_and_restarted_under_load(
    sock_dir: Path, run_provider: Start
) -> None:
    """The SPIRE server killed and restarted 15 times under load (rotating every third): no failure."""
    rng = random.Random(9)
    rotation = Rotation("srv-restart")
    async with server_and_provider(sock_dir, run_provider, rotation) as (server, provider):
        load = KeysLoad(provider)
        async with load.running():
            for cycle in range(15):
                calls = server.calls
                await server.wait_for_calls(calls + 1)
                with load.fault():
                    await server.stop()
                    await load.hold(rng.uniform(0.02, 0.25))
                    if cycle % 3 == 2:
                        rotation.next()
                        server.set_bundle(rotation.authorities())
                    await server.start()
                await load.hold(0.05)
            await wait_serving(provider, rotation.newest)
        load.report("server_api killed+restarted")
        load.assert_no_failures()
        assert len(load.figures.bodies_seen) >= 5


async def test_server_api_denied_garbage_empty_truncated_hung_under_load(
    sock_dir: Path, run_provider: Start
) -> None:
    """PERMISSION_DENIED, UNAVAILABLE, NOT_FOUND, garbage, empty and truncated responses, a hung
    server and a removed socket all keep the last keys served under load."""
    rotation = Rotation("srv-faults")
    async with server_and_provider(sock_dir, run_provider, rotation) as (server, provider):
        full = server.bundle
        assert full is not None
        serialized = full.SerializeToString()
        truncated = serialized[: serialized.index(full.jwt_authorities[-1].public_key) + 10]

        def set_raw(data: bytes | None) -> None:
            server.raw = data

        def set_garbage(on: bool) -> None:
            server.garbage = on

        phases: list[tuple[str, Callable[[], None], Callable[[], None]]] = [
            (
                "denied",
                lambda: server.fail_with(grpc.StatusCode.PERMISSION_DENIED, "no"),
                lambda: server.fail_with(None),
            ),
            (
                "unavailable",
                lambda: server.fail_with(grpc.StatusCode.UNAVAILABLE, "down"),
                lambda: server.fail_with(None),
            ),
            (
                "not found",
                lambda: server.set_bundle(None),
                lambda: server.set_bundle(rotation.authorities()),
            ),
            ("garbage", lambda: set_garbage(True), lambda: set_garbage(False)),
            ("empty", lambda: set_raw(b""), lambda: set_raw(None)),
            ("truncated", lambda: set_raw(truncated), lambda: set_raw(None)),
        ]
        load = KeysLoad(provider)
        async with load.running():
            for _ in range(2):
                for name, inject, clear in phases:
                    errors = provider.store.errors
                    with load.fault():
                        inject()
                        await wait_for(
                            lambda e=errors: provider.store.errors >= e + 3,
                            what=f"three failed polls ({name})",
                        )
                        clear()
                    await wait_for(lambda: provider.store.last_error is None, what="recovery")
                with load.fault():  # a hung server: the call deadline (1 s) fires
                    errors = provider.store.errors
                    server.delay = 1.5
                    await wait_for(lambda e=errors: provider.store.errors > e, timeout=4)
                    server.delay = 0.0
                with load.fault():  # the socket removed
                    await server.stop()
                    await load.hold(0.3)
                    await server.start()
                rotation.next()
                server.set_bundle(rotation.authorities())
                await wait_serving(provider, rotation.newest)
        load.report("server_api denied/garbage/empty/truncated/hung/socket")
        load.assert_no_failures()


# -- the bundle file ---------------------------------------------------------------------------------------
def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_slowly_in_place(path: Path, data: bytes) -> None:
    """Rewrite the file in place in small pieces: a reader may see any prefix of ``data``."""
    with open(path, "wb") as fh:
        for i in range(0, len(data), 64):
            fh.write(data[i : i + 64])
            fh.flush()
            time.sleep(0.0005)


async def test_bundle_file_replaced_by_invalid_content_under_load(
    run_provider: Start, tmp_path: Path
) -> None:
    """A bundle file replaced by invalid JSON (atomically or mid-write), emptied, removed, turned
    into a directory or made unusable keeps the last keys served; rewrites in place rotate."""
    path = tmp_path / "bundle.json"
    keys = [public_jwk("file-0", ec_key())]
    path.write_bytes(bundle_bytes(keys))
    provider = await run_provider(
        file_config(path, source=FileConfig(path=str(path), poll_interval=0.01))
    )
    await wait_serving(provider, "file-0")
    bad_key = {**public_jwk("bad", ec_key()), "x": "AAAA"}

    def make_dir() -> None:
        path.unlink()
        path.mkdir()

    def undo_dir() -> None:
        path.rmdir()

    breakages: list[tuple[Callable[[], None], Callable[[], None] | None]] = [
        (lambda: _write_atomic(path, b'{"keys": [{"kty": "EC", "kid": "x"'), None),
        (lambda: _write_atomic(path, b"not json at all"), None),
        (lambda: _write_atomic(path, b""), None),
        (lambda: _write_atomic(path, b"[1, 2, 3]"), None),
        (lambda: _write_atomic(path, b'{"keys": {}}'), None),
        (lambda: _write_atomic(path, b'{"spiffe_sequence": 3}'), None),
        (lambda: _write_atomic(path, bundle_bytes([bad_key])), None),
        (lambda: _write_atomic(path, b"\xff\xfe\x00\x01"), None),
        (lambda: path.unlink(), None),
        (make_dir, undo_dir),
        (lambda: _write_slowly_in_place(path, b"{" + b" " * 2000), None),
    ]
    load = KeysLoad(provider)
    async with load.running():
        for generation in range(1, 3):
            for breakage, undo in breakages:
                errors = provider.store.errors
                with load.fault():
                    await asyncio.to_thread(breakage)
                    await wait_for(
                        lambda e=errors: provider.store.errors >= e + 2, what="failed polls"
                    )
                    if undo is not None:
                        undo()
                    good = bundle_bytes(keys)
                    await asyncio.to_thread(_write_slowly_in_place, path, good)
                await wait_for(lambda: provider.store.last_error is None, what="recovery")
            keys = [*keys[-1:], public_jwk(f"file-{generation}", ec_key())]
            with load.fault():  # the rotation itself written in place: prefixes are faults
                await asyncio.to_thread(_write_slowly_in_place, path, bundle_bytes(keys))
            await wait_serving(provider, f"file-{generation}")
    load.report("file invalid/removed/partial")
    load.assert_no_failures()


# -- a valid keyless bundle is a revocation, not a fault ---------------------------------------------------
async def test_keyless_bundle_is_a_revocation_not_a_fault(
    sock_dir: Path, run_provider: Start, tmp_path: Path
) -> None:
    """A valid bundle listing no keys (agent, server, file) gives 501 at once, never the old keys."""
    rotation = Rotation("revoke")
    path = tmp_path / "bundle.json"
    path.write_bytes(bundle_bytes([public_jwk("revoke-file", ec_key())]))
    async with (
        agent_and_provider(sock_dir, run_provider, rotation) as (agent, by_agent),
        server_and_provider(sock_dir, run_provider, rotation) as (server, by_server),
    ):
        by_file = await run_provider(file_config(path))
        await wait_serving(by_file, "revoke-file")

        agent.set_jwks(TD, jwks())  # {"keys": []}
        server.set_bundle([])  # a bundle with its trust domain and no JWT authority
        _write_atomic(path, bundle_bytes([]))
        for provider in (by_agent, by_server, by_file):
            await wait_for(
                lambda p=provider: p.store.current is not None and p.store.current.empty,
                what="revocation",
            )
            r = await raw_http(tcp_target(provider), get("/keys"))
            assert r.status == 501 and r.body == b"jwt not supported/enabled in this service\n"

        rotation.next()  # new keys after the revocation are served again
        agent.set_jwks(TD, rotation.jwks())
        server.set_bundle(rotation.authorities())
        _write_atomic(path, bundle_bytes([public_jwk("revoke-new", ec_key())]))
        await wait_serving(by_agent, rotation.newest)
        await wait_serving(by_server, rotation.newest)
        await wait_serving(by_file, "revoke-new")

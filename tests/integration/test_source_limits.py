"""One limit on key material for every source (issue 12 §9), against real gRPC fakes on unix
sockets and the real provider with the file source: hostile RSA keys are never served, and an
over-limit bundle is refused with the last good keys kept."""

from __future__ import annotations

import json
import os
import random
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from structlog.testing import capture_logs

from spire_oidc.config.model import Config, ServerAPIConfig, WorkloadAPIConfig
from spire_oidc.core.clock import SystemClock
from spire_oidc.core.keys import b64url
from spire_oidc.core.limits import LIMITS
from spire_oidc.daemon import Provider
from spire_oidc.sources import workload_api as workload_module
from spire_oidc.sources.server_api import ServerAPISource
from spire_oidc.sources.workload_api import WorkloadAPISource
from tests.fakes.fake_server_api import FakeServerAPI, authority
from tests.fakes.fake_workload_api import FakeWorkloadAPI
from tests.fakes.keys import ec_key, jwk, jwks, pkix, rsa_key
from tests.fakes.sink import RecordingSink, running
from tests.integration.support import file_config, get, raw_http, tcp_target, wait_for
from tests.keyfactory import bundle_bytes, public_jwk

pytestmark = pytest.mark.integration

Start = Callable[[Config], Awaitable[Provider]]
TD = "spiffe://example.org"
EC1 = ec_key()
_N = rsa_key().public_key().public_numbers().n
# kid -> (modulus, exponent): every one of them was published as RS256 before issue 12 §9.
HOSTILE = {
    "even-modulus": (_N + 1, 65537),
    "huge-modulus": ((_N << (65536 - 2048)) | 1, 65537),
    "huge-exponent": (_N, 2**64 + 1),
}


def _hostile_jwk(kid: str) -> dict[str, str]:
    n, e = HOSTILE[kid]

    def enc(v: int) -> str:
        return b64url(v.to_bytes((v.bit_length() + 7) // 8, "big"))

    return {"use": "jwt-svid", "kty": "RSA", "kid": kid, "n": enc(n), "e": enc(e)}


def _hostile_pkix(kid: str) -> bytes:
    n, e = HOSTILE[kid]
    return (
        rsa.RSAPublicNumbers(e, n)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


# -- the real provider, file source --------------------------------------------------------------
async def test_hostile_rsa_keys_are_never_served(run_provider: Start, tmp_path: Path) -> None:
    """Through the real provider: /keys serves the good key only; each hostile RSA key is
    skipped and logged by kid."""
    bundle = tmp_path / "b.json"
    entries: list[dict[str, str]] = [_hostile_jwk(k) for k in HOSTILE]
    bundle.write_bytes(bundle_bytes([*entries, public_jwk("good", EC1)]))
    with capture_logs() as logs:
        p = await run_provider(file_config(bundle))
        await wait_for(lambda: p.store.current is not None, what="keys")
    r = await raw_http(tcp_target(p), get("/keys"))
    assert r.status == 200
    assert [k["kid"] for k in json.loads(r.body)["keys"]] == ["good"]
    assert {e["kid"] for e in _events(logs, "bundle_key_skipped")} == set(HOSTILE)


async def test_over_limit_bundle_keeps_serving_the_last_good_keys(
    run_provider: Start, tmp_path: Path
) -> None:
    """Through the real provider: a bundle over LIMITS.max_bundle_bytes replaces nothing."""
    bundle = tmp_path / "b.json"
    bundle.write_bytes(bundle_bytes([public_jwk("good", EC1)]))
    p = await run_provider(file_config(bundle))
    await wait_for(lambda: p.store.current is not None, what="keys")
    first = await raw_http(tcp_target(p), get("/keys"))
    pad = {"use": "x509-svid", "x5c": ["A" * LIMITS.max_bundle_bytes]}
    bundle.write_bytes(bundle_bytes([public_jwk("new", ec_key()), pad]))
    await wait_for(lambda: "limit" in (p.store.last_error or ""), what="refusal")
    again = await raw_http(tcp_target(p), get("/keys"))
    assert again.status == 200 and again.body == first.body


# -- server_api ----------------------------------------------------------------------------------
@pytest.fixture
async def server(sock_dir: Path) -> AsyncIterator[FakeServerAPI]:
    fake = FakeServerAPI(sock_dir / "api.sock")
    await fake.start()
    yield fake
    await fake.stop()


def _server_source(server: FakeServerAPI) -> ServerAPISource:
    cfg = ServerAPIConfig(address=server.address, poll_interval=0.05)
    return ServerAPISource(cfg, clock=SystemClock())


async def test_server_api_skips_hostile_rsa_keys(server: FakeServerAPI) -> None:
    """Hostile RSA authorities from the Server API are skipped by kid, the good one published."""
    server.set_bundle(
        [*(authority(k, _hostile_pkix(k)) for k in HOSTILE), authority("ok", pkix(EC1))]
    )
    sink = RecordingSink()
    with capture_logs() as logs:
        async with running(_server_source(server), sink):
            await sink.wait_for(lambda: sink.current is not None, what="publish")
    assert sink.current_kids == ("ok",)
    assert {e["kid"] for e in _events(logs, "bundle_key_skipped")} == set(HOSTILE)


async def test_server_api_over_limit_keeps_the_last_good_keys(server: FakeServerAPI) -> None:
    """More authorities than max_keys, or a response over the gRPC receive limit, is refused and
    logged; the last good keys are never replaced."""
    server.set_bundle([authority("ok", pkix(EC1))])
    sink = RecordingSink()
    with capture_logs() as logs:
        async with running(_server_source(server), sink):
            await sink.wait_for(lambda: sink.current is not None, what="publish")
            many = [authority(f"k{i}", pkix(EC1)) for i in range(LIMITS.max_keys + 1)]
            server.set_bundle(many)
            await sink.wait_for(lambda: any("limit" in e for e in sink.errors), what="count")
            huge = b"\x30" * (LIMITS.max_grpc_message_bytes + 1)
            server.set_bundle([authority("ok", pkix(EC1)), authority("big", huge)])
            await sink.wait_for(
                lambda: any("RESOURCE_EXHAUSTED" in e for e in sink.errors[-1:]), what="size"
            )
    assert {p.kids for p in sink.publishes} == {("ok",)}
    assert _events(logs, "server_api_fetch_failed")


# -- workload_api --------------------------------------------------------------------------------
@pytest.fixture
async def agent(sock_dir: Path) -> AsyncIterator[FakeWorkloadAPI]:
    fake = FakeWorkloadAPI(sock_dir / "agent.sock")
    await fake.start()
    yield fake
    await fake.stop()


def _workload_source(agent: FakeWorkloadAPI) -> WorkloadAPISource:
    cfg = WorkloadAPIConfig(
        socket_path=os.fspath(agent.socket_path), trust_domain=TD, poll_interval=0.2
    )
    return WorkloadAPISource(cfg, clock=SystemClock(), rng=random.Random(7))


async def test_workload_api_over_limit_keeps_the_last_good_keys(agent: FakeWorkloadAPI) -> None:
    """Our bundle over max_bundle_bytes, then a message over the gRPC receive limit: both are
    refused and logged (with a hint for the latter), the last good keys stay published."""
    agent.set_jwks(TD, jwks(jwk("ok", EC1)))
    sink = RecordingSink()
    with capture_logs() as logs:
        async with running(_workload_source(agent), sink):
            await sink.wait_for(lambda: sink.current is not None, what="publish")
            over = {"keys": [jwk("new", ec_key())], "pad": "A" * LIMITS.max_bundle_bytes}
            agent.set_jwks(TD, json.dumps(over).encode())
            await sink.wait_for(lambda: any("limit" in e for e in sink.errors), what="size")
            fed = {"spiffe://fed.test": b"A" * (LIMITS.max_grpc_message_bytes + 1)}
            agent.set_jwks(TD, jwks(jwk("new", ec_key())), federated=fed)
            await sink.wait_for(
                lambda: any("RESOURCE_EXHAUSTED" in e for e in sink.errors), what="grpc limit"
            )
    assert {p.kids for p in sink.publishes} == {("ok",)}
    broken = [e for e in logs if e.get("code") == grpc.StatusCode.RESOURCE_EXHAUSTED.name]
    assert broken and "receive limit" in broken[0]["hint"]


async def test_workload_api_parses_a_big_bundle_off_the_event_loop(
    agent: FakeWorkloadAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bundle above LIMITS.inline_parse_bytes from the agent is parsed in a worker thread."""
    threads: list[int] = []
    real = workload_module.parse_jwks

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(workload_module, "parse_jwks", spy)
    base = jwk("k", EC1)
    big = jwks(*({**base, "kid": f"k{i}"} for i in range(LIMITS.max_keys)))
    assert len(big) > LIMITS.inline_parse_bytes
    agent.set_jwks(TD, big)
    sink = RecordingSink()
    async with running(_workload_source(agent), sink):
        await sink.wait_for(lambda: sink.current is not None, what="publish")
    assert sink.current is not None and len(sink.current.keys) == LIMITS.max_keys
    assert threads and threading.get_ident() not in threads

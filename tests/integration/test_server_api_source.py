"""The server_api source against a real gRPC fake of the SPIRE Server bundle API on a unix socket.

Pins spire-behavior.md §4.2 (GetBundle with the jwt_authorities mask, polled, server order,
malformed keys skipped), SPIRE's TestServerAPISource (§11), and our deliberate differences:
expired authorities dropped, a per-call deadline, recovery that does not wait for gRPC's backoff.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from spire_oidc._proto.spire.api.types import bundle_pb2 as types_pb2
from spire_oidc.config.model import ServerAPIConfig
from spire_oidc.core.clock import Clock, FakeClock, SystemClock
from spire_oidc.sources.server_api import GET_BUNDLE_METHOD, ServerAPISource, bundle_keys
from tests.fakes.fake_server_api import FakeServerAPI, authority
from tests.fakes.keys import der_of, ec_key, pkix, rsa_key
from tests.fakes.sink import RecordingSink, running

pytestmark = pytest.mark.integration

POLL = 0.2
EC1 = ec_key()
EC2 = ec_key()
EC3 = ec_key()
RSA1 = rsa_key()


@pytest.fixture
async def server(sock_dir: Path) -> AsyncIterator[FakeServerAPI]:
    fake = FakeServerAPI(sock_dir / "api.sock")
    await fake.start()
    yield fake
    await fake.stop()


def make_source(
    address: str,
    *,
    poll: float = POLL,
    clock: Clock | None = None,
    legacy: bool = False,
    call_timeout: float | None = None,
) -> ServerAPISource:
    """A source on the real clock unless a (fake) clock is given: polls every POLL (0.2 s)."""
    config = ServerAPIConfig(address=address, poll_interval=poll, legacy_registration_api=legacy)
    return ServerAPISource(config, clock=clock or SystemClock(), call_timeout=call_timeout)


def events(captured: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in captured if e["event"] == name]


def test_method_path_matches_spire() -> None:
    """The generated stubs carry SPIRE's method path and JWTKey field numbers."""
    assert GET_BUNDLE_METHOD == "/spire.api.server.bundle.v1.Bundle/GetBundle"
    from spire_oidc._proto.spire.api.server.bundle.v1 import bundle_pb2

    service = bundle_pb2.DESCRIPTOR.services_by_name["Bundle"]
    method = service.methods_by_name["GetBundle"]
    assert f"/{service.full_name}/{method.name}" == GET_BUNDLE_METHOD
    assert method.output_type.full_name == "spire.api.types.Bundle"
    fields = {f.name: f.number for f in types_pb2.JWTKey.DESCRIPTOR.fields}
    assert fields == {"public_key": 1, "key_id": 2, "expires_at": 3, "tainted": 4}


async def test_publishes_keys_in_server_order_with_jwt_mask(server: FakeServerAPI) -> None:
    """Keys are published in the server's order; the request asks for jwt_authorities only."""
    server.set_bundle(
        [
            authority("kid-c", pkix(EC1)),
            authority("kid-a", pkix(RSA1)),
            authority("kid-b", pkix(EC2)),
        ],
        x509_asn1=[b"cert"],
        refresh_hint=300,
        sequence_number=7,
    )
    sink = RecordingSink()
    source = make_source(server.address)
    assert await source.poll_once(sink)
    assert sink.current_kids == ("kid-c", "kid-a", "kid-b")
    assert sink.current is not None
    assert sink.current.keys[1].der == der_of(RSA1.public_key())
    request = server.requests[0]
    assert request.HasField("output_mask")
    assert request.output_mask.jwt_authorities
    assert not request.output_mask.x509_authorities
    assert not request.output_mask.refresh_hint
    assert not request.output_mask.sequence_number


async def test_polls_immediately_then_every_poll_interval(server: FakeServerAPI) -> None:
    """The first poll is immediate, then one GetBundle per poll_interval (fixed delay): on a fake
    clock, no poll before the interval has passed, one as soon as it has."""
    poll = 30.0
    server.set_bundle([authority("kid-1", pkix(EC1))])
    sink = RecordingSink()
    clock = FakeClock()
    async with running(make_source(server.address, poll=poll, clock=clock), sink):
        await server.wait_for_calls(1, within=2.0)  # before the clock moved at all
        for calls in range(2, 5):
            await clock.wait_for_sleepers(1)
            clock.advance(poll - 0.001)
            await asyncio.sleep(0.05)  # time enough for a poll that should not happen
            assert server.calls == calls - 1
            clock.advance(0.001)
            await server.wait_for_calls(calls, within=2.0)
        await sink.wait_for(lambda: len(sink.publishes) >= 4, within=2.0)
    assert clock.slept[:3] == [poll, poll, poll], "a fixed delay, no jitter"
    # Every successful poll is published, unchanged included: it is the freshness signal.
    assert sink.changes == 1


async def test_spire_semantics_not_found_then_bundle_then_change(server: FakeServerAPI) -> None:
    """SPIRE's TestServerAPISource: NotFound gives no key set; one call per poll; mod time moves
    only on a change."""
    sink = RecordingSink()
    source = make_source(server.address)
    assert not await source.poll_once(sink)
    assert server.calls == 1
    assert sink.publishes == []
    assert "NOT_FOUND: bundle not found" in sink.errors[0]

    server.set_bundle([authority("KID", pkix(EC1))])
    assert await source.poll_once(sink)
    assert server.calls == 2
    assert sink.current_kids == ("KID",)
    assert sink.changes == 1

    assert await source.poll_once(sink)  # unchanged
    assert server.calls == 3
    assert sink.changes == 1

    server.set_bundle([authority("KID2", pkix(EC2))])
    assert await source.poll_once(sink)
    assert server.calls == 4
    assert sink.changes == 2
    assert sink.current_kids == ("KID2",)


async def test_malformed_public_keys_are_skipped_and_logged(
    server: FakeServerAPI, logs: list[dict[str, Any]]
) -> None:
    """An unparsable PKIX key is skipped with a `bundle_key_skipped` line naming its kid."""
    server.set_bundle(
        [
            authority("good-1", pkix(EC1)),
            authority("garbage", b"\x30\x03\x02\x01\x00"),
            authority("empty", b""),
            authority("good-2", pkix(RSA1)),
        ]
    )
    sink = RecordingSink()
    source = make_source(server.address)
    assert await source.poll_once(sink)
    assert sink.current_kids == ("good-1", "good-2")
    skipped = events(logs, "bundle_key_skipped")
    assert [e["kid"] for e in skipped] == ["garbage", "empty"]
    assert all(e["log_level"] == "warning" and e["reason"] for e in skipped)
    # Logged once while the problem persists (SPIRE converts only on a change).
    assert await source.poll_once(sink)
    assert len(events(logs, "bundle_key_skipped")) == 2


async def test_expired_authorities_are_dropped_and_tainted_kept(
    server: FakeServerAPI, logs: list[dict[str, Any]]
) -> None:
    """expires_at in the past drops an authority; tainted ones and expires_at=0 are published."""
    clock = FakeClock(start=1_700_000_000.0)
    now = int(clock.now())
    server.set_bundle(
        [
            authority("expired", pkix(EC1), expires_at=now - 1),
            authority("tainted", pkix(EC2), expires_at=now + 3600, tainted=True),
            authority("no-expiry", pkix(EC3), expires_at=0),
            authority("expires-soon", pkix(RSA1), expires_at=now + 10),
        ]
    )
    sink = RecordingSink()
    source = make_source(server.address, clock=clock)
    assert await source.poll_once(sink)
    assert sink.current_kids == ("tainted", "no-expiry", "expires-soon")
    assert [e["kid"] for e in events(logs, "bundle_key_expired")] == ["expired"]
    clock.advance(10)  # expires_at == now: expired
    assert await source.poll_once(sink)
    assert sink.current_kids == ("tainted", "no-expiry")


def test_bundle_keys_skips_duplicate_kids() -> None:
    """A kid repeated in the bundle keeps its first key; the repeat is reported."""
    bundle = types_pb2.Bundle(
        trust_domain="example.org",
        jwt_authorities=[authority("dup", pkix(EC1)), authority("dup", pkix(EC2))],
    )
    keys, skipped = bundle_keys(bundle, now=0)
    assert keys.kids == ("dup",)
    assert keys.keys[0].der == der_of(EC1.public_key())
    assert [s.kid for s in skipped] == ["dup"]


async def test_empty_jwt_authorities_publish_an_empty_set(server: FakeServerAPI) -> None:
    """A bundle without JWT authorities is published empty (/keys then answers 501, as SPIRE)."""
    server.set_bundle([])
    sink = RecordingSink()
    assert await make_source(server.address).poll_once(sink)
    assert sink.current_kids == ()


@pytest.mark.parametrize(
    ("code", "details"),
    [
        (grpc.StatusCode.UNAVAILABLE, "server restarting"),
        (grpc.StatusCode.PERMISSION_DENIED, "denied"),
        (grpc.StatusCode.INTERNAL, "boom"),
    ],
)
async def test_failure_is_reported_with_code_and_details(
    server: FakeServerAPI, logs: list[dict[str, Any]], code: grpc.StatusCode, details: str
) -> None:
    """A failed call is reported and logged as server_api_fetch_failed with code and details."""
    server.set_bundle([authority("kid-1", pkix(EC1))])
    sink = RecordingSink()
    source = make_source(server.address)
    assert await source.poll_once(sink)
    server.fail_next(1, code, details)
    assert not await source.poll_once(sink)
    assert len(sink.publishes) == 1, "the last good keys stay"
    assert sink.errors == [f"GetBundle on {server.address} failed: {code.name}: {details}"]
    failed = events(logs, "server_api_fetch_failed")
    assert failed == [
        {
            "event": "server_api_fetch_failed",
            "log_level": "warning",
            "address": server.address,
            "code": code.name,
            "details": details,
        }
    ]
    assert await source.poll_once(sink)
    assert events(logs, "server_api_fetch_recovered")


async def test_garbage_response_is_a_failure(server: FakeServerAPI) -> None:
    """Bytes that do not decode as a Bundle are a failed poll, not a crash or an empty set."""
    server.set_bundle([authority("kid-1", pkix(EC1))])
    sink = RecordingSink()
    source = make_source(server.address)
    assert await source.poll_once(sink)
    server.garbage = True
    assert not await source.poll_once(sink)
    assert len(sink.publishes) == 1
    assert sink.errors
    server.garbage = False
    assert await source.poll_once(sink)


async def test_hung_server_hits_the_call_deadline(server: FakeServerAPI) -> None:
    """A server that never answers fails the poll at the per-call deadline."""
    source = make_source(server.address, poll=10.0, call_timeout=0.2)
    assert source.call_timeout == 0.2
    assert make_source(server.address, poll=30.0).call_timeout == 10.0
    assert make_source(server.address, poll=2.0).call_timeout == 2.0
    assert make_source(server.address, poll=0.1).call_timeout == 1.0
    server.set_bundle([authority("kid-1", pkix(EC1))])
    server.delay = 5.0
    sink = RecordingSink()
    started = time.monotonic()
    assert not await source.poll_once(sink)
    assert time.monotonic() - started < 1.5
    assert "DEADLINE_EXCEEDED" in sink.errors[0]


async def test_server_missing_at_start_then_restarted(sock_dir: Path) -> None:
    """The server's socket may appear late and the server may restart: polling recovers quickly."""
    fake = FakeServerAPI(sock_dir / "late.sock")
    fake.set_bundle([authority("kid-1", pkix(EC1))])
    sink = RecordingSink()
    async with running(make_source(fake.address), sink) as task:
        await sink.wait_for(lambda: len(sink.errors) >= 2)
        assert all("UNAVAILABLE" in e for e in sink.errors)
        await fake.start()
        try:
            await sink.wait_for(lambda: sink.current_kids == ("kid-1",), within=2.0)
            await fake.stop()
            errors = len(sink.errors)
            await sink.wait_for(lambda: len(sink.errors) > errors + 2)
            publishes = len(sink.publishes)
            fake.set_bundle([authority("kid-2", pkix(EC2))])
            await fake.start()
            # gRPC's own reconnect backoff would wait >= 1 s; a fresh channel does not.
            started = time.monotonic()
            await sink.wait_for(lambda: sink.current_kids == ("kid-2",), within=2.0)
            assert time.monotonic() - started < 2 * POLL + 0.5
            assert len(sink.publishes) > publishes
            assert not task.done()
        finally:
            await fake.stop()


async def test_legacy_registration_api_config_works_the_same(server: FakeServerAPI) -> None:
    """A config folded from registration_api { socket_path } polls GetBundle the same way."""
    server.set_bundle([authority("kid-1", pkix(EC1))])
    sink = RecordingSink()
    async with running(make_source(server.address, legacy=True), sink):
        await sink.wait_for(lambda: sink.current_kids == ("kid-1",))


async def test_cancellation_stops_polling(server: FakeServerAPI) -> None:
    """Cancelling run() stops the polls: however far the clock moves afterwards."""
    server.set_bundle([authority("kid-1", pkix(EC1))])
    sink = RecordingSink()
    clock = FakeClock()
    async with running(make_source(server.address, clock=clock), sink):
        await clock.run_until(lambda: server.calls >= 2, step=POLL)
        await clock.wait_for_sleepers(1)
    calls = server.calls
    assert clock.sleepers == 0, "the cancelled poll loop no longer sleeps"
    clock.advance(10 * POLL)
    await asyncio.sleep(0.05)
    assert server.calls == calls

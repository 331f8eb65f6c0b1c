"""The workload_api source against a real gRPC fake of the SPIRE agent on a unix socket.

Pins DESIGN decision 2 (stream, don't poll) and the pitfalls of grpc-and-config.md §1.4, plus
SPIRE's own TestWorkloadAPISource semantics (spire-behavior.md §11) adapted to a stream.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from spire_oidc._compat import workload_pb2, workload_pb2_grpc
from spire_oidc.config.model import WorkloadAPIConfig
from spire_oidc.core.clock import Clock, FakeClock, SystemClock
from spire_oidc.errors import ConfigError
from spire_oidc.sources.workload_api import WorkloadAPISource
from tests.fakes.fake_workload_api import FakeWorkloadAPI
from tests.fakes.keys import der_of, ec_key, jwk, jwks, rsa_key
from tests.fakes.sink import RecordingSink, running

pytestmark = pytest.mark.integration

TD = "spiffe://example.org"
FED = "spiffe://federated.test"
POLL = 0.2  # the reconnect backoff cap: small so that the tests are fast

EC1 = ec_key()
EC2 = ec_key()
EC3 = ec_key()
RSA1 = rsa_key()


@pytest.fixture
async def agent(sock_dir: Path) -> AsyncIterator[FakeWorkloadAPI]:
    fake = FakeWorkloadAPI(sock_dir / "agent.sock")
    await fake.start()
    yield fake
    await fake.stop()


def make_source(
    socket: str | os.PathLike[str],
    *,
    trust_domain: str = TD,
    poll: float = POLL,
    clock: Clock | None = None,
) -> WorkloadAPISource:
    """A source on the real clock by default: reconnects wait at most POLL (0.2 s)."""
    config = WorkloadAPIConfig(
        socket_path=os.fspath(socket), trust_domain=trust_domain, poll_interval=poll
    )
    return WorkloadAPISource(config, clock=clock or SystemClock(), rng=random.Random(7))


def events(captured: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in captured if e["event"] == name]


# -- the happy path -------------------------------------------------------------------------------


async def test_publishes_our_trust_domain_keys_in_jwks_order(agent: FakeWorkloadAPI) -> None:
    """Our trust domain's keys are published in the JWKS order, federated bundles are ignored."""
    agent.set_jwks(
        TD,
        jwks(jwk("kid-b", EC1), jwk("kid-a", RSA1)),
        federated={FED: jwks(jwk("fed", EC3))},
    )
    sink = RecordingSink()
    async with running(make_source(agent.socket_path), sink):
        await sink.wait_for(lambda: sink.streaming, what="streaming")
    assert sink.current_kids == ("kid-b", "kid-a")
    assert sink.current is not None
    assert [k.der for k in sink.current.keys] == [
        der_of(EC1.public_key()),
        der_of(RSA1.public_key()),
    ]
    assert sink.errors == []
    assert agent.header_missing == 0


@pytest.mark.parametrize("configured", ["example.org", "spiffe://example.org", "Example.ORG"])
async def test_trust_domain_accepted_as_name_or_id(agent: FakeWorkloadAPI, configured: str) -> None:
    """workload_api.trust_domain selects the bundle whether written as a name or a SPIFFE ID."""
    agent.set_jwks(TD, jwks(jwk("kid-1", EC1)), federated={FED: jwks(jwk("fed", EC2))})
    sink = RecordingSink()
    async with running(make_source(agent.socket_path, trust_domain=configured), sink):
        await sink.wait_for(lambda: sink.current_kids == ("kid-1",), what="kid-1")


async def test_security_header_is_sent(agent: FakeWorkloadAPI) -> None:
    """Every FetchJWTBundles call carries `workload.spiffe.io: true` (the agent requires it)."""
    agent.set_jwks(TD, jwks(jwk("kid-1", EC1)))
    sink = RecordingSink()
    async with running(make_source(agent.socket_path), sink):
        await sink.wait_for(lambda: sink.streaming)
    assert agent.calls == 1
    assert agent.header_missing == 0


async def test_fake_agent_rejects_calls_without_the_header(agent: FakeWorkloadAPI) -> None:
    """The fake agent answers INVALID_ARGUMENT to a call without the header, like SPIRE's."""
    agent.set_jwks(TD, jwks(jwk("kid-1", EC1)))
    async with grpc.aio.insecure_channel(agent.target) as channel:
        stub = workload_pb2_grpc.SpiffeWorkloadAPIStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in stub.FetchJWTBundles(workload_pb2.JWTBundlesRequest()):
                pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert agent.header_missing == 1


async def test_relative_socket_path_becomes_absolute_unix_target(
    agent: FakeWorkloadAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bare relative socket_path is made absolute and dialled as unix:///abs (as Go's Abs)."""
    monkeypatch.chdir(os.path.dirname(agent.socket_path))
    source = make_source("agent.sock")
    assert source.target == "unix://" + agent.socket_path
    agent.set_jwks(TD, jwks(jwk("kid-1", EC1)))
    sink = RecordingSink()
    async with running(source, sink):
        await sink.wait_for(lambda: sink.streaming)


def test_invalid_trust_domain_is_a_config_error() -> None:
    """An unusable trust_domain is a ConfigError naming the key, not a py-spiffe exception."""
    with pytest.raises(ConfigError) as info:
        make_source("/nonexistent.sock", trust_domain="spiffe://bad domain")
    assert info.value.key == "workload_api.trust_domain"


# -- streaming, not polling -----------------------------------------------------------------------


async def test_rotation_pushed_on_the_stream_reaches_the_sink_quickly(
    agent: FakeWorkloadAPI,
) -> None:
    """A bundle pushed by the agent is published within 2 s on the same open stream."""
    agent.set_jwks(TD, jwks(jwk("kid-1", EC1)))
    sink = RecordingSink()
    async with running(make_source(agent.socket_path, poll=10.0), sink):
        await sink.wait_for(lambda: sink.streaming)
        for n, key in enumerate((EC2, EC3, RSA1), start=2):
            started = time.perf_counter()
            assert agent.set_jwks(TD, jwks(jwk("kid-1", EC1), jwk(f"kid-{n}", key))) == 1
            await sink.wait_for(lambda n=n: sink.current_kids == ("kid-1", f"kid-{n}"), within=2.0)
            assert time.perf_counter() - started < 2.0
    assert agent.calls == 1, "one stream, kept open: no polling"
    assert sink.changes == 4


async def test_connected_stream_is_fresh_without_messages(agent: FakeWorkloadAPI) -> None:
    """A connected stream stays 'streaming' with no error while the agent sends nothing."""
    agent.set_jwks(TD, jwks(jwk("kid-1", EC1)))
    sink = RecordingSink()
    async with running(make_source(agent.socket_path), sink):
        await sink.wait_for(lambda: sink.streaming)
        await asyncio.sleep(5 * POLL)  # many backoff caps: nothing may time out or poll
        assert sink.streaming
        assert sink.streaming_changes == [True]
        assert sink.errors == []
        assert len(sink.publishes) == 1
        assert agent.calls == 1


async def test_streaming_only_after_first_message_for_our_trust_domain(
    agent: FakeWorkloadAPI,
) -> None:
    """An open stream with no message yet is not 'streaming': readiness needs published keys."""
    sink = RecordingSink()
    async with running(make_source(agent.socket_path), sink):
        await agent.wait_for_streams(1)
        await asyncio.sleep(0.1)
        assert sink.streaming_changes == []
        assert sink.publishes == []
        agent.set_jwks(TD, jwks(jwk("kid-1", EC1)))
        await sink.wait_for(lambda: sink.streaming)
    kinds = sink.kinds()
    assert kinds.index("publish") < kinds.index("streaming"), "publish first, then streaming"


# -- which keys -----------------------------------------------------------------------------------


async def test_only_jwt_svid_keys_are_published(agent: FakeWorkloadAPI) -> None:
    """Entries with `use` other than jwt-svid/sig (x509-svid, wit-svid) are not published."""
    agent.set_jwks(
        TD,
        jwks(
            jwk("no-use", EC1),
            jwk("x509", EC2, use="x509-svid"),
            jwk("jwt-svid", EC2, use="jwt-svid"),
            jwk("wit", EC3, use="wit-svid"),
            jwk("sig", RSA1, use="sig"),
        ),
    )
    sink = RecordingSink()
    async with running(make_source(agent.socket_path), sink):
        await sink.wait_for(lambda: sink.streaming)
    assert sink.current_kids == ("no-use", "jwt-svid", "sig")


async def test_malformed_keys_are_skipped_and_logged_by_kid(
    agent: FakeWorkloadAPI, logs: list[dict[str, Any]]
) -> None:
    """Malformed keys are skipped with a `bundle_key_skipped` line naming the kid; others stay."""
    bad_ec = jwk("bad-ec", EC2) | {"x": "AAAA"}
    symmetric = {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}
    agent.set_jwks(
        TD,
        jwks(jwk("good-1", EC1), bad_ec, jwk(None, EC3), symmetric, jwk("good-2", RSA1)),
    )
    sink = RecordingSink()
    async with running(make_source(agent.socket_path), sink):
        await sink.wait_for(lambda: sink.streaming)
    assert sink.current_kids == ("good-1", "good-2")
    skipped = events(logs, "bundle_key_skipped")
    assert {e["kid"] for e in skipped} == {"bad-ec", "", "hmac"}
    assert all(e["reason"] and e["log_level"] == "warning" for e in skipped)
    assert not any("c2VjcmV0" in repr(e) for e in logs), "key material is never logged"


async def test_bundle_with_only_malformed_keys_keeps_the_last_good_keys(
    agent: FakeWorkloadAPI,
) -> None:
    """A bundle whose every JWT-SVID key is malformed is an error, not a revocation."""
    agent.set_jwks(TD, jwks(jwk("kid-1", EC1)))
    sink = RecordingSink()
    async with running(make_source(agent.socket_path), sink):
        await sink.wait_for(lambda: sink.streaming)
        agent.set_jwks(TD, jwks(jwk("bad", EC2) | {"y": "!!"}))
        await sink.wait_for(lambda: bool(sink.errors))
        assert not sink.streaming
        assert len(sink.publishes) == 1
        assert "none of its 1 JWT-SVID keys is usable" in sink.errors[-1]


async def test_keyless_bundle_is_published_empty(agent: FakeWorkloadAPI) -> None:
    """A bundle with no JWT-SVID key at all is published empty (revocation: /keys answers 501)."""
    agent.set_jwks(TD, jwks(jwk("kid-1", EC1)))
    sink = RecordingSink()
    async with running(make_source(agent.socket_path), sink):
        await sink.wait_for(lambda: sink.streaming)
        agent.set_jwks(TD, jwks(jwk("x509", EC2, use="x509-svid")))
        await sink.wait_for(lambda: sink.current_kids == ())
        assert sink.streaming


# -- bad responses --------------------------------------------------------------------------------


async def test_malformed_federated_bundle_does_not_stop_updates(agent: FakeWorkloadAPI) -> None:
    """A garbage federated bundle in every response never blocks our trust domain's updates."""
    garbage = {FED: b"{not json", "spiffe://nokid.test": jwks({"kty": "EC"}), "not a td": b"x"}
    agent.set_jwks(TD, jwks(jwk("kid-1", EC1)), federated=garbage)
    sink = RecordingSink()
    async with running(make_source(agent.socket_path), sink):
        await sink.wait_for(lambda: sink.current_kids == ("kid-1",))
        agent.set_jwks(TD, jwks(jwk("kid-2", EC2)), federated=garbage)
        await sink.wait_for(lambda: sink.current_kids == ("kid-2",))
    assert sink.errors == []
    assert sink.streaming_changes == [True, False]  # False: the cancellation at the end


async def test_response_without_our_trust_domain_is_an_error(
    agent: FakeWorkloadAPI, logs: list[dict[str, Any]]
) -> None:
    """A response without our trust domain is logged and reported; nothing is published."""
    agent.set_bundles({FED: jwks(jwk("fed", EC1))})
    sink = RecordingSink()
    async with running(make_source(agent.socket_path), sink):
        await sink.wait_for(lambda: bool(sink.errors))
        assert sink.publishes == []
        assert not sink.streaming
        assert "no bundle for trust domain spiffe://example.org" in sink.errors[0]
        missing = events(logs, "workload_api_bundle_missing")
        assert missing[0]["log_level"] == "error"
        assert missing[0]["trust_domain_id"] == TD
        # The stream stays open; the next good message is served at once.
        agent.set_jwks(TD, jwks(jwk("kid-1", EC1)))
        await sink.wait_for(lambda: sink.streaming)
        assert agent.calls == 1


async def test_malformed_own_bundle_is_an_error_and_keeps_the_last_keys(
    agent: FakeWorkloadAPI, logs: list[dict[str, Any]]
) -> None:
    """An unparseable JWKS for our trust domain is reported; the last good keys stay served."""
    agent.set_jwks(TD, jwks(jwk("kid-1", EC1)))
    sink = RecordingSink()
    async with running(make_source(agent.socket_path), sink):
        await sink.wait_for(lambda: sink.streaming)
        for garbage in (b"\xff\xfe", b"[]", b'{"keys": 3}'):
            errors = len(sink.errors)
            agent.set_jwks(TD, garbage)
            await sink.wait_for(lambda errors=errors: len(sink.errors) > errors)
            assert not sink.streaming
        assert len(sink.publishes) == 1
        assert events(logs, "workload_api_bundle_malformed")
        agent.set_jwks(TD, jwks(jwk("kid-2", EC2)))
        await sink.wait_for(lambda: sink.streaming and sink.current_kids == ("kid-2",))


async def test_undecodable_message_restarts_the_stream(agent: FakeWorkloadAPI) -> None:
    """Bytes that are not a JWTBundlesResponse break the stream; a new one re-delivers the keys."""
    agent.set_jwks(TD, jwks(jwk("kid-1", EC1)))
    sink = RecordingSink()
    async with running(make_source(agent.socket_path), sink):
        await sink.wait_for(lambda: sink.streaming)
        agent.push_garbage()
        await agent.wait_for_calls(2)
        await sink.wait_for(lambda: len(sink.publishes) == 2 and sink.streaming)
    assert sink.streaming_changes[:3] == [True, False, True]
    assert any("not a JWTBundlesResponse" in e for e in sink.errors)
    assert sink.changes == 1


# -- SPIRE's TestWorkloadAPISource, adapted to the stream -----------------------------------------


async def test_spire_semantics_not_found_empty_then_bundle(agent: FakeWorkloadAPI) -> None:
    """NotFound, then an empty map, give no key set; then the bundle; unchanged keeps mod time."""
    agent.fail_with(grpc.StatusCode.NOT_FOUND, "no bundles")
    sink = RecordingSink()
    async with running(make_source(agent.socket_path), sink):
        await agent.wait_for_calls(2)
        assert sink.publishes == []
        assert any("NOT_FOUND" in e for e in sink.errors)
        agent.allow()
        agent.set_bundles({})
        await agent.wait_for_streams(1)
        await sink.wait_for(lambda: any("no bundle for trust domain" in e for e in sink.errors))
        assert sink.publishes == []
        agent.set_jwks(TD, jwks(jwk("KID", EC1)))
        await sink.wait_for(lambda: sink.current_kids == ("KID",))
        assert sink.changes == 1
        agent.push()  # unchanged: published again (fresh), content unchanged
        await sink.wait_for(lambda: len(sink.publishes) == 2)
        assert sink.changes == 1
        agent.set_jwks(TD, jwks(jwk("KID2", EC2)))
        await sink.wait_for(lambda: sink.current_kids == ("KID2",))
        assert sink.changes == 2


# -- failures and recovery ------------------------------------------------------------------------


async def test_socket_missing_at_start_up_keeps_trying(sock_dir: Path) -> None:
    """The agent's socket may appear after the provider starts: retry, never crash."""
    path = sock_dir / "late.sock"
    sink = RecordingSink()
    async with running(make_source(path), sink) as task:
        await sink.wait_for(lambda: len(sink.errors) >= 3, what="a few failed attempts")
        assert not task.done()
        assert f"workload api socket {path} does not exist" in sink.errors[0]
        assert sink.publishes == []
        agent = FakeWorkloadAPI(path)
        agent.set_jwks(TD, jwks(jwk("kid-1", EC1)))
        await agent.start()
        try:
            started = time.perf_counter()
            await sink.wait_for(lambda: sink.streaming, within=2.0)
            assert time.perf_counter() - started < 2.0
        finally:
            await agent.stop()


async def test_stale_socket_with_nobody_listening_keeps_trying(agent: FakeWorkloadAPI) -> None:
    """A socket file left by a dead agent (connection refused) is retried until it answers."""
    await agent.stop(remove_socket=False)
    assert Path(agent.socket_path).is_socket()
    sink = RecordingSink()
    async with running(make_source(agent.socket_path), sink):
        await sink.wait_for(lambda: len(sink.errors) >= 2)
        assert all("UNAVAILABLE" in e for e in sink.errors)
        agent.set_jwks(TD, jwks(jwk("kid-1", EC1)))
        await agent.start()
        await sink.wait_for(lambda: sink.streaming, within=2.0)


async def test_agent_restart_mid_stream_reconnects(
    agent: FakeWorkloadAPI, logs: list[dict[str, Any]]
) -> None:
    """When the agent restarts, the stream is marked broken, then re-opened with backoff."""
    agent.set_jwks(TD, jwks(jwk("kid-1", EC1)))
    sink = RecordingSink()
    async with running(make_source(agent.socket_path), sink):
        await sink.wait_for(lambda: sink.streaming)
        await agent.stop()
        await sink.wait_for(lambda: not sink.streaming)
        assert sink.errors
        agent.set_jwks(TD, jwks(jwk("kid-2", EC2)), push=False)
        await agent.start()
        started = time.perf_counter()
        await sink.wait_for(lambda: sink.streaming and sink.current_kids == ("kid-2",), within=2.0)
        assert time.perf_counter() - started < 2.0
    assert sink.streaming_changes[:3] == [True, False, True]
    assert events(logs, "workload_api_stream_broken")
    assert len(events(logs, "workload_api_stream_connected")) == 2


async def test_identical_redelivery_after_reconnect_changes_nothing(agent: FakeWorkloadAPI) -> None:
    """After a reconnect the agent re-sends the same bundle: published, but not a change."""
    agent.set_jwks(TD, jwks(jwk("kid-1", EC1), jwk("kid-2", EC2)))
    sink = RecordingSink()
    async with running(make_source(agent.socket_path), sink):
        await sink.wait_for(lambda: sink.streaming)
        for n in range(2, 5):
            agent.break_streams()
            await sink.wait_for(lambda n=n: len(sink.publishes) == n and sink.streaming)
    assert sink.changes == 1, "identical re-deliveries must not move Last-Modified"
    assert sink.streaming_changes[:7] == [True, False, True, False, True, False, True]
    assert len(sink.errors) == 3


async def test_stream_ended_by_the_agent_reconnects(agent: FakeWorkloadAPI) -> None:
    """A stream the agent closes normally (status OK) is a break: reported, then re-opened."""
    agent.set_jwks(TD, jwks(jwk("kid-1", EC1)))
    sink = RecordingSink()
    async with running(make_source(agent.socket_path), sink):
        await sink.wait_for(lambda: sink.streaming)
        agent.end_streams()
        await sink.wait_for(lambda: len(sink.publishes) == 2 and sink.streaming)
    assert "workload api stream ended by the agent" in sink.errors


async def test_agent_closing_each_stream_after_one_message(agent: FakeWorkloadAPI) -> None:
    """An agent that closes each stream after one message still yields fresh, unchanged keys."""
    agent.close_after_first = True
    agent.set_jwks(TD, jwks(jwk("kid-1", EC1)))
    sink = RecordingSink()
    async with running(make_source(agent.socket_path), sink):
        await agent.wait_for_calls(4)
    assert sink.changes == 1
    assert len(sink.publishes) >= 3


async def test_permission_denied_is_logged_with_an_actionable_hint(
    agent: FakeWorkloadAPI, logs: list[dict[str, Any]]
) -> None:
    """PERMISSION_DENIED (no registration entry): an actionable warning, not ready, retried."""
    agent.deny()
    agent.set_jwks(TD, jwks(jwk("kid-1", EC1)))
    sink = RecordingSink()
    async with running(make_source(agent.socket_path), sink):
        await agent.wait_for_calls(4)
        assert sink.publishes == []
        assert sink.streaming_changes == []
        assert "no registration entry matches this workload" in sink.errors[0]
        denied = events(logs, "workload_api_permission_denied")
        assert denied[0]["log_level"] == "warning"
        assert denied[0]["code"] == "PERMISSION_DENIED"
        assert denied[0]["details"] == "no identity issued"
        assert "create a registration entry" in denied[0]["hint"]
        assert "spire-server entry create" in denied[0]["hint"]
        # The same problem again is not re-warned on every attempt (debug in between).
        warned = [e for e in denied if e["log_level"] == "warning"]
        assert len(warned) == 1 < len(denied)
        agent.allow()
        await sink.wait_for(lambda: sink.streaming, within=2.0)


async def test_repeated_failure_is_re_warned_after_a_minute(
    sock_dir: Path, logs: list[dict[str, Any]]
) -> None:
    """An unchanged failure is warned again once REPEAT_WARNING_EVERY has passed on the clock."""
    config = WorkloadAPIConfig(
        socket_path=str(sock_dir / "none.sock"), trust_domain=TD, poll_interval=0.05
    )
    clock = FakeClock()
    source = WorkloadAPISource(config, clock=clock)
    sink = RecordingSink()
    async with running(source, sink):
        await clock.run_until(lambda: len(sink.errors) >= 3, step=0.05)
        await clock.wait_for_sleepers(1)
        clock.advance(61)
        count = len(sink.errors)
        await clock.run_until(lambda: len(sink.errors) > count + 2, step=0.05)
    warned = [e for e in events(logs, "workload_api_socket_missing") if e["log_level"] == "warning"]
    assert len(warned) == 2


async def test_reconnect_backoff_is_capped_by_poll_interval(agent: FakeWorkloadAPI) -> None:
    """Retries back off exponentially with full jitter but never wait longer than poll_interval:
    on a fake clock, every retry happens within one poll_interval of the previous failure."""
    agent.fail_with(grpc.StatusCode.UNAVAILABLE, "agent busy")
    clock = FakeClock()
    sink = RecordingSink()
    async with running(make_source(agent.socket_path, poll=POLL, clock=clock), sink):
        for calls in range(1, 13):
            await agent.wait_for_calls(calls, within=5.0)
            await clock.wait_for_sleepers(1)
            clock.advance(POLL)  # the longest a retry may wait
    delays = clock.slept
    assert len(delays) >= 12
    assert all(0.0 <= d <= POLL for d in delays), delays
    # The bounds double from 0.1 s: the first delay is below it, later ones may reach the cap.
    assert delays[0] <= 0.1
    assert max(delays) > 0.1, "the bound grows past the initial delay"


async def test_cancellation_closes_the_stream(agent: FakeWorkloadAPI) -> None:
    """Cancelling run() closes the stream at the agent and reports not-streaming."""
    agent.set_jwks(TD, jwks(jwk("kid-1", EC1)))
    sink = RecordingSink()
    async with running(make_source(agent.socket_path), sink):
        await sink.wait_for(lambda: sink.streaming)
        assert agent.open_streams == 1
    assert sink.streaming is False
    await agent.wait_for(lambda: agent.open_streams == 0, what="stream closed at the agent")

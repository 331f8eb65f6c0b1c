"""The provider's own X.509-SVID: the FetchX509SVID stream feeding the TLS context (issue 15).

A real grpc.aio fake agent on a unix socket issues SVIDs from a test CA; the stream client
(`sources/serving_svid.py`) feeds `http/svid_tls.SvidContext`; a real TLS server on loopback
serves with that context and real TLS clients check what they are served.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from spire_oidc.core.clock import SystemClock
from spire_oidc.core.state import ProcessState
from spire_oidc.http.svid_tls import WAITING_KEY, SvidContext
from spire_oidc.sources.serving_svid import ServingSvidStream
from tests.fakes.fake_svid import FakeAgent, SvidCA, serial_of
from tests.fakes.sink import wait_until

pytestmark = pytest.mark.integration

ID = "spiffe://example.org/oidc-provider"
DNS = "oidc.test"


@contextlib.asynccontextmanager
async def streaming(
    sock: Path, state: ProcessState, *, spiffe_id: str = ID
) -> AsyncIterator[tuple[SvidContext, ServingSvidStream]]:
    ctx = SvidContext(state)
    stream = ServingSvidStream(
        str(sock), spiffe_id=spiffe_id, clock=SystemClock(), max_retry_interval=0.2
    )
    task = asyncio.create_task(stream.run(ctx))
    try:
        yield ctx, stream
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def tls_server(ctx: SvidContext) -> AsyncIterator[int]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"ok")
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=ctx.context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def client_context(ca: SvidCA) -> ssl.SSLContext:
    client = ssl.create_default_context(cadata=ca.root_pem.decode())
    return client


async def served_serial(port: int, ca: SvidCA) -> int:
    """Handshake as a relying party that trusts the SPIFFE bundle; the leaf serial served."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=client_context(ca), server_hostname=DNS),
        5,
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        await reader.read()
    finally:
        writer.close()
    return x509.load_der_x509_certificate(der).serial_number


async def test_first_svid_is_served_with_its_chain(sock_dir: Path) -> None:
    """The first SVID from the agent is served with its intermediate; a client trusting only
    the root verifies it by DNS SAN; readiness waits for it."""
    ca = SvidCA()
    svid = ca.issue(ID, dns=[DNS])
    state = ProcessState()
    async with (
        FakeAgent(sock_dir / "agent.sock") as agent,
        streaming(agent.socket_path, state) as (
            ctx,
            _stream,
        ),
    ):
        assert WAITING_KEY in state.waiting  # not ready before the first SVID
        agent.set_svids([svid])
        await wait_until(lambda: ctx.identity is not None, what="first SVID")
        assert WAITING_KEY not in state.waiting
        async with tls_server(ctx) as port:
            assert await served_serial(port, ca) == serial_of(svid)


async def test_no_svid_no_handshake(sock_dir: Path) -> None:
    """Before any SVID the listener refuses handshakes (it never serves a made-up cert)."""
    state = ProcessState()
    ctx = SvidContext(state)
    ca = SvidCA()
    async with tls_server(ctx) as port:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await served_serial(port, ca)
    assert "no X.509-SVID" in state.waiting[WAITING_KEY]


async def test_rotation_is_served_to_new_connections(sock_dir: Path) -> None:
    """Each SVID the agent pushes is served to the next handshake."""
    ca = SvidCA()
    async with (
        FakeAgent(sock_dir / "agent.sock") as agent,
        streaming(agent.socket_path, ProcessState()) as (ctx, _stream),
    ):
        first = ca.issue(ID, dns=[DNS])
        agent.set_svids([first])
        await wait_until(lambda: ctx.swaps == 1, what="first SVID")
        async with tls_server(ctx) as port:
            assert await served_serial(port, ca) == serial_of(first)
            for n in range(2, 5):
                nxt = ca.issue(ID, dns=[DNS])
                agent.rotate(nxt)
                await wait_until(lambda n=n: ctx.swaps == n, what=f"rotation {n}")
                assert await served_serial(port, ca) == serial_of(nxt)


async def test_wrong_spiffe_id_names_what_was_received(sock_dir: Path) -> None:
    """An answer without the configured SPIFFE ID is an error naming the IDs received, and
    nothing is served."""
    ca = SvidCA()
    state = ProcessState()
    async with (
        FakeAgent(sock_dir / "agent.sock") as agent,
        streaming(agent.socket_path, state) as (
            ctx,
            stream,
        ),
    ):
        agent.set_svids([ca.issue("spiffe://example.org/other", dns=[DNS])])
        await wait_until(lambda: stream.received >= 1, what="an SVID message")
        reason = state.waiting[WAITING_KEY]
        assert ID in reason and "spiffe://example.org/other" in reason
        assert ctx.identity is None


async def test_picks_the_configured_id_among_several(sock_dir: Path) -> None:
    """With several SVIDs the configured SPIFFE ID is served; without one, the first."""
    ca = SvidCA()
    other = ca.issue("spiffe://example.org/first", dns=[DNS])
    mine = ca.issue(ID, dns=[DNS])
    async with FakeAgent(sock_dir / "agent.sock") as agent:
        agent.set_svids([other, mine])
        async with streaming(agent.socket_path, ProcessState()) as (ctx, _):
            await wait_until(lambda: ctx.identity is not None, what="SVID")
            assert ctx.identity is not None and ctx.identity.serial == serial_of(mine)
        async with streaming(agent.socket_path, ProcessState(), spiffe_id="") as (ctx, _):
            await wait_until(lambda: ctx.identity is not None, what="SVID")
            assert ctx.identity is not None and ctx.identity.serial == serial_of(other)


async def test_expired_svid_is_never_served(sock_dir: Path) -> None:
    """An expired SVID from the agent is refused (not ready, reason given); one that expires
    while served stops being served and readiness says why."""
    ca = SvidCA()
    state = ProcessState()
    async with (
        FakeAgent(sock_dir / "agent.sock") as agent,
        streaming(agent.socket_path, state) as (
            ctx,
            stream,
        ),
    ):
        agent.set_svids([ca.issue(ID, dns=[DNS], not_before=time.time() - 7200, valid_for=60)])
        await wait_until(lambda: stream.received >= 1, what="the expired SVID")
        assert ctx.identity is None and "validity" in state.waiting[WAITING_KEY]
        short = ca.issue(ID, dns=[DNS], not_before=time.time() - 60, valid_for=1.5)
        agent.rotate(short)
        await wait_until(lambda: ctx.identity is not None, what="the short-lived SVID")
        async with tls_server(ctx) as port:
            assert await served_serial(port, ca) == serial_of(short)
            await wait_until(lambda: ctx.identity is None, within=5, what="expiry")
            ctx.refresh()
            assert "expired" in state.waiting[WAITING_KEY]
            with pytest.raises((ssl.SSLError, ConnectionError)):
                await served_serial(port, ca)


async def test_agent_down_at_start_then_up(sock_dir: Path) -> None:
    """With no agent socket at start the stream waits and retries; the SVID is served once the
    agent appears."""
    ca = SvidCA()
    state = ProcessState()
    sock = sock_dir / "agent.sock"
    async with streaming(sock, state) as (ctx, _):
        await wait_until(
            lambda: "does not exist" in state.waiting.get(WAITING_KEY, ""), what="socket missing"
        )
        async with FakeAgent(sock) as agent:
            agent.set_svids([ca.issue(ID, dns=[DNS])])
            await wait_until(lambda: ctx.identity is not None, within=10, what="SVID")


async def test_agent_restart_keeps_serving_and_resumes(sock_dir: Path) -> None:
    """While the agent restarts the last valid SVID stays in service; afterwards the stream
    reconnects and a new SVID is served."""
    ca = SvidCA()
    first = ca.issue(ID, dns=[DNS])
    async with (
        FakeAgent(sock_dir / "agent.sock") as agent,
        streaming(agent.socket_path, ProcessState()) as (ctx, _),
    ):
        agent.set_svids([first])
        await wait_until(lambda: ctx.swaps == 1, what="first SVID")
        async with tls_server(ctx) as port:
            await agent.stop()
            assert await served_serial(port, ca) == serial_of(first)
            await agent.start()
            second = ca.issue(ID, dns=[DNS])
            agent.set_svids([second])
            await wait_until(lambda: ctx.swaps == 2, within=10, what="SVID after restart")
            assert await served_serial(port, ca) == serial_of(second)


async def test_permission_denied_is_explained(sock_dir: Path) -> None:
    """PERMISSION_DENIED (no registration entry) keeps the listener not ready with the hint."""
    state = ProcessState()
    async with FakeAgent(sock_dir / "agent.sock") as agent:
        agent.fail_with(grpc.StatusCode.PERMISSION_DENIED, "no identity issued")
        async with streaming(agent.socket_path, state):
            await wait_until(
                lambda: "PERMISSION_DENIED" in state.waiting.get(WAITING_KEY, ""),
                what="denied",
            )
            assert "registration entry" in state.waiting[WAITING_KEY]


async def test_one_agent_channel_for_keys_and_svid(sock_dir: Path) -> None:
    """With the Workload API source and serving_svid on one socket, both streams ride one
    channel; after an agent restart both recover on one fresh channel."""
    from spire_oidc.config.model import WorkloadAPIConfig
    from spire_oidc.sources.agent_channel import AgentChannel
    from spire_oidc.sources.workload_api import WorkloadAPISource
    from tests.fakes.sink import RecordingSink
    from tests.keyfactory import bundle_bytes, ec_key, public_jwk

    ca = SvidCA()
    async with FakeAgent(sock_dir / "agent.sock") as agent:
        agent.set_jwks("spiffe://example.org", bundle_bytes([public_jwk("k1", ec_key())]))
        agent.set_svids([ca.issue(ID, dns=[DNS])])
        channel = AgentChannel(agent.socket_path)
        keys = WorkloadAPISource(
            WorkloadAPIConfig(
                socket_path=agent.socket_path, trust_domain="example.org", poll_interval=0.2
            ),
            clock=SystemClock(),
            channel=channel,
        )
        sink = RecordingSink()
        ctx = SvidContext(ProcessState())
        stream = ServingSvidStream(
            agent.socket_path,
            spiffe_id=ID,
            clock=SystemClock(),
            max_retry_interval=0.2,
            channel=channel,
        )
        tasks = [asyncio.create_task(keys.run(sink)), asyncio.create_task(stream.run(ctx))]
        try:
            await wait_until(lambda: sink.current is not None and ctx.swaps == 1, what="both")
            assert channel.created == 1
            await agent.restart()
            agent.set_svids([ca.issue(ID, dns=[DNS])])
            await wait_until(lambda: ctx.swaps == 2, within=10, what="SVID after restart")
            await wait_until(lambda: agent.open_streams == 1, within=10, what="keys stream back")
            assert channel.created == 2
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

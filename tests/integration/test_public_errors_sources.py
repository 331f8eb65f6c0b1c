"""The verbose-health error summary recognises what the real sources report (issue 12.10).

Each gRPC source is driven into a failure against a real (or absent) unix socket, and the text it
reports to the sink must map onto a fixed summary (not the catch-all) that names no path, socket
or trust domain. This keeps ``http/public_errors.py`` in step with the sources' wording.
"""

from __future__ import annotations

import random
from pathlib import Path

import grpc
import pytest

from spire_oidc.config.model import ServerAPIConfig, WorkloadAPIConfig
from spire_oidc.core.clock import FakeClock
from spire_oidc.http.public_errors import UNKNOWN, public_error
from spire_oidc.sources.server_api import ServerAPISource
from spire_oidc.sources.workload_api import WorkloadAPISource
from tests.fakes.fake_workload_api import FakeWorkloadAPI
from tests.fakes.sink import RecordingSink, running, short_socket_dir

pytestmark = pytest.mark.integration

TD = "spiffe://secret-td.example"


def _check(errors: list[str], summary: str, secrets: tuple[str, ...]) -> None:
    assert errors
    out = public_error(errors[-1])
    assert out == summary != UNKNOWN, errors[-1]
    assert not [s for s in secrets if s in out]


async def test_workload_api_missing_socket(tmp_path: Path) -> None:
    """No agent socket: "workload API: socket does not exist", without the socket path."""
    sock = short_socket_dir(tmp_path) / "secret-agent.sock"
    cfg = WorkloadAPIConfig(socket_path=str(sock), trust_domain=TD, poll_interval=0.05)
    sink = RecordingSink()
    source = WorkloadAPISource(cfg, clock=FakeClock(), rng=random.Random(7))
    async with running(source, sink):
        await sink.wait_for(lambda: bool(sink.errors))
    _check(sink.errors, "workload API: socket does not exist", ("secret-agent", str(tmp_path)))


async def test_workload_api_status_code(tmp_path: Path) -> None:
    """An agent that answers UNAVAILABLE: the code name only, not its details."""
    agent = FakeWorkloadAPI(short_socket_dir(tmp_path) / "agent.sock")
    agent.fail_with(grpc.StatusCode.UNAVAILABLE, "secret-detail")
    async with agent:
        cfg = WorkloadAPIConfig(socket_path=agent.socket_path, trust_domain=TD, poll_interval=0.05)
        sink = RecordingSink()
        source = WorkloadAPISource(cfg, clock=FakeClock(), rng=random.Random(7))
        async with running(source, sink):
            await sink.wait_for(lambda: bool(sink.errors))
    _check(sink.errors, "workload API stream failed: UNAVAILABLE", ("secret-detail",))


async def test_workload_api_permission_denied(tmp_path: Path) -> None:
    """No registration entry (PERMISSION_DENIED): the code, not the agent's text."""
    agent = FakeWorkloadAPI(short_socket_dir(tmp_path) / "agent.sock")
    agent.deny("secret-detail")
    async with agent:
        cfg = WorkloadAPIConfig(socket_path=agent.socket_path, trust_domain=TD, poll_interval=0.05)
        sink = RecordingSink()
        source = WorkloadAPISource(cfg, clock=FakeClock(), rng=random.Random(7))
        async with running(source, sink):
            await sink.wait_for(lambda: bool(sink.errors))
    _check(sink.errors, "workload API: PERMISSION_DENIED", ("secret-detail",))


async def test_server_api_unreachable(tmp_path: Path) -> None:
    """No server socket: "server API GetBundle failed: UNAVAILABLE", without the address."""
    sock = short_socket_dir(tmp_path) / "secret-server.sock"
    cfg = ServerAPIConfig(address=f"unix:{sock}", poll_interval=0.05)
    sink = RecordingSink()
    source = ServerAPISource(cfg, clock=FakeClock(), call_timeout=2.0)
    async with running(source, sink):
        await sink.wait_for(lambda: bool(sink.errors), within=10.0)
    _check(sink.errors, "server API GetBundle failed: UNAVAILABLE", ("secret-server",))

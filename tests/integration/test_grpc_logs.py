"""gRPC's own log output goes through the provider's log format (issue 17 point 7).

gRPC's C core prints lines such as ``I1203 ... chttp2_transport.cc:1403] ... Got goaway`` straight
to stderr when the agent restarts, bypassing structlog. The provider runs here as a subprocess
with ``log_format = "json"`` against a fake agent that is restarted twice (each restart sends a
GOAWAY); every line it writes to stdout or stderr must be a JSON object.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes.fake_workload_api import FakeWorkloadAPI
from tests.fakes.keys import ec_key, jwk, jwks
from tests.fakes.sink import short_socket_dir

pytestmark = pytest.mark.integration

TD = "spiffe://example.org"


async def _wait_for_text(path: Path, text: str, count: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while path.read_text(errors="replace").count(text) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} x{count} not seen in {path.read_text()[-2000:]}")
        await asyncio.sleep(0.05)


async def test_agent_restarts_leave_only_json_lines(tmp_path: Path) -> None:
    """Through agent restarts (GOAWAY), every stdout/stderr line of a json-logging provider is
    a JSON object: gRPC's C core is quiet and Python logging goes through structlog."""
    sock_dir = short_socket_dir(tmp_path)
    agent = FakeWorkloadAPI(sock_dir / "agent.sock")
    agent.set_jwks(TD, jwks(jwk("kid-1", ec_key())))
    await agent.start()
    conf = tmp_path / "provider.conf"
    conf.write_text(
        f"""
log_format = "json"
log_level = "debug"
domains = ["localhost"]
listen_socket_path = "{sock_dir / "odp.sock"}"
workload_api {{
    socket_path = "{agent.socket_path}"
    trust_domain = "example.org"
}}
"""
    )
    out_path, err_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRPC_")}
    with out_path.open("wb") as out_file, err_path.open("wb") as err_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "spire_oidc",
            "-config",
            str(conf),
            stdin=subprocess.DEVNULL,
            stdout=out_file,
            stderr=err_file,
            env=env,
        )
    try:
        await _wait_for_text(out_path, '"keys_updated"', 1)
        for generation in (2, 3):
            await agent.stop()
            await asyncio.sleep(0.3)
            agent.set_jwks(TD, jwks(jwk(f"kid-{generation}", ec_key())), push=False)
            await agent.start()
            await _wait_for_text(out_path, '"keys_updated"', generation)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await agent.stop()
    assert proc.returncode == 0
    for path in (out_path, err_path):
        lines = path.read_text(errors="replace").splitlines()
        assert [line for line in lines if not _is_json_object(line)] == [], path.name


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False

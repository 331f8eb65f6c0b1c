"""The ``serving_svid`` listener end to end (issue 15): the installed provider serves TLS with its
own X.509-SVID from a fake SPIRE agent, and relying parties that trust only the SPIFFE bundle
verify JWT-SVIDs through it.

The fake agent (a real grpc.aio server on a unix socket) serves both the JWT bundle stream and
``FetchX509SVID`` and runs on this test's event loop; the provider is the console script in a
subprocess; blocking clients run in threads so the agent keeps answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from tests.fakes.fake_svid import FakeAgent, SvidCA, serial_of
from tests.fakes.sink import short_socket_dir, wait_until
from tests.interop.harness import (
    EXE,
    Case,
    SigningKey,
    free_port,
    mint,
    node_available,
    run_node,
    verify_pyjwt,
)
from tests.keyfactory import bundle_bytes, ec_key, public_jwk

pytestmark = pytest.mark.integration


@pytest.fixture
def sock_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory short enough for the agent's unix socket path (removed afterwards)."""
    d = short_socket_dir(tmp_path)
    yield d
    if d != tmp_path:
        shutil.rmtree(d, ignore_errors=True)


TD = "spiffe://example.org"
ID = "spiffe://example.org/oidc-provider"
HOST = "localhost"  # the SVID's DNS SAN: what relying parties verify by host name


@dataclass
class Running:
    agent: FakeAgent
    ca: SvidCA
    port: int
    health: int
    bundle_file: Path
    key: SigningKey
    log: Path

    @property
    def issuer(self) -> str:
        return f"https://{HOST}:{self.port}"

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.bundle_file))

    def ready(self) -> tuple[int, dict[str, object]]:
        url = f"http://127.0.0.1:{self.health}/ready?verbose"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return int(r.status), json.loads(r.read())
        except urllib.error.HTTPError as err:
            return int(err.code), json.loads(err.read())


def _served_serial(port: int, ctx: ssl.SSLContext) -> int:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=HOST) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        tls.sendall(f"GET /keys HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]
    return x509.load_der_x509_certificate(der).serial_number


@contextlib.asynccontextmanager
async def provider(
    tmp_path: Path, sock_dir: Path, *, spiffe_id: str = ID, svid: bool = True
) -> AsyncIterator[Running]:
    ca = SvidCA()
    agent = FakeAgent(sock_dir / "agent.sock")
    await agent.start()
    key = SigningKey("k1", ec_key(), "ES256")
    agent.set_jwks(TD, bundle_bytes([public_jwk(key.kid, key.private)]))
    if svid:
        agent.set_svids([ca.issue(ID, dns=[HOST])])
    port, health = free_port(), free_port()
    config = tmp_path / "provider.conf"
    config.write_text(
        'log_format = "json"\n'
        f'domains = ["{HOST}"]\n'
        f'workload_api {{\n  socket_path = "{agent.socket_path}"\n  trust_domain = "example.org"\n}}\n'
        f'serving_svid {{\n  addr = "127.0.0.1:{port}"\n'
        + (f'  spiffe_id = "{spiffe_id}"\n' if spiffe_id else "")
        + "}\n"
        f'health_checks {{\n  bind_host = "127.0.0.1"\n  bind_port = "{health}"\n}}\n'
    )
    log = tmp_path / "provider.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            EXE, "-config", str(config), stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    running = Running(agent, ca, port, health, ca.write_bundle(tmp_path / "bundle.pem"), key, log)  # type: ignore[arg-type]
    running.bundle_file = Path(running.bundle_file)
    try:
        yield running
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await agent.stop()


async def _wait_ready(run: Running, within: float = 15.0) -> None:
    async def ok() -> bool:
        with contextlib.suppress(OSError):
            status, _ = await asyncio.to_thread(run.ready)
            return status == 200
        return False

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await ok():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"provider never ready: {run.log.read_text()[-3000:]}")


async def test_relying_parties_verify_through_the_svid_listener(
    tmp_path: Path, sock_dir: Path
) -> None:
    """PyJWT over an SSL context holding the SPIFFE bundle, and Node jose with
    NODE_EXTRA_CA_CERTS, fetch discovery and keys over the SVID listener and verify a JWT-SVID."""
    async with provider(tmp_path, sock_dir) as run:
        await _wait_ready(run)
        token = mint(run.key, issuer=run.issuer, audience="aud-1")
        got = await asyncio.to_thread(
            verify_pyjwt, token, issuer=run.issuer, audience="aud-1", ctx=run.client_context()
        )
        assert got == ""
        reason = node_available()
        if reason and not os.environ.get("CI"):
            pytest.skip(reason)
        assert not reason, reason
        results = await asyncio.to_thread(
            run_node,
            [Case("jose", "jose", run.issuer, token, audience="aud-1")],
            run.bundle_file,
        )
        assert results == {"jose": ""}


async def test_not_ready_until_an_svid_arrives(tmp_path: Path, sock_dir: Path) -> None:
    """Without an SVID the provider is not ready and says why; the first SVID makes it ready."""
    async with provider(tmp_path, sock_dir, svid=False) as run:
        await run.agent.wait_for_svid_streams(1, within=15)
        status, facts = await asyncio.to_thread(run.ready)
        assert status == 500
        assert any("X.509-SVID" in str(r) for r in facts["reasons"])  # type: ignore[union-attr]
        svid = run.ca.issue(ID, dns=[HOST])
        run.agent.set_svids([svid])
        await _wait_ready(run)
        assert await asyncio.to_thread(_served_serial, run.port, run.client_context()) == (
            serial_of(svid)
        )


async def test_wrong_spiffe_id_is_reported(tmp_path: Path, sock_dir: Path) -> None:
    """An agent that sends only other SPIFFE IDs leaves the provider not ready, naming them."""
    async with provider(tmp_path, sock_dir, spiffe_id="spiffe://example.org/someone-else") as run:
        await run.agent.wait_for_svid_streams(1, within=15)

        async def reported() -> bool:
            _, facts = await asyncio.to_thread(run.ready)
            return any(ID in str(r) for r in facts["reasons"])  # type: ignore[union-attr]

        deadline = time.monotonic() + 10
        while not await reported():
            assert time.monotonic() < deadline, run.log.read_text()[-2000:]
            await asyncio.sleep(0.1)


async def test_rotation_under_load_drops_no_handshake(tmp_path: Path, sock_dir: Path) -> None:
    """Three rotations while clients open new TLS connections without pause: at least 1,000
    handshakes, none failed, and every rotated SVID is served."""
    async with provider(tmp_path, sock_dir) as run:
        await _wait_ready(run)
        ctx = run.client_context()
        stop = threading.Event()
        served: dict[int, int] = {}
        failures: list[str] = []
        lock = threading.Lock()

        def client() -> None:
            while not stop.is_set():
                try:
                    serial = _served_serial(run.port, ctx)
                except (OSError, AssertionError) as exc:
                    with lock:
                        failures.append(repr(exc))
                    continue
                with lock:
                    served[serial] = served.get(serial, 0) + 1

        threads = [threading.Thread(target=client, daemon=True) for _ in range(4)]
        for t in threads:
            t.start()
        rotated = []
        try:
            for _ in range(3):
                await asyncio.sleep(1.0)
                svid = run.ca.issue(ID, dns=[HOST])
                rotated.append(serial_of(svid))
                run.agent.rotate(svid)
            total = lambda: sum(served.values())  # noqa: E731
            await wait_until(
                lambda: total() >= 1000 and served.get(rotated[-1], 0) > 0,
                within=60,
                what="1,000 handshakes and the last SVID served",
            )
        finally:
            stop.set()
            for t in threads:
                await asyncio.to_thread(t.join, 10)
        print(f"handshakes={sum(served.values())} failures={len(failures)} per serial={served}")
        assert failures == []
        assert all(s in served for s in rotated)


async def test_doctor_with_the_bundle_as_ca(tmp_path: Path, sock_dir: Path) -> None:
    """`doctor ISSUER -ca BUNDLE` reaches the SVID listener and passes its TLS checks."""
    async with provider(tmp_path, sock_dir) as run:
        await _wait_ready(run)
        proc = await asyncio.create_subprocess_exec(
            EXE,
            "doctor",
            run.issuer,
            "-ca",
            str(run.bundle_file),
            "-json",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        out, _err = await asyncio.wait_for(proc.communicate(), 60)
        report = json.loads(out)
        assert report["discovery"]["tls"]["verified"] is True, out[:2000]
        assert report["jwks"]["tls"]["verified"] is True
        tls = [f for f in report["findings"] if f["check"] in ("tls.discovery", "tls.jwks")]
        assert len(tls) == 2 and all(f["status"] == "pass" for f in tls), json.dumps(tls)

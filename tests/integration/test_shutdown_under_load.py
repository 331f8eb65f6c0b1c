"""Promise 7 of issue 8: graceful shutdown and certificate reload under load.

SIGTERM: the installed console script serves a large JWKS (about 9.5 MB, so that responses are
still being written when the signal arrives) to slow readers and to a steady stream of other
clients. Every response that started must arrive complete, requests that got no byte at all are
allowed only after the signal (the listener is closed, idle keep-alive connections are closed),
and the process exits 0.

Certificate files replaced under load: clients keep opening new TLS connections, each verified
against the test CA, while the pair is replaced several times in the ways operators do it (two
renames, a Kubernetes-style symlink swap, a slow rewrite in place): no handshake may fail, and
every new certificate must end up being served.
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
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme
from cryptography import x509

from spire_oidc.config.model import Config, ServingCertFileConfig
from spire_oidc.daemon import Provider
from tests.integration.support import file_config, wait_for
from tests.keyfactory import bundle_bytes, ec_key, public_jwk, rsa_key

pytestmark = pytest.mark.integration

Start = Callable[[Config], Awaitable[Provider]]

EXE = shutil.which("oidc-discovery-provider", path=str(Path(sys.executable).parent)) or ""
# About 3.8 MB of JWKS (the most keys a bundle may carry, core/limits.py, each under a long kid):
# more than the kernel's socket buffers absorb for a reader with a tiny receive window, so a
# response to a slow reader is still partly in the server's own write buffer at SIGTERM.
N_KEYS = 1000
KID_PAD = "x" * 3000
DISCOVERY = "/.well-known/openid-configuration"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Outcome:
    """What one request got: the bytes received and when it ended (monotonic time)."""

    data: bytes
    ended: float
    error: str = ""


def _check(outcome: Outcome, body: bytes) -> str | None:
    """None when ``outcome`` is a complete 200 with ``body``; else what is wrong with it."""
    head, sep, rest = outcome.data.partition(b"\r\n\r\n")
    if not sep:
        return f"incomplete head ({len(outcome.data)} bytes, {outcome.error})"
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.1 200 "):
        return f"status line {lines[0]!r}"
    fields = (h.partition(b":") for h in lines[1:])
    length = next((int(v) for k, _, v in fields if k.lower() == b"content-length"), -1)
    if length != len(body) or rest[:length] != body:
        return f"body {len(rest)} of {length} bytes ({outcome.error})"
    return None


async def _slow_request(
    port: int, extra: bytes, started: asyncio.Event, signalled: asyncio.Event
) -> Outcome:
    """GET /keys on a connection with a tiny receive window, read slowly until SIGTERM is sent
    (so the response is still being written then), and at full speed afterwards."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
    writer.write(
        b"GET /keys HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" + extra + b"\r\n"
    )
    data = bytearray()
    error = ""
    try:
        while chunk := await asyncio.wait_for(reader.read(1 << 20), 15):
            data.extend(chunk)
            started.set()
            if not signalled.is_set():
                await asyncio.sleep(0.25)
    except (OSError, TimeoutError) as exc:
        error = repr(exc)
    writer.close()
    return Outcome(bytes(data), time.monotonic(), error)


@dataclass
class SteadyLoad:
    """New-connection and keep-alive clients fetching the discovery document until the server
    goes away (a request that got no byte at all ends a client)."""

    port: int
    body: bytes
    complete: int = 0
    unanswered: list[float] = field(default_factory=list)  # when a request got no byte at all
    broken: list[str] = field(default_factory=list)

    def _request(self, close: bool) -> bytes:
        extra = b"Connection: close\r\n" if close else b""
        return f"GET {DISCOVERY} HTTP/1.1\r\nHost: localhost\r\n".encode() + extra + b"\r\n"

    async def fresh_connections(self) -> None:
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                self.unanswered.append(time.monotonic())
                return  # the listener is closed
            writer.write(self._request(close=True))
            data, error = b"", ""
            try:
                data = await asyncio.wait_for(reader.read(), 15)
            except (OSError, TimeoutError) as exc:
                error = repr(exc)
            writer.close()
            if not self._record(Outcome(data, time.monotonic(), error)):
                return

    async def keep_alive(self) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return
        while True:
            writer.write(self._request(close=False))
            data, error = b"", ""
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 15)
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                data = head + await asyncio.wait_for(reader.readexactly(length), 15)
            except asyncio.IncompleteReadError as exc:
                data, error = exc.partial, "eof"
            except (OSError, TimeoutError, asyncio.LimitOverrunError) as exc:
                error = repr(exc)
            if not self._record(Outcome(data, time.monotonic(), error)):
                writer.close()
                return

    def _record(self, outcome: Outcome) -> bool:
        """Count one request; False when the connection is over."""
        if not outcome.data:
            self.unanswered.append(outcome.ended)
            return False
        problem = _check(outcome, self.body)
        if problem is not None:
            self.broken.append(problem)
            return False
        self.complete += 1
        return True


_BUNDLE_CACHE: list[bytes] = []


def _big_bundle() -> bytes:
    if not _BUNDLE_CACHE:  # one 4096-bit key under many long kids: big JWKS, quick to build
        entry = public_jwk("k", rsa_key(4096))
        keys = [{**entry, "kid": f"k{i:06d}{KID_PAD}"} for i in range(N_KEYS)]
        _BUNDLE_CACHE.append(bundle_bytes(keys))
    return _BUNDLE_CACHE[0]


def _get(port: int, path: str) -> tuple[bytes, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(1 << 20):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


def _start_console_script(
    tmp_path: Path, port: int, loop: str
) -> tuple[subprocess.Popen[bytes], bytes, bytes]:
    """The provider as a subprocess; returns it with the /keys and discovery bodies it serves."""
    env = dict(os.environ)
    if loop == "asyncio":  # hide uvloop (installed with the dev extras) from the provider
        shadow = tmp_path / "no-uvloop"
        shadow.mkdir()
        (shadow / "uvloop.py").write_text('raise ImportError("uvloop hidden by the test")\n')
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shadow), env.get("PYTHONPATH")]))
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(_big_bundle())
    conf = tmp_path / "odp.conf"
    conf.write_text(
        f'domains = ["localhost"]\ninsecure_addr = "127.0.0.1:{port}"\nlog_format = "json"\n'
        f'file {{\n  path = "{bundle}"\n  poll_interval = "30s"\n}}\n'
    )
    with (tmp_path / "odp.log").open("wb") as log:
        proc = subprocess.Popen(
            [EXE, "-config", str(conf)], stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
        )
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise AssertionError((tmp_path / "odp.log").read_text())
        with contextlib.suppress(OSError):
            head, keys = _get(port, "/keys")
            if head.startswith(b"HTTP/1.1 200 "):
                _head, discovery = _get(port, DISCOVERY)
                return proc, keys, discovery
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the provider did not serve in time")
        time.sleep(0.05)


async def _sigterm_under_load(tmp_path: Path, slow_extra: bytes, loop: str) -> None:
    port = _free_port()
    proc, body, discovery = _start_console_script(tmp_path, port, loop)
    assert len(json.loads(body)["keys"]) == N_KEYS
    try:
        load = SteadyLoad(port, discovery)
        steady = [asyncio.create_task(load.fresh_connections()) for _ in range(3)]
        steady += [asyncio.create_task(load.keep_alive()) for _ in range(3)]
        signalled = asyncio.Event()
        started = [asyncio.Event() for _ in range(4)]
        slow = [asyncio.create_task(_slow_request(port, slow_extra, e, signalled)) for e in started]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started)), 10)
        await wait_for(lambda: load.complete >= 20, what="steady load")
        await asyncio.sleep(0.3)  # the server's socket buffers fill up
        signalled_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        signalled.set()
        outcomes = await asyncio.wait_for(asyncio.gather(*slow), 30)
        await asyncio.wait_for(asyncio.gather(*steady), 30)
        code = await asyncio.to_thread(proc.wait, 15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    log = (tmp_path / "odp.log").read_text()
    assert code == 0, log[-2000:]
    assert '"shutdown_complete"' in log
    assert f'"implementation": "{loop}"' in log  # the event loop this case is about
    assert not load.broken, load.broken[:5]
    assert all(t >= signalled_at for t in load.unanswered), "a request unanswered before SIGTERM"
    problems = [p for p in (_check(o, body) for o in outcomes) if p is not None]
    assert not problems, problems
    assert all(o.ended > signalled_at for o in outcomes)  # they really were in flight
    print(
        f"\nsigterm ({loop}): {len(outcomes)} responses of {len(body) / 1e6:.1f} MB in flight "
        f"at SIGTERM all completed; {load.complete} other requests completed, "
        f"{len(load.unanswered)} refused after it"
    )


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
async def test_sigterm_under_load_completes_in_flight_requests_full_handler(
    tmp_path: Path, loop: str
) -> None:
    """SIGTERM while large responses of the full aiohttp handler are being written to slow
    readers: every one completes, no request is cut, and the process exits 0."""
    # A forwarding header sends the request past the fast path, to the full handler.
    await _sigterm_under_load(tmp_path, b"X-Forwarded-Proto: https\r\n", loop)


async def test_sigterm_under_load_completes_in_flight_requests_fast_path(tmp_path: Path) -> None:
    """SIGTERM while large responses of the fast path are being written to slow readers: every
    one completes, no request is cut, and the process exits 0."""
    await _sigterm_under_load(tmp_path, b"", "uvloop")


# -- certificate files replaced under load ------------------------------------------------------------
def _issue(ca: trustme.CA) -> tuple[bytes, bytes, int]:
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    chain = b"".join(b.bytes() for b in leaf.cert_chain_pems)
    serial = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()).serial_number
    return chain, leaf.private_key_pem.bytes(), serial


def _write_slowly(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        for i in range(0, len(data), 128):
            fh.write(data[i : i + 128])
            fh.flush()
            time.sleep(0.002)


async def test_certificate_files_replaced_under_load_never_fail_a_handshake(
    run_provider: Start, tmp_path: Path
) -> None:
    """Clients opening new TLS connections while the pair is replaced 9 times (renames, a
    symlink swap, slow in-place rewrites): every handshake verifies, every new pair is served."""
    ca = trustme.CA()
    live = tmp_path / "live"
    live.mkdir()
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    # Kubernetes-style: the configured paths are symlinks through ..data to a versioned directory.
    version = 0

    def publish_versioned(chain: bytes, key: bytes) -> None:
        nonlocal version
        version += 1
        target = live / f"v{version}"
        target.mkdir()
        (target / "tls.crt").write_bytes(chain)
        (target / "tls.key").write_bytes(key)
        tmp_link = live / "..data.tmp"
        tmp_link.symlink_to(target.name)
        os.replace(tmp_link, live / "..data")  # one atomic swap of both files

    chain, key, first_serial = _issue(ca)
    publish_versioned(chain, key)
    cert_path.symlink_to(live / "..data" / "tls.crt")
    key_path.symlink_to(live / "..data" / "tls.key")

    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(bundle_bytes([public_jwk("k1", ec_key())]))
    scf = ServingCertFileConfig(
        cert_file_path=str(cert_path),
        key_file_path=str(key_path),
        addr="127.0.0.1:0",
        host="127.0.0.1",
        port=0,
        file_sync_interval=0.05,
    )
    provider = await run_provider(file_config(bundle, insecure_addr="", serving_cert_file=scf))
    await wait_for(lambda: provider.store.current is not None, what="keys")
    port = int(provider.addresses[0].rpartition(":")[2])

    client = ssl.create_default_context()
    ca.configure_trust(client)
    serials_seen: set[int] = set()
    failures: list[str] = []
    handshakes = 0
    stop = asyncio.Event()

    async def tls_client() -> None:
        nonlocal handshakes
        while not stop.is_set():
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(
                        "127.0.0.1", port, ssl=client, server_hostname="localhost"
                    ),
                    5,
                )
            except (OSError, ssl.SSLError, TimeoutError) as exc:
                failures.append(f"handshake: {exc!r}")
                continue
            handshakes += 1
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            serials_seen.add(x509.load_der_x509_certificate(der).serial_number)
            writer.write(b"GET /keys HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            try:
                data = await asyncio.wait_for(reader.read(), 5)
                if not data.startswith(b"HTTP/1.1 200 "):
                    failures.append(f"response {data[:40]!r}")
            except (OSError, ssl.SSLError, TimeoutError) as exc:
                failures.append(f"request: {exc!r}")
            writer.close()

    clients = [asyncio.create_task(tls_client()) for _ in range(6)]
    replaced: list[int] = []
    assert provider.reloader is not None
    try:
        await wait_for(lambda: handshakes >= 20, what="first handshakes")
        for i in range(9):
            chain, key, serial = _issue(ca)
            replaced.append(serial)
            if i % 3 == 0:  # the Kubernetes secret volume way: one symlink swap
                publish_versioned(chain, key)
            elif i % 3 == 1:  # two renames: for a moment the new certificate has the old key
                current = live / "..data"
                for name, data in (("tls.crt", chain), ("tls.key", key)):
                    tmp = current / f".{name}.new"
                    tmp.write_bytes(data)
                    os.replace(tmp, current / name)
                    await asyncio.sleep(0.08)  # let the watcher see the half-replaced pair
            else:  # rewritten in place, slowly: the watcher may read any prefix of either file
                current = live / "..data"
                await asyncio.to_thread(_write_slowly, current / "tls.crt", chain)
                await asyncio.to_thread(_write_slowly, current / "tls.key", key)
            await wait_for(lambda s=serial: s in serials_seen, what=f"certificate {i} served")
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*clients), 10)
    assert not failures, failures[:5]
    assert {first_serial, *replaced} <= serials_seen
    print(
        f"\ncertificate reload: {handshakes} TLS handshakes, {len(replaced)} replacements "
        f"({provider.reloader.reloads} reloads), 0 failed"
    )

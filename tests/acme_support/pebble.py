"""Debian's Pebble (a real ACME server) as a subprocess on loopback, one per test.

Its HTTPS listener certificate comes from a ``trustme`` CA (the Debian package ships none); the
provider trusts that CA through ``acme.ca_bundle_path``. Pebble runs with
``PEBBLE_VA_NOSLEEP=1`` (no random pause before validating), ``PEBBLE_WFE_NONCEREJECT=0`` and
``PEBBLE_AUTHZREUSE=0`` (every order really validates), and resolves names through
:class:`~tests.acme_support.dns.LoopbackDNS`. Every port is on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import trustme

# Base64url HMAC key for the EAB tests (any 32+ random bytes would do).
EAB_KID = "kid-test"
EAB_HMAC = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"


def terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 5 s: a test server never outlives its test."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pebble_binary() -> str:
    """The pebble binary; missing fails under CI (scripts/install-pebble.sh installs it)."""
    path = shutil.which("pebble")
    if path is None:
        message = "pebble is not installed: run scripts/install-pebble.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


async def https_get(port: int, path: str, ctx: ssl.SSLContext, *, timeout: float = 5.0) -> bytes:
    """GET https://127.0.0.1:<port><path> (HTTP/1.0); the body, or raise on a non-200."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1"),
        timeout,
    )
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200")):
        raise RuntimeError(f"GET {path}: {head[:80]!r}")
    return body


class Pebble:
    """One Pebble instance with its own ports, configuration and state."""

    def __init__(
        self,
        workdir: Path,
        *,
        dns_port: int,
        validity: int | None = None,
        eab_required: bool = False,
        tls_port: int | None = None,
        http_port: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.dns_port = dns_port
        self.port = free_port()
        self.management_port = free_port()
        self.tls_port = tls_port or free_port()  # where the VA dials tls-alpn-01
        self.http_port = http_port or free_port()  # where the VA dials http-01
        self.listener_ca = trustme.CA()
        self.ca_file = workdir / "pebble-listener-ca.pem"
        self.listener_ca.cert_pem.write_to_path(str(self.ca_file))
        leaf = self.listener_ca.issue_cert("127.0.0.1", "localhost")
        cert_path, key_path = workdir / "pebble-cert.pem", workdir / "pebble-key.pem"
        cert_path.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
        key_path.write_bytes(leaf.private_key_pem.bytes())
        config: dict[str, object] = {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.management_port}",
            "certificate": str(cert_path),
            "privateKey": str(key_path),
            "httpPort": self.http_port,
            "tlsPort": self.tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": eab_required,
        }
        if eab_required:
            config["externalAccountMACKeys"] = {EAB_KID: EAB_HMAC}
        if validity is not None:
            config["certificateValidityPeriod"] = validity
        self.config_path = workdir / "pebble-config.json"
        self.config_path.write_text(json.dumps({"pebble": config}))
        self.log_path = workdir / "pebble.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def client_context(self) -> ssl.SSLContext:
        """Trusts Pebble's own HTTPS listeners (API and management)."""
        ctx = ssl.create_default_context()
        self.listener_ca.configure_trust(ctx)
        return ctx

    async def start(self, *, timeout: float = 15.0) -> Pebble:
        env = dict(os.environ)
        env.update(PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0", PEBBLE_AUTHZREUSE="0")
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self._proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once
                [
                    pebble_binary(),
                    "-config",
                    str(self.config_path),
                    "-dnsserver",
                    f"127.0.0.1:{self.dns_port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        finally:
            log.close()
        self.starts += 1
        deadline = time.monotonic() + timeout
        ctx = self.client_context()
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"pebble exited: {self.log_path.read_text()[-2000:]}")
            try:
                await https_get(self.port, "/dir", ctx, timeout=1.0)
                await https_get(self.management_port, "/roots/0", ctx, timeout=1.0)
                return self
            except (OSError, RuntimeError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    def stop(self) -> None:
        if self._proc is not None:
            terminate(self._proc)
        self._proc = None

    async def root_pem(self) -> bytes:
        """The root of the certificates Pebble issues (new at every Pebble start)."""
        return await https_get(self.management_port, "/roots/0", self.client_context())

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

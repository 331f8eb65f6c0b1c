"""pytest fixtures and helpers shared by the ACME tests (import the fixtures into the module)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from cryptography import x509

from spire_oidc.config.model import AcmeConfig, Config, FileConfig
from tests.acme_support.dns import LoopbackDNS
from tests.acme_support.pebble import Pebble
from tests.integration.support import parse_response
from tests.keyfactory import bundle_bytes, ec_key, public_jwk

NAME = "oidc.test"
DISCOVERY = "/.well-known/openid-configuration"

PebbleFactory = Callable[..., Awaitable[Pebble]]


@pytest.fixture
async def dns() -> AsyncIterator[LoopbackDNS]:
    """A loopback DNS responder: every name is 127.0.0.1."""
    server = await LoopbackDNS().start()
    yield server
    server.stop()


@pytest.fixture
async def pebble_factory(tmp_path: Path, dns: LoopbackDNS) -> AsyncIterator[PebbleFactory]:
    """Start Pebble instances (stopped at the end): ``await pebble_factory(validity=15)``."""
    started: list[Pebble] = []

    async def make(*, start: bool = True, **kwargs: object) -> Pebble:
        pebble = Pebble(tmp_path / f"pebble{len(started)}", dns_port=dns.port, **kwargs)  # type: ignore[arg-type]
        started.append(pebble)
        if start:
            await pebble.start()
        return pebble

    yield make
    for pebble in started:
        pebble.stop()


def bundle_file(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "bundle.json"
    path.write_bytes(bundle_bytes([public_jwk("kid-1", ec_key())]))
    return path


def acme_config(pebble: Pebble, tmp_path: Path, **acme_overrides: object) -> Config:
    """A provider on Pebble's tls-alpn-01 port, for ``oidc.test``, keys from a bundle file."""
    acme = AcmeConfig(
        directory_url=pebble.directory_url,
        email="ops@oidc.test",
        tos_accepted=True,
        cache_dir=str(tmp_path / "acme-cache"),
        addr=f"127.0.0.1:{pebble.tls_port}",
        host="127.0.0.1",
        port=pebble.tls_port,
        ca_bundle_path=str(pebble.ca_file),
        http_addr=f"127.0.0.1:{pebble.http_port}",
        http_host="127.0.0.1",
        http_port=pebble.http_port,
    )
    return Config(
        domains=(NAME,),
        source=FileConfig(path=str(bundle_file(tmp_path)), poll_interval=0.05),
        acme=replace(acme, **acme_overrides),  # type: ignore[arg-type]
    )


@dataclass
class Fetched:
    status: int
    body: bytes
    cert: x509.Certificate
    alpn: str | None


def client_context(root_pem: bytes) -> ssl.SSLContext:
    """A relying party's TLS client: verifies the chain to Pebble's root and the host name."""
    ctx = ssl.create_default_context(cadata=root_pem.decode())
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


async def fetch(
    port: int,
    ctx: ssl.SSLContext,
    *,
    name: str = NAME,
    path: str = DISCOVERY,
    timeout: float = 5.0,
) -> Fetched:
    """One verified HTTPS GET to the provider; raises ``ssl.SSLError`` when verification fails."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=name), timeout
    )
    try:
        sslobj = writer.get_extra_info("ssl_object")
        cert = x509.load_der_x509_certificate(sslobj.getpeercert(binary_form=True))
        alpn = sslobj.selected_alpn_protocol()
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    response = parse_response(data)
    return Fetched(response.status, response.body, cert, alpn)


async def wait_for_certificate(
    port: int, ctx: ssl.SSLContext, *, timeout: float = 20.0, name: str = NAME
) -> Fetched:
    """Retry :func:`fetch` until it verifies (the provider may still be ordering)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await fetch(port, ctx, name=name)
        except (OSError, TimeoutError):
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)


class KeepAliveClient:
    """One verified TLS connection reused for many requests (to see it survive a swap)."""

    def __init__(self, port: int, ctx: ssl.SSLContext, name: str = NAME) -> None:
        self.port, self.ctx, self.name = port, ctx, name
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.cert: x509.Certificate | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(
                "127.0.0.1", self.port, ssl=self.ctx, server_hostname=self.name
            ),
            5.0,
        )
        sslobj = self.writer.get_extra_info("ssl_object")
        self.cert = x509.load_der_x509_certificate(sslobj.getpeercert(binary_form=True))

    async def get(self, path: str = "/keys", timeout: float = 5.0) -> int:
        """One request on the same connection; returns the status."""
        assert self.reader is not None and self.writer is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.name}\r\n\r\n".encode())
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        lines = head.decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-length":
                length = int(value.strip())
        await asyncio.wait_for(self.reader.readexactly(length), timeout)
        return int(lines[0].split(" ")[1])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

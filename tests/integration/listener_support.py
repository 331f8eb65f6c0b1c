"""Helpers for the listener-bound tests: providers with a health listener, a certificate-file
TLS listener, or a Pebble-free ACME listener, and raw partial ClientHellos."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from dataclasses import replace
from pathlib import Path

import trustme

from spire_oidc.acme.certs import context_from_pem
from spire_oidc.config.model import AcmeConfig, Config, HealthChecksConfig, ServingCertFileConfig
from spire_oidc.daemon import Provider
from spire_oidc.http.timeouts import Timeouts
from tests.integration.support import file_config
from tests.keyfactory import bundle_bytes, ec_key, public_jwk

NAME = "oidc.test"
SHORT = Timeouts(header=0.5, idle=0.5, handshake=1.0)


def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "bundle.json"
    path.write_bytes(bundle_bytes([public_jwk("k1", ec_key())]))
    return path


def health_config(tmp_path: Path, **overrides: object) -> Config:
    hc = HealthChecksConfig(bind_port=0, bind_host="127.0.0.1")
    return replace(file_config(bundle(tmp_path), health_checks=hc), **overrides)  # type: ignore[arg-type]


def cert_file_config(tmp_path: Path, ca: trustme.CA, **overrides: object) -> Config:
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf.private_key_pem.write_to_path(str(key))
    cert.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
    scf = ServingCertFileConfig(str(cert), str(key), addr="127.0.0.1:0", host="127.0.0.1", port=0)
    base = file_config(bundle(tmp_path), insecure_addr="", serving_cert_file=scf)
    return replace(base, **overrides)  # type: ignore[arg-type]


def acme_config(tmp_path: Path, ca: trustme.CA, **overrides: object) -> Config:
    """ACME on loopback with a directory nobody answers (orders fail in the background)."""
    ca_file = tmp_path / "acme-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    acme = AcmeConfig(
        directory_url="https://127.0.0.1:9/directory",
        email="ops@oidc.test",
        tos_accepted=True,
        cache_dir=str(tmp_path / "acme-cache"),
        addr="127.0.0.1:0",
        host="127.0.0.1",
        port=0,
        challenges=("tls-alpn-01", "http-01"),
        http_addr="127.0.0.1:0",
        http_host="127.0.0.1",
        http_port=0,
        ca_bundle_path=str(ca_file),
    )
    base = file_config(bundle(tmp_path), domains=(NAME,), insecure_addr="", acme=acme)
    return replace(base, **overrides)  # type: ignore[arg-type]


def install_certificate(provider: Provider, ca: trustme.CA) -> None:
    """Give the ACME listener a serving certificate for NAME without any ACME server."""
    acme = provider.acme
    if acme is None:
        raise AssertionError("not an ACME provider")
    leaf = ca.issue_cert(NAME)
    chain = b"".join(b.bytes() for b in leaf.cert_chain_pems)
    acme.table.install(NAME, context_from_pem(chain, leaf.private_key_pem.bytes()))


def target(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def partial_client_hello(size: int = 60 * 1024, missing: int = 64) -> bytes:
    """A ClientHello of ``size`` bytes in 16 KiB records, less its last ``missing`` bytes."""
    body = bytes(size - 4)
    message = bytes([1]) + len(body).to_bytes(3, "big") + body
    records = b""
    for i in range(0, len(message), 16384):
        chunk = message[i : i + 16384]
        records += bytes([22, 3, 1]) + len(chunk).to_bytes(2, "big") + chunk
    return records[:-missing]


async def open_partial_hellos(addr: tuple[str, int], n: int, **kw: int) -> list[socket.socket]:
    """``n`` raw connections that each sent an incomplete ClientHello (and then nothing)."""
    loop = asyncio.get_running_loop()
    data = partial_client_hello(**kw)
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        await loop.sock_connect(s, addr)
        await loop.sock_sendall(s, data)
        socks.append(s)
    return socks


def close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.close()


async def tls_get(
    addr: tuple[str, int], ca: trustme.CA, server_name: str, path: str = "/keys"
) -> bytes:
    """One HTTPS request with a real TLS client; returns the raw response."""
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(*addr, ssl=ctx, server_hostname=server_name), 5
    )
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n".encode()
    )
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


async def closed_by_server(addr: tuple[str, int], send: bytes = b"", within: float = 5.0) -> bool:
    """Connect, send ``send``, and report whether the server closed the connection in time."""
    reader, writer = await asyncio.open_connection(*addr)
    try:
        if send:
            writer.write(send)
            await writer.drain()
        try:
            data = await asyncio.wait_for(reader.read(), within)
        except ConnectionError:
            return True
        return data == b""
    finally:
        writer.close()

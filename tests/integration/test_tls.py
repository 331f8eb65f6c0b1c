"""serving_cert_file: TLS 1.2+, certificate reload on change, bad pairs rejected (§5.2)."""

from __future__ import annotations

import asyncio
import os
import ssl
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trustme
from cryptography import x509

from spire_oidc.config.model import Config, ServingCertFileConfig
from spire_oidc.daemon import Provider
from spire_oidc.errors import StartupError
from tests.integration.support import file_config, get, raw_http, wait_for
from tests.keyfactory import bundle_bytes, ec_key, public_jwk

pytestmark = pytest.mark.integration

Start = Callable[[Config], Awaitable[Provider]]


def _write_pair(ca: trustme.CA, tmp: Path, name: str = "localhost") -> tuple[Path, Path]:
    cert = ca.issue_cert(name, "127.0.0.1")
    cert_path, key_path = tmp / "tls.crt", tmp / "tls.key"
    cert_path.write_bytes(b"".join(b.bytes() for b in cert.cert_chain_pems))
    key_path.write_bytes(cert.private_key_pem.bytes())
    return cert_path, key_path


def _client(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


async def _peer_cert(port: int, ctx: ssl.SSLContext) -> x509.Certificate:
    _reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname="localhost"
    )
    sslobj = writer.get_extra_info("ssl_object")
    der = sslobj.getpeercert(binary_form=True)
    writer.close()
    return x509.load_der_x509_certificate(der)


def _tls_config(bundle: Path, cert: Path, key: Path, interval: float = 0.05) -> Config:
    scf = ServingCertFileConfig(
        cert_file_path=str(cert),
        key_file_path=str(key),
        addr="127.0.0.1:0",
        host="127.0.0.1",
        port=0,
        file_sync_interval=interval,
    )
    return file_config(bundle, insecure_addr="", serving_cert_file=scf)


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "bundle.json"
    path.write_bytes(bundle_bytes([public_jwk("k", ec_key())]))
    return path


async def test_https_serves_documents(run_provider: Start, bundle: Path, tmp_path: Path) -> None:
    """Over TLS the documents are served and the issuer is always https."""
    ca = trustme.CA()
    cert, key = _write_pair(ca, tmp_path)
    p = await run_provider(_tls_config(bundle, cert, key))
    port = int(p.addresses[0].rpartition(":")[2])
    r = await raw_http(
        ("127.0.0.1", port),
        get("/.well-known/openid-configuration"),
        ssl_ctx=_client(ca),
        server_hostname="localhost",
    )
    assert r.status == 200 and b'"issuer": "https://localhost"' in r.body


async def test_tls_11_refused(run_provider: Start, bundle: Path, tmp_path: Path) -> None:
    """TLS 1.0/1.1 clients are refused (minimum TLS 1.2)."""
    ca = trustme.CA()
    cert, key = _write_pair(ca, tmp_path)
    p = await run_provider(_tls_config(bundle, cert, key))
    port = int(p.addresses[0].rpartition(":")[2])
    ctx = _client(ca)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")


async def test_reload_on_change_and_bad_pair_kept_old(
    run_provider: Start, bundle: Path, tmp_path: Path
) -> None:
    """A changed pair is served to new connections; a broken pair is logged and the old one kept."""
    ca = trustme.CA()
    cert, key = _write_pair(ca, tmp_path)
    p = await run_provider(_tls_config(bundle, cert, key))
    port = int(p.addresses[0].rpartition(":")[2])
    ctx = _client(ca)
    first = await _peer_cert(port, ctx)
    assert p.reloader is not None

    _write_pair(ca, tmp_path)  # a new certificate from the same CA
    os.utime(cert, ns=(1, 1))  # make sure the mtime differs even on coarse clocks
    await wait_for(lambda: p.reloader is not None and p.reloader.reloads >= 1, what="reload")
    second = await _peer_cert(port, ctx)
    assert second.serial_number != first.serial_number

    # A key that does not match the certificate: rejected, the second pair keeps serving.
    other_ca = trustme.CA()
    other = other_ca.issue_cert("localhost")
    key.write_bytes(other.private_key_pem.bytes())
    os.utime(key, ns=(2, 2))
    reloads = p.reloader.reloads
    await asyncio.sleep(0.3)
    assert p.reloader.reloads == reloads
    assert (await _peer_cert(port, ctx)).serial_number == second.serial_number


async def test_bad_pair_at_startup_is_fatal(bundle: Path, tmp_path: Path) -> None:
    """A missing or broken certificate at start-up stops the provider with SPIRE's message."""
    from spire_oidc.daemon import start

    with pytest.raises(StartupError, match="failed to load certificate"):
        await start(_tls_config(bundle, tmp_path / "none.crt", tmp_path / "none.key"))

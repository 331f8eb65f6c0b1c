"""ACME issuance against a real ACME server (Debian's Pebble): tls-alpn-01, http-01, the
certificate choice during a validation, and the Go-autocert-compatible cache."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import stat
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from spire_oidc.acme.certs import key_to_pem
from spire_oidc.acme.tlsalpn import ID_PE_ACME_IDENTIFIER
from spire_oidc.daemon import Provider
from tests.acme_support.dns import LoopbackDNS
from tests.acme_support.fixtures import (
    NAME,
    PebbleFactory,
    acme_config,
    client_context,
    dns,
    fetch,
    pebble_factory,
    wait_for_certificate,
)
from tests.integration.support import Starter, get, raw_http

pytestmark = pytest.mark.integration
__all__ = ["dns", "pebble_factory"]


def _is_challenge_cert(cert: x509.Certificate) -> bool:
    return any(ext.oid == ID_PE_ACME_IDENTIFIER for ext in cert.extensions)


async def _peer(
    port: int, alpn: list[str], name: str = NAME
) -> tuple[x509.Certificate, str | None]:
    """Handshake without verification; the certificate served and the negotiated ALPN."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(alpn)
    _reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=name), 15.0
    )
    sslobj = writer.get_extra_info("ssl_object")
    cert = x509.load_der_x509_certificate(sslobj.getpeercert(binary_form=True))
    alpn_used = sslobj.selected_alpn_protocol()
    writer.close()
    return cert, alpn_used


async def test_tls_alpn_01_issues_at_startup_and_serves_it(
    pebble_factory: PebbleFactory, run_provider: Starter, tmp_path: Path
) -> None:
    """With tls-alpn-01 the certificate is ordered at start-up and served by SNI, verified."""
    pebble = await pebble_factory()
    provider: Provider = await run_provider(acme_config(pebble, tmp_path))
    got = await wait_for_certificate(pebble.tls_port, client_context(await pebble.root_pem()))
    assert got.status == 200
    assert json.loads(got.body)["issuer"] == f"https://{NAME}"
    assert got.alpn == "http/1.1"
    assert got.cert.subject.rfc4514_string() == f"CN={NAME}"
    assert provider.acme is not None and provider.acme.manager.orders == 1
    assert provider.state.waiting == {}


async def test_http_01_issues_through_the_plain_http_listener(
    pebble_factory: PebbleFactory, run_provider: Starter, tmp_path: Path
) -> None:
    """With http-01 the CA validates on the plain-HTTP listener, which otherwise only redirects."""
    pebble = await pebble_factory()
    provider: Provider = await run_provider(acme_config(pebble, tmp_path, challenges=("http-01",)))
    got = await wait_for_certificate(pebble.tls_port, client_context(await pebble.root_pem()))
    assert got.status == 200
    assert provider.acme is not None and provider.acme.http01 is not None
    assert provider.acme.http01.served >= 1  # Pebble fetched the token over plain HTTP
    assert provider.acme.http01.tokens == {}  # removed once the order completed
    target = ("127.0.0.1", pebble.http_port)
    redirect = await raw_http(target, get("/keys?x=1", host=f"{NAME}:{pebble.http_port}"))
    assert redirect.status == 302
    assert redirect.header("Location") == f"https://{NAME}:{pebble.tls_port}/keys?x=1"
    assert (await raw_http(target, get("/keys", host="evil.test"))).status == 404
    gone = await raw_http(target, get("/.well-known/acme-challenge/nope", host=NAME))
    assert gone.status == 404


async def test_normal_client_never_gets_the_challenge_certificate_during_validation(
    pebble_factory: PebbleFactory, run_provider: Starter, tmp_path: Path, dns: LoopbackDNS
) -> None:
    """While the CA validates, an acme-tls/1 client gets the challenge certificate and a normal
    client (ALPN h2, http/1.1, or acme-tls/1 among others) gets the real one."""
    pebble = await pebble_factory()
    port = pebble.tls_port
    results: dict[str, tuple[x509.Certificate, str | None]] = {}
    pending: list[asyncio.Task[tuple[x509.Certificate, str | None]]] = []
    normal_done_early: list[bool] = []

    async def probe_during_validation() -> None:
        if pending:  # the VA sends several queries (AAAA, A, concurrent validations): probe once
            return
        # Pebble's VA resolves the name right before it validates: the answer is held back
        # until these probes ran, so the challenge is certainly installed now.
        normal = asyncio.create_task(_peer(port, ["h2", "http/1.1"]))
        mixed = asyncio.create_task(_peer(port, ["acme-tls/1", "http/1.1"]))
        pending.extend([normal, mixed])
        results["acme"] = await _peer(port, ["acme-tls/1"])
        await asyncio.sleep(0.2)
        normal_done_early.append(normal.done())

    dns.before_answer = probe_during_validation
    await run_provider(acme_config(pebble, tmp_path))
    got = await wait_for_certificate(port, client_context(await pebble.root_pem()))
    dns.before_answer = None
    acme_cert, acme_alpn = results["acme"]
    assert _is_challenge_cert(acme_cert) and acme_alpn == "acme-tls/1"
    assert normal_done_early == [False]  # it waited for the real certificate
    for task in pending:
        cert, alpn = await asyncio.wait_for(task, 15.0)
        assert not _is_challenge_cert(cert)
        assert cert.serial_number == got.cert.serial_number
        assert alpn == "http/1.1"


async def test_second_start_with_the_same_cache_orders_nothing(
    pebble_factory: PebbleFactory, run_provider: Starter, tmp_path: Path
) -> None:
    """A valid cached certificate is served at start-up and never re-ordered."""
    pebble = await pebble_factory()
    config = acme_config(pebble, tmp_path)
    ctx = client_context(await pebble.root_pem())
    first: Provider = await run_provider(config)
    issued = await wait_for_certificate(pebble.tls_port, ctx)
    await first.stop()
    second: Provider = await run_provider(config)
    assert second.acme is not None
    assert second.acme.table.has_certificate(NAME)  # installed before start() returned
    again = await fetch(pebble.tls_port, ctx)
    assert again.cert.serial_number == issued.cert.serial_number
    await asyncio.sleep(0.3)
    assert second.acme.manager.orders == 0


async def test_cache_is_written_in_go_autocert_layout(
    pebble_factory: PebbleFactory, run_provider: Starter, tmp_path: Path
) -> None:
    """The cache directory is 0700, files 0600: ``acme_account+key`` (SEC1 P-256) and
    ``<domain>`` (the EC key, then the chain leaf first), as Go autocert's DirCache."""
    pebble = await pebble_factory()
    config = acme_config(pebble, tmp_path)
    await run_provider(config)
    got = await wait_for_certificate(pebble.tls_port, client_context(await pebble.root_pem()))
    assert config.acme is not None
    cache = Path(config.acme.cache_dir)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert sorted(os.listdir(cache)) == ["acme_account+key", NAME]
    for entry in cache.iterdir():
        assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    account = (cache / "acme_account+key").read_bytes()
    assert account.startswith(b"-----BEGIN EC PRIVATE KEY-----\n")
    assert account.count(b"-----BEGIN") == 1
    entry = (cache / NAME).read_bytes()
    assert entry.startswith(b"-----BEGIN EC PRIVATE KEY-----\n")
    chain = x509.load_pem_x509_certificates(entry)
    assert len(chain) == 2 and chain[0] == got.cert
    assert entry.count(b"-----BEGIN") == 3 and entry.endswith(b"-----END CERTIFICATE-----\n")


async def test_a_cache_written_in_go_autocert_layout_is_reused(
    pebble_factory: PebbleFactory, run_provider: Starter, tmp_path: Path
) -> None:
    """Files as Go autocert writes them (SEC1 account key; SEC1 key + chain) are served as is."""
    pebble = await pebble_factory()
    ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
    leaf = ca.issue_cert(NAME, key_type=trustme.KeyType.ECDSA)
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)
    config = acme_config(pebble, tmp_path)
    assert config.acme is not None
    cache = Path(config.acme.cache_dir)
    cache.mkdir(mode=0o700)
    from cryptography.hazmat.primitives.asymmetric import ec

    account = ec.generate_private_key(ec.SECP256R1())
    (cache / "acme_account+key").write_bytes(key_to_pem(account))
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    (cache / NAME).write_bytes(key_to_pem(key) + chain)
    provider: Provider = await run_provider(config)
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    got = await fetch(pebble.tls_port, ctx)
    assert got.status == 200
    assert got.cert == x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    await asyncio.sleep(0.3)
    assert provider.acme is not None and provider.acme.manager.orders == 0
    assert (cache / "acme_account+key").read_bytes() == key_to_pem(account)


async def test_acme_events_reach_the_metrics(
    pebble_factory: PebbleFactory, run_provider: Starter, tmp_path: Path
) -> None:
    """With metrics on, the ACME order and the certificate's expiry appear on /metrics."""
    from dataclasses import replace

    from spire_oidc.config.model import HealthChecksConfig

    pebble = await pebble_factory()
    hc = HealthChecksConfig(bind_port=0, bind_host="127.0.0.1", metrics=True)
    provider: Provider = await run_provider(
        replace(acme_config(pebble, tmp_path), health_checks=hc)
    )
    await wait_for_certificate(pebble.tls_port, client_context(await pebble.root_pem()))
    host, _, port = provider.health_addresses[0].rpartition(":")
    scrape = (await raw_http((host, int(port)), get("/metrics"))).body.decode()
    orders = [line for line in scrape.splitlines() if "acme_orders" in line and NAME in line]
    expiry = [line for line in scrape.splitlines() if "certificate_expiry" in line and NAME in line]
    assert orders and float(orders[0].rsplit(" ", 1)[1]) >= 1, scrape
    assert expiry and float(expiry[0].rsplit(" ", 1)[1]) > 0, scrape

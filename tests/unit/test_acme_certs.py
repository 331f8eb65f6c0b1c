"""Certificates, the autocert cache format and layout, tls-alpn-01 certificates, trust."""

from __future__ import annotations

import hashlib
import os
import random
import ssl
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from spire_oidc.acme.cache import DirCache, MemoryCache
from spire_oidc.acme.certs import (
    THIRTY_DAYS,
    CertEntry,
    EntryError,
    context_from_pem,
    decode_entry,
    eligible,
    key_to_pem,
    new_key,
    renewal_time,
)
from spire_oidc.acme.tlsalpn import ID_PE_ACME_IDENTIFIER, challenge_certificate
from spire_oidc.acme.trust import TrustBundle
from spire_oidc.errors import StartupError

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def issue(
    name: str, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, days: float = 90
) -> x509.Certificate:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


T = NOW.timestamp() + 3600


def test_entry_round_trip_is_key_then_chain() -> None:
    """encode() writes the SEC1 key then the chain; decode_entry reads it back."""
    key = new_key()
    entry = CertEntry(key, (issue("oidc.test", key),))
    data = entry.encode()
    assert data.startswith(b"-----BEGIN EC PRIVATE KEY-----\n")
    assert decode_entry(data, "oidc.test", T).leaf == entry.leaf


def test_pkcs8_keys_are_accepted_like_go() -> None:
    """Go's parsePrivateKey accepts PKCS#8 too, so a PKCS#8 entry is usable."""
    key = new_key()
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert decode_entry(pkcs8 + pem(issue("oidc.test", key)), "oidc.test", T)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("trailing", "trailing bytes"),
        ("mismatch", "does not match"),
        ("expired", "expired"),
        ("early", "not valid yet"),
        ("other-name", "does not cover"),
        ("no-key", "does not start with a PEM private key"),
        ("rsa", "not an ECDSA certificate"),
    ],
)
def test_unusable_entries_are_rejected_with_a_reason(case: str, reason: str) -> None:
    """Go autocert's cacheGet rules: each broken entry is refused, saying why."""
    key = new_key()
    cert = issue("oidc.test", key)
    data = key_to_pem(key) + pem(cert)
    now, name = T, "oidc.test"
    if case == "trailing":
        data += b"junk"
    elif case == "mismatch":
        data = key_to_pem(new_key()) + pem(cert)
    elif case == "expired":
        now = NOW.timestamp() + 91 * 86400
    elif case == "early":
        now = NOW.timestamp() - 10
    elif case == "other-name":
        name = "other.test"
    elif case == "no-key":
        data = pem(cert)
    elif case == "rsa":
        rkey = rsa.generate_private_key(65537, 2048)
        data = key_to_pem(rkey) + pem(issue("oidc.test", rkey))
    with pytest.raises(EntryError, match=reason):
        decode_entry(data, name, now)


def test_renewal_time_follows_autocert() -> None:
    """min(lifetime/3, 30 days) before notAfter, plus jitter below min(threshold/10, 1 h)."""
    rng = random.Random(1)
    start = 1_000_000.0
    for _ in range(50):
        ninety = renewal_time(start, start + 90 * 86400, rng)
        assert start + 60 * 86400 <= ninety < start + 60 * 86400 + 3600
        short = renewal_time(start, start + 12, rng)
        assert start + 8 <= short < start + 8 + 0.4
        year = renewal_time(start, start + 365 * 86400, rng)
        assert start + 365 * 86400 - THIRTY_DAYS <= year < start + 365 * 86400 - THIRTY_DAYS + 3600


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("oidc.test", True),
        ("a.b.example.org", True),
        ("localhost", False),
        ("vm", False),
        ("127.0.0.1", False),
        ("::1", False),
        ("[::1]", False),
    ],
)
def test_eligible_names(name: str, ok: bool) -> None:
    """Single-label names and IP literals are skipped, as autocert refuses them."""
    assert eligible(name) is ok


def test_context_from_pem_serves_the_pair_and_refuses_a_wrong_one() -> None:
    """A key/chain pair loads into a server context; a mismatched pair raises."""
    ca = trustme.CA()
    leaf = ca.issue_cert("oidc.test")
    chain = b"".join(b.bytes() for b in leaf.cert_chain_pems)
    ctx = context_from_pem(chain, leaf.private_key_pem.bytes())
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        context_from_pem(chain, key_to_pem(new_key()))


def test_tls_alpn_01_certificate_is_rfc_8737() -> None:
    """One DNS SAN, and a critical id-pe-acmeIdentifier holding OCTET STRING(SHA-256(keyAuthz))."""
    chain, key_pem = challenge_certificate("oidc.test", "token.thumbprint")
    cert = x509.load_pem_x509_certificate(chain)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["oidc.test"]
    assert len(list(san)) == 1
    ext = cert.extensions.get_extension_for_oid(ID_PE_ACME_IDENTIFIER)
    assert ext.critical
    digest = hashlib.sha256(b"token.thumbprint").digest()
    assert ext.value.public_bytes() == b"\x04\x20" + digest
    assert context_from_pem(chain, key_pem, alpn=["acme-tls/1"])


def test_dir_cache_modes_and_atomic_replace(tmp_path: Path) -> None:
    """The directory is created 0700, entries are 0600, a put replaces with no temp file left."""
    cache = DirCache(str(tmp_path / "c"))
    assert cache.get("oidc.test") is None
    cache.put("oidc.test", b"one")
    cache.put("oidc.test", b"two")
    assert cache.get("oidc.test") == b"two"
    assert stat.S_IMODE(os.stat(tmp_path / "c").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "c" / "oidc.test").st_mode) == 0o600
    assert os.listdir(tmp_path / "c") == ["oidc.test"]
    assert cache.set_aside("oidc.test") == str(tmp_path / "c" / "oidc.test.invalid")
    assert os.listdir(tmp_path / "c") == ["oidc.test.invalid"]


@pytest.mark.parametrize("name", ["", "..", "a/b", "x\x00y"])
def test_cache_refuses_names_outside_the_directory(tmp_path: Path, name: str) -> None:
    """Entry names cannot escape the cache directory."""
    with pytest.raises(OSError):
        DirCache(str(tmp_path)).put(name, b"x")
    with pytest.raises(OSError):
        MemoryCache().get(name)


def test_trust_bundle_env_and_extra(tmp_path: Path) -> None:
    """REQUESTS_CA_BUNDLE / SSL_CERT_FILE are honoured; ca_bundle_path is added to the base."""
    assert TrustBundle("", environ={}).verify is True
    assert TrustBundle("", environ={"SSL_CERT_FILE": "/x.pem"}).verify == "/x.pem"
    both = {"REQUESTS_CA_BUNDLE": "/a.pem", "SSL_CERT_FILE": "/b.pem"}
    assert TrustBundle("", environ=both).verify == "/a.pem"
    base, extra = tmp_path / "base.pem", tmp_path / "extra.pem"
    base.write_bytes(trustme.CA().cert_pem.bytes())
    extra.write_bytes(trustme.CA().cert_pem.bytes())
    bundle = TrustBundle(str(extra), environ={"SSL_CERT_FILE": str(base)})
    assert isinstance(bundle.verify, str)
    combined = Path(bundle.verify).read_bytes()
    assert len(x509.load_pem_x509_certificates(combined)) == 2
    bundle.close()
    assert not Path(bundle.verify).exists()
    (tmp_path / "empty.pem").write_bytes(b"nothing")
    with pytest.raises(StartupError, match="no PEM certificate"):
        TrustBundle(str(tmp_path / "empty.pem"), environ={})
    with pytest.raises(StartupError, match="cannot read CA bundle"):
        TrustBundle(str(tmp_path / "missing.pem"), environ={})

"""Certificates and keys: CSRs, Go autocert's cache entry format, renewal times, SSLContexts.

A cache entry (``<domain>`` in the cache directory, acme.md §5.2) is the PEM private key
followed by the certificate chain, leaf first. Go autocert writes the key as ``EC PRIVATE KEY``
(SEC1) and accepts PKCS#1, PKCS#8 or SEC1 when reading; it rejects trailing bytes, a leaf whose
public key is not the entry's key, a leaf outside its validity window, and a leaf that does not
cover the domain. :func:`decode_entry` applies the same rules, so an entry one side accepts the
other side accepts too.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import re
import shutil
import ssl
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from spire_oidc.errors import ProviderError
from spire_oidc.http.tls import server_context

THIRTY_DAYS = 30 * 24 * 3600.0
ONE_HOUR = 3600.0

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----\r?\n?", re.DOTALL)


class EntryError(ProviderError, ValueError):
    """A cache entry cannot be used; ``str()`` says why (it is logged, never fatal)."""


@dataclass(frozen=True)
class CertEntry:
    """A usable certificate: its key, its chain, and the leaf's facts."""

    key: PrivateKey
    chain: tuple[x509.Certificate, ...]

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def not_before(self) -> float:
        return self.leaf.not_valid_before_utc.timestamp()

    @property
    def not_after(self) -> float:
        return self.leaf.not_valid_after_utc.timestamp()

    @property
    def serial(self) -> str:
        return format(self.leaf.serial_number, "x")

    def key_pem(self) -> bytes:
        return key_to_pem(self.key)

    def chain_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)

    def encode(self) -> bytes:
        """The cache entry bytes, exactly as Go autocert writes them (key, then chain)."""
        return self.key_pem() + self.chain_pem()


def new_key() -> ec.EllipticCurvePrivateKey:
    """A new ECDSA P-256 key (what autocert uses for certificates and the account)."""
    return ec.generate_private_key(ec.SECP256R1())


def key_to_pem(key: PrivateKey) -> bytes:
    """SEC1 ``EC PRIVATE KEY`` for EC keys, PKCS#1 ``RSA PRIVATE KEY`` for RSA (Go's forms)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def parse_private_key(pem: bytes) -> PrivateKey:
    """The first PEM block of ``pem`` as a private key (PKCS#1, PKCS#8 or SEC1)."""
    match = _PEM_BLOCK.search(pem)
    if match is None or b"PRIVATE KEY" not in match.group(1):
        raise EntryError("no PEM private key")
    try:
        key = serialization.load_pem_private_key(match.group(0), password=None)
    except (ValueError, TypeError) as exc:
        raise EntryError(f"unreadable private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise EntryError(f"unsupported private key type {type(key).__name__}")
    return key


def make_csr(domain: str, key: PrivateKey) -> bytes:
    """A PEM CSR with CN = domain and the single DNS SAN domain (as autocert sends)."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def parse_chain(pem: bytes) -> tuple[x509.Certificate, ...]:
    """Every CERTIFICATE block of ``pem``, in order; at least one."""
    try:
        chain = tuple(x509.load_pem_x509_certificates(pem))
    except ValueError as exc:
        raise EntryError(f"unreadable certificate chain: {exc}") from exc
    if not chain:
        raise EntryError("no certificate in the chain")
    return chain


def decode_entry(data: bytes, domain: str, now: float) -> CertEntry:
    """Parse and check a cache entry for ``domain`` (Go autocert's ``cacheGet`` rules)."""
    blocks = list(_PEM_BLOCK.finditer(data))
    if not blocks or b"PRIVATE" not in blocks[0].group(1):
        raise EntryError("the entry does not start with a PEM private key")
    end = blocks[0].end()
    for block in blocks[1:]:
        if data[end : block.start()].strip() or block.group(1) != b"CERTIFICATE":
            raise EntryError("unexpected content after the private key")
        end = block.end()
    if data[end:].strip():
        raise EntryError("trailing bytes after the certificate chain")
    key = parse_private_key(blocks[0].group(0))
    chain = parse_chain(b"".join(b.group(0) for b in blocks[1:]))
    entry = CertEntry(key, chain)
    check_entry(entry, domain, now)
    return entry


def check_entry(entry: CertEntry, domain: str, now: float) -> None:
    """Raise :class:`EntryError` unless ``entry`` can be served for ``domain`` at ``now``."""
    pub = entry.key.public_key()
    if entry.leaf.public_key() != pub:
        raise EntryError("the private key does not match the certificate")
    if not isinstance(entry.key, ec.EllipticCurvePrivateKey):
        raise EntryError("not an ECDSA certificate")
    if now < entry.not_before:
        raise EntryError("the certificate is not valid yet")
    if now >= entry.not_after:
        raise EntryError("the certificate has expired")
    if not covers(entry.leaf, domain):
        raise EntryError(f"the certificate does not cover {domain}")


def covers(cert: x509.Certificate, domain: str) -> bool:
    """True when a DNS SAN of ``cert`` matches ``domain`` (RFC 6125, one left-most wildcard)."""
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    want = domain.lower().rstrip(".")
    for name in sans.get_values_for_type(x509.DNSName):
        pattern = name.lower().rstrip(".")
        if pattern == want:
            return True
        if pattern.startswith("*.") and "." in want and want.split(".", 1)[1] == pattern[2:]:
            return True
    return False


def renewal_time(not_before: float, not_after: float, rng: random.Random | None = None) -> float:
    """When to renew: Go autocert's rule (x/crypto ≥ 0.45, acme.md §5.3).

    ``threshold = min(lifetime / 3, 30 days)``, ``jitter ∈ [0, min(threshold / 10, 1 h))``,
    renew at ``not_after - threshold + jitter``.
    """
    lifetime = max(0.0, not_after - not_before)
    threshold = min(lifetime / 3, THIRTY_DAYS)
    jitter = (rng or random).uniform(0, min(threshold / 10, ONE_HOUR))
    return not_after - threshold + jitter


def eligible(domain: str) -> bool:
    """Whether a public ACME CA can issue for ``domain`` (autocert refuses the others).

    IP literals and single-label names (``localhost``, ``vm``) are not eligible.
    """
    name = domain.strip("[]")
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(name)
        return False
    return "." in name.strip(".")


def utc(ts: float) -> str:
    """An RFC 3339 UTC timestamp for logs."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def context_from_pem(
    chain_pem: bytes, key_pem: bytes, *, alpn: list[str] | None = None
) -> ssl.SSLContext:
    """A TLS server context serving ``chain_pem`` with ``key_pem``.

    ``SSLContext.load_cert_chain`` only reads files: the PEM goes to an anonymous memory file
    (``memfd``) so key material never touches a disk; where that is missing, to a 0600 file in
    a private temporary directory that is removed at once.
    """
    ctx = server_context()
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    data = key_pem + chain_pem
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None and os.path.isdir("/proc/self/fd"):
        fd = memfd_create("spire-oidc-cert", getattr(os, "MFD_CLOEXEC", 0))
        try:
            _write_all(fd, data)
            ctx.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return ctx
    tmpdir = tempfile.mkdtemp(prefix="spire-oidc-acme-")
    try:
        path = os.path.join(tmpdir, "pair.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        ctx.load_cert_chain(path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return ctx


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]

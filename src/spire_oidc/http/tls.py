"""TLS for the main listener: server contexts and the ``serving_cert_file`` reloader.

The reloader watches both files every ``file_sync_interval`` (spire-behavior.md §5.2). A new pair
is loaded into a fresh context before it goes live, so a bad pair is logged and the old one keeps
being served; connections already open are never touched. A pair that does not load is named
precisely (:func:`diagnose`): which file, and whether it is missing, not PEM, a key that does not
match the certificate, or (on reload) an expired certificate.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import ssl

import structlog
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from spire_oidc.errors import StartupError

log = structlog.get_logger(__name__)


# TLS 1.2 suites: forward secret (ECDHE) and AEAD only, as Mozilla's "intermediate" profile; the
# CBC-mode suites OpenSSL would also offer are left out. TLS 1.3 suites are all AEAD and ECDHE.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!PSK"


def server_context() -> ssl.SSLContext:
    """A TLS 1.2+ server context with HTTP/1.1 ALPN (no HTTP/2: see docs/compatibility.md)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _mtimes(*paths: str) -> tuple[int, ...] | None:
    try:
        return tuple(os.stat(p).st_mtime_ns for p in paths)
    except OSError:
        return None


class CertFileReloader:
    """Owns the main listener's context for ``serving_cert_file`` and reloads it on change.

    The listener's context never changes; its SNI callback (which OpenSSL calls for every
    ClientHello, with or without a server name) hands each new connection the context of the
    last pair that loaded successfully. A reload builds a fresh context from the files, so a bad
    pair fails before anything goes live, and no private key is ever copied anywhere.
    """

    def __init__(self, cert_path: str, key_path: str, interval: float) -> None:
        self._cert = cert_path
        self._key = key_path
        self.cert_path = cert_path
        self.key_path = key_path
        self._interval = interval
        self._loaded_mtimes: tuple[int, ...] | None = None
        self._current: ssl.SSLContext | None = None
        self.context = server_context()
        self.context.sni_callback = self._select
        self.reloads = 0

    def _select(self, sslobj: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
        current = self._current
        if current is not None:
            sslobj.context = current

    def load_initial(self) -> None:
        """Load the pair (at start-up, or forced by SIGHUP); raises ``StartupError`` on failure
        (SPIRE: ``failed to load certificate``), leaving the served pair unchanged."""
        try:
            self._load()
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise StartupError(f"failed to load certificate: {self._explain(exc)}") from exc

    def _explain(self, exc: BaseException) -> str:
        why = diagnose(self._cert, self._key) or _describe(exc)
        if self._current is not None:
            why += "; the previous certificate stays in service"
        return why

    def _load(self) -> None:
        before = _mtimes(self._cert, self._key)
        if self._current is not None:  # a reload: an expired certificate does not replace one
            expired = _expired(self._cert)
            if expired:
                raise ValueError(expired)
        fresh = server_context()
        fresh.load_cert_chain(self._cert, self._key)  # raises on a missing file or a bad pair
        if self._current is None:
            # The listener context also holds the first pair, should a client skip the callback.
            self.context.load_cert_chain(self._cert, self._key)
        self._current = fresh
        self._loaded_mtimes = before

    def check_once(self) -> bool:
        """Reload when either file changed since the last successful load; True if swapped."""
        now = _mtimes(self._cert, self._key)
        if now is None:
            for p in (self._cert, self._key):
                if not os.path.exists(p):
                    log.error("certificate_file_missing", path=p)
            return False
        if now == self._loaded_mtimes:
            return False
        log.info("certificate_change_detected", cert_file_path=self._cert)
        try:
            self._load()
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.error(
                "certificate_reload_failed", error=self._explain(exc), cert_file_path=self._cert
            )
            return False
        self.reloads += 1
        log.info("certificate_reloaded", cert_file_path=self._cert, key_file_path=self._key)
        return True

    async def run(self) -> None:
        log.info("certificate_watch_started", interval=self._interval)
        try:
            while True:
                await asyncio.sleep(self._interval)
                self.check_once()
        finally:
            log.info("certificate_watch_stopped")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename:
        return f"open {exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def diagnose(cert_path: str, key_path: str) -> str | None:
    """Why a certificate/key pair does not load, naming the file; None if no cause is found.

    OpenSSL's own errors say ``[SSL] PEM lib`` whichever file is wrong; this reads the files
    with ``cryptography`` to say which one, and what is wrong with it.
    """
    try:
        with open(cert_path, "rb") as f:
            cert_pem = f.read()
    except OSError as exc:
        return f"cert_file_path {cert_path}: {_os_error(exc)}"
    try:
        with open(key_path, "rb") as f:
            key_pem = f.read()
    except OSError as exc:
        return f"key_file_path {key_path}: {_os_error(exc)}"
    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        return (
            f"cert_file_path {cert_path}: no PEM certificate in the file "
            "(expected -----BEGIN CERTIFICATE-----)"
        )
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        return f"key_file_path {key_path}: the private key is encrypted (a passphrase is needed)"
    except (ValueError, UnsupportedAlgorithm):
        return (
            f"key_file_path {key_path}: no usable PEM private key in the file "
            "(expected -----BEGIN PRIVATE KEY----- or an RSA/EC key)"
        )
    leaf_key = certs[0].public_key()
    pub = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*pub) != leaf_key.public_bytes(*pub):
        return (
            f"key_file_path {key_path}: the private key does not match the certificate "
            f"in cert_file_path {cert_path} (the first certificate must be the key's)"
        )
    return None


def _expired(cert_path: str) -> str | None:
    """``cert_file_path X: the certificate expired at ...`` when its leaf has expired."""
    try:
        with open(cert_path, "rb") as f:
            leaf = x509.load_pem_x509_certificates(f.read())[0]
    except (OSError, ValueError):
        return None  # load_cert_chain reports these
    not_after = leaf.not_valid_after_utc
    if not_after < datetime.datetime.now(datetime.UTC):
        return f"cert_file_path {cert_path}: the certificate expired at {not_after.isoformat()}"
    return None


def _os_error(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()

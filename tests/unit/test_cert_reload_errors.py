"""Issue 17.4: a certificate pair that does not load is named precisely (which file, and why),
and a failed reload says that the previous certificate stays in service."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from spire_oidc.errors import StartupError
from spire_oidc.http.tls import CertFileReloader


def _pair(tmp_path: Path, ca: trustme.CA | None = None) -> tuple[Path, Path]:
    leaf = (ca or trustme.CA()).issue_cert("localhost")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    return cert, key


def _expired_pair(cert: Path, key: Path) -> None:
    """Overwrite the pair with a self-signed certificate that expired yesterday."""
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(now - datetime.timedelta(days=1))
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _start_error(cert: Path, key: Path) -> str:
    with pytest.raises(StartupError) as info:
        CertFileReloader(str(cert), str(key), 1.0).load_initial()
    return str(info.value)


def test_missing_certificate_file_names_it(tmp_path: Path) -> None:
    """A missing cert file: the key name, the path and 'no such file or directory'."""
    _, key = _pair(tmp_path)
    missing = tmp_path / "none.pem"
    assert _start_error(missing, key) == (
        f"failed to load certificate: cert_file_path {missing}: no such file or directory"
    )


def test_certificate_file_that_is_not_pem(tmp_path: Path) -> None:
    """A cert file without a PEM certificate is named as such (not '[SSL] PEM lib')."""
    cert, key = _pair(tmp_path)
    cert.write_text("hello\n")
    message = _start_error(cert, key)
    assert message.startswith(f"failed to load certificate: cert_file_path {cert}: no PEM cert")
    assert "PEM lib" not in message


def test_key_file_that_is_not_pem(tmp_path: Path) -> None:
    """A key file without a PEM private key is named, with what was expected."""
    cert, key = _pair(tmp_path)
    key.write_bytes(cert.read_bytes())  # a certificate where the key should be
    message = _start_error(cert, key)
    assert message.startswith(f"failed to load certificate: key_file_path {key}: no usable PEM")


def test_key_that_does_not_match_the_certificate(tmp_path: Path) -> None:
    """A key from another pair: 'does not match the certificate', naming both files."""
    cert, key = _pair(tmp_path)
    other = trustme.CA().issue_cert("localhost")
    key.write_bytes(other.private_key_pem.bytes())
    assert _start_error(cert, key) == (
        f"failed to load certificate: key_file_path {key}: the private key does not match the "
        f"certificate in cert_file_path {cert} (the first certificate must be the key's)"
    )


def test_failed_reload_keeps_the_old_certificate_and_says_so(tmp_path: Path) -> None:
    """After a good load, a bad pair on reload is refused, the message says the previous
    certificate stays in service, and the reload counter does not move."""
    cert, key = _pair(tmp_path)
    reloader = CertFileReloader(str(cert), str(key), 1.0)
    reloader.load_initial()
    other = trustme.CA().issue_cert("localhost")
    key.write_bytes(other.private_key_pem.bytes())
    with pytest.raises(StartupError, match=r"; the previous certificate stays in service$"):
        reloader.load_initial()
    assert reloader.reloads == 0


def test_expired_certificate_is_refused_on_reload_only(tmp_path: Path) -> None:
    """An expired certificate does not replace a served one ('expired at ...', old kept); the
    watcher's check refuses it too."""
    cert, key = _pair(tmp_path)
    reloader = CertFileReloader(str(cert), str(key), 1.0)
    reloader.load_initial()
    _expired_pair(cert, key)
    with pytest.raises(StartupError) as info:
        reloader.load_initial()
    message = str(info.value)
    assert f"cert_file_path {cert}: the certificate expired at " in message
    assert message.endswith("; the previous certificate stays in service")
    os.utime(cert, ns=(5, 5))
    assert reloader.check_once() is False
    # At start-up (nothing served yet) the expired pair still loads, as SPIRE's does.
    CertFileReloader(str(cert), str(key), 1.0).load_initial()

"""Which CAs the ACME client trusts for the ACME server's HTTPS.

The base is the first of ``REQUESTS_CA_BUNDLE``, ``SSL_CERT_FILE`` and ``CURL_CA_BUNDLE`` that
is set, else certifi's bundle (``requests``' own default). The optional ``ca_bundle_path`` of the
``acme`` block (a private ACME server's root) is *added* to the base: ``requests`` takes one
bundle file, so both go into a file in a private temporary directory, removed by :meth:`close`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping

from cryptography import x509

from spire_oidc.errors import StartupError

_ENV_BUNDLES = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")


def _default_bundle() -> str:
    import certifi

    return str(certifi.where())


class TrustBundle:
    """The ``verify`` value for the ACME client's HTTPS requests."""

    def __init__(self, ca_bundle_path: str = "", environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.base_source = next((name for name in _ENV_BUNDLES if env.get(name)), "")
        base = env[self.base_source] if self.base_source else ""
        self._tmpdir: str | None = None
        self.verify: str | bool = base or True
        if not ca_bundle_path:
            return
        extra = _read_bundle(ca_bundle_path)
        base_pem = _read_file(base or _default_bundle())
        self._tmpdir = tempfile.mkdtemp(prefix="spire-oidc-acme-ca-")
        path = os.path.join(self._tmpdir, "ca-bundle.pem")
        with open(path, "wb") as f:
            f.write(base_pem.rstrip(b"\n") + b"\n" + extra)
        self.verify = path

    def close(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise StartupError(f"acme: cannot read CA bundle {path}: {exc.strerror}") from exc


def _read_bundle(path: str) -> bytes:
    data = _read_file(path)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise StartupError(f"acme: ca_bundle_path {path}: no PEM certificate in it") from exc
    if not certs:
        raise StartupError(f"acme: ca_bundle_path {path}: no PEM certificate in it")
    return data

"""HTTP(S) GETs as a relying party makes them: no redirects followed, each one timed, the TLS
chain verified against the trust the operator gives (``--ca``, else this machine's roots, which
honour ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``).

When the chain does not verify, the failure is recorded and the document is fetched again
without verification, so the rest of the deployment can still be examined; the result says so.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from spire_oidc import __version__

MAX_BODY = 1 << 20  # a JWKS with 100 RSA-4096 keys is ~100 KiB
USER_AGENT = f"spire-oidc-doctor/{__version__}"


@dataclass(frozen=True)
class Fetched:
    """One GET: what came back, how long it took, and what TLS said."""

    url: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    seconds: float = 0.0
    error: str = ""  # why there is no response ("" when there is one)
    tls_version: str = ""
    tls_verified: bool | None = None  # None for plain http
    tls_error: str = ""  # why the chain did not verify

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


def trust_context(ca_file: str | None) -> ssl.SSLContext:
    """The relying party's trust: ``ca_file`` alone when given, else the default roots."""
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    return ssl.create_default_context()


def _unverified() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _once(url: str, ctx: ssl.SSLContext | None, timeout: float) -> Fetched:
    parts = urlsplit(url)
    host = parts.hostname or ""
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, parts.port, context=ctx, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    start = time.monotonic()
    try:
        conn.request(
            "GET", target, headers={"Accept": "application/json", "User-Agent": USER_AGENT}
        )
        resp = conn.getresponse()
        version = ""
        if isinstance(conn.sock, ssl.SSLSocket):
            version = conn.sock.version() or ""
        body = resp.read(MAX_BODY + 1)
        seconds = time.monotonic() - start
        headers = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    error = f"response larger than {MAX_BODY} bytes" if len(body) > MAX_BODY else ""
    return Fetched(
        url=url,
        status=resp.status,
        headers=headers,
        body=body[:MAX_BODY],
        seconds=seconds,
        error=error,
        tls_version=version,
        tls_verified=True if parts.scheme == "https" else None,
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc.verify_message or str(exc)
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return text


def fetch(url: str, trust: ssl.SSLContext, *, timeout: float) -> Fetched:
    """GET ``url`` once with ``trust``; on a chain failure, again without verification."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Fetched(url=url, error="not an http(s) URL")
    start = time.monotonic()
    try:
        return _once(url, trust if parts.scheme == "https" else None, timeout)
    except ssl.SSLCertVerificationError as exc:
        reason = _describe(exc)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return Fetched(url=url, seconds=time.monotonic() - start, error=_describe(exc))
    try:
        again = _once(url, _unverified(), timeout)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return Fetched(url=url, error=_describe(exc), tls_verified=False, tls_error=reason)
    return Fetched(
        url=again.url,
        status=again.status,
        headers=again.headers,
        body=again.body,
        seconds=again.seconds,
        error=again.error,
        tls_version=again.tls_version,
        tls_verified=False,
        tls_error=reason,
    )


def handshake(url: str, ctx: ssl.SSLContext, *, timeout: float) -> str:
    """A TLS handshake only: "" when it succeeds, else the reason."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        with (
            socket.create_connection((host, parts.port or 443), timeout=timeout) as raw,
            ctx.wrap_socket(raw, server_hostname=host),
        ):
            return ""
    except (OSError, ValueError) as exc:
        return _describe(exc)


def accepts_tls12(url: str, *, timeout: float) -> str:
    """The empty string when the server completes a TLS 1.2 handshake, else the reason."""
    ctx = _unverified()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return handshake(url, ctx, timeout=timeout)


def resolve(url: str) -> list[str]:
    """The addresses the URL's host resolves to here (empty when it does not resolve)."""
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname or "", parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})

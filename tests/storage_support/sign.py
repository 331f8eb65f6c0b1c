"""Request signing for the tests' own bucket and container creation (not product code).

The product signs through ``obstore``; the test servers' admin calls (create a bucket, make a
container public) are signed here with the standard library so no cloud SDK is needed.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
from urllib.parse import quote, urlsplit


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sigv4_headers(
    method: str,
    url: str,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    body: bytes = b"",
    service: str = "s3",
) -> dict[str, str]:
    """AWS Signature Version 4 headers for one request (no query string)."""
    parts = urlsplit(url)
    now = datetime.datetime.now(datetime.UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    payload = hashlib.sha256(body).hexdigest()
    host = parts.netloc
    canonical_headers = f"host:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{amz_date}\n"
    signed = "host;x-amz-content-sha256;x-amz-date"
    canonical = "\n".join(
        [method, quote(parts.path or "/"), parts.query, canonical_headers, signed, payload]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(f"AWS4{secret_key}".encode(), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "x-amz-date": amz_date,
        "x-amz-content-sha256": payload,
        "Authorization": (
            f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        ),
    }


def azure_shared_key_headers(
    method: str,
    url: str,
    *,
    account: str,
    key_b64: str,
    extra: dict[str, str] | None = None,
    content_length: int = 0,
) -> dict[str, str]:
    """Azure Storage Shared Key headers for one request (path-style emulator URLs)."""
    parts = urlsplit(url)
    headers = {
        "x-ms-date": datetime.datetime.now(datetime.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT"),
        "x-ms-version": "2021-08-06",
        **(extra or {}),
    }
    ms = "".join(f"{k.lower()}:{v}\n" for k, v in sorted(headers.items()) if k.startswith("x-ms-"))
    # Path-style (emulator): the canonical resource is /account/account/container...
    resource = f"/{account}{parts.path}"
    for pair in sorted(p for p in parts.query.split("&") if p):
        name, _, value = pair.partition("=")
        resource += f"\n{name.lower()}:{value}"
    length = str(content_length) if content_length else ""
    to_sign = f"{method}\n\n\n{length}\n\n\n\n\n\n\n\n\n{ms}{resource}"
    sig = base64.b64encode(
        hmac.new(base64.b64decode(key_b64), to_sign.encode(), hashlib.sha256).digest()
    ).decode()
    headers["Authorization"] = f"SharedKey {account}:{sig}"
    return headers

"""Look at a deployment the way relying parties do: the I/O half of ``doctor``.

Everything fetched is collected into one immutable :class:`Observation`; the checks
(:mod:`spire_oidc.doctor.checks`) are pure functions of it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from spire_oidc.doctor import fetch as net
from spire_oidc.doctor.fetch import Fetched

DISCOVERY_SUFFIX = "/.well-known/openid-configuration"


@dataclass(frozen=True)
class Observation:
    issuer: str  # as the operator gives it (what relying parties are configured with)
    ca_file: str
    discovery: Fetched
    doc: dict[str, object] | None
    doc_error: str
    jwks: Fetched | None
    keys: list[dict[str, object]] | None
    jwks_error: str
    public_trust_error: str | None  # None: not https; "": chain trusted by this machine's roots
    tls12_error: str | None  # None: not https; "": a TLS 1.2 handshake works
    appended_discovery: Fetched | None  # "{issuer}/.well-known/..." when the issuer ends with "/"
    addresses: tuple[str, ...]
    token_text: str | None
    audience: str
    now: float


def discovery_url(issuer: str) -> str:
    """OIDC Discovery §4: the issuer without its trailing slash, plus the well-known path."""
    return issuer.rstrip("/") + DISCOVERY_SUFFIX


def parse_json_object(fetched: Fetched) -> tuple[dict[str, object] | None, str]:
    if not fetched.ok:
        return None, ""
    try:
        value = json.loads(fetched.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"not JSON: {exc}"
    if not isinstance(value, dict):
        return None, "not a JSON object"
    return value, ""


def parse_keys(fetched: Fetched) -> tuple[list[dict[str, object]] | None, str]:
    obj, error = parse_json_object(fetched)
    if obj is None:
        return None, error
    keys = obj.get("keys")
    if not isinstance(keys, list):
        return None, 'no "keys" array'
    return [k for k in keys if isinstance(k, dict)], ""


def observe(
    issuer: str,
    *,
    ca_file: str = "",
    token_text: str | None = None,
    audience: str = "",
    timeout: float = 10.0,
) -> Observation:
    trust = net.trust_context(ca_file or None)
    discovery = net.fetch(discovery_url(issuer), trust, timeout=timeout)
    doc, doc_error = parse_json_object(discovery)
    jwks: Fetched | None = None
    keys: list[dict[str, object]] | None = None
    jwks_error = ""
    if doc is not None and isinstance(doc.get("jwks_uri"), str) and doc["jwks_uri"]:
        jwks = net.fetch(str(doc["jwks_uri"]), trust, timeout=timeout)
        keys, jwks_error = parse_keys(jwks)
    public: str | None = None
    tls12: str | None = None
    if issuer.startswith("https://") and discovery.status is not None:
        if ca_file:
            public = net.handshake(issuer, net.trust_context(None), timeout=timeout)
        else:
            public = discovery.tls_error
        tls12 = net.accepts_tls12(issuer, timeout=timeout)
    appended = None
    if issuer.endswith("/"):
        appended = net.fetch(issuer + DISCOVERY_SUFFIX, trust, timeout=timeout)
    return Observation(
        issuer=issuer,
        ca_file=ca_file,
        discovery=discovery,
        doc=doc,
        doc_error=doc_error,
        jwks=jwks,
        keys=keys,
        jwks_error=jwks_error,
        public_trust_error=public,
        tls12_error=tls12,
        appended_discovery=appended,
        addresses=tuple(net.resolve(issuer)),
        token_text=token_text,
        audience=audience,
        now=time.time(),
    )

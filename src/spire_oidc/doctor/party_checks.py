"""Pure checks of one relying party's rules (``doctor/parties.py``) against an observation."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit

from spire_oidc.doctor.fetch import Fetched
from spire_oidc.doctor.findings import Finding, key_alg, kid_of, ms, plural
from spire_oidc.doctor.observe import Observation
from spire_oidc.doctor.parties import Party, Status

DERIVE_FIX = "discovery_document { signing_algs_from_keys = true } (provider config)"
ISSUER_FIX = (
    'set jwt_issuer = "{given}" in the provider and in the SPIRE server, or configure the '
    "relying party with {served!r}"
)


def fetch_problem(fetched: Fetched) -> str:
    if fetched.error and fetched.status is None:
        return fetched.error
    if fetched.status != 200:
        return f"HTTP {fetched.status}"
    return fetched.error


def _scheme(url: str) -> str:
    return urlsplit(url).scheme.lower()


def _party_url_checks(p: Party, obs: Observation) -> Iterator[Finding]:
    if _scheme(obs.issuer) == "https":
        yield Finding(p.name, "issuer.https", "pass", "the issuer uses https")
    else:
        yield Finding(
            p.name,
            "issuer.https",
            "fail" if p.https_required else "warn",
            f"the issuer {obs.issuer!r} is not https",
            "serve TLS (serving_cert_file or acme) and drop allow_insecure_scheme",
        )
    parts = urlsplit(obs.issuer)
    if parts.query or parts.fragment or obs.issuer.endswith(("?", "#")):
        yield Finding(
            p.name,
            "issuer.form",
            "fail" if p.https_required else "warn",
            "the issuer has a query or fragment, which OIDC Discovery §3 forbids",
            "drop it from jwt_issuer",
        )
    elif obs.issuer != obs.issuer.strip():
        yield Finding(
            p.name, "issuer.form", "fail", "the issuer has surrounding whitespace", "remove it"
        )
    elif p.max_issuer_length is not None and len(obs.issuer) > p.max_issuer_length:
        yield Finding(
            p.name,
            "issuer.form",
            "fail",
            f"the issuer is {len(obs.issuer)} characters; at most {p.max_issuer_length}",
            "use a shorter jwt_issuer",
        )


def _party_issuer(p: Party, obs: Observation) -> Iterator[Finding]:
    if obs.doc is None:
        return
    served = obs.doc.get("issuer")
    if not isinstance(served, str):
        return
    if p.issuer_compare == "none":
        yield Finding(
            p.name,
            "issuer.match",
            "pass",
            "does not compare the document's issuer (reads only jwks_uri); the token's iss "
            "is compared with its bound issuer, if one is set",
        )
        return
    if served == obs.issuer:
        yield Finding(p.name, "issuer.match", "pass", f"the document's issuer is {served!r}")
        return
    slash = served.rstrip("/") == obs.issuer.rstrip("/")
    reason = f"the document's issuer {served!r} is not {obs.issuer!r}" + (
        " (only a trailing slash differs; this party compares strings)" if slash else ""
    )
    yield Finding(
        p.name, "issuer.match", "fail", reason, ISSUER_FIX.format(given=obs.issuer, served=served)
    )


def _party_jwks_uri(p: Party, obs: Observation) -> Iterator[Finding]:
    if obs.doc is None or not p.https_required:
        return
    uri = obs.doc.get("jwks_uri")
    if isinstance(uri, str) and uri and _scheme(uri) != "https":
        yield Finding(
            p.name,
            "jwks_uri.https",
            "fail",
            f"jwks_uri {uri!r} is not https",
            "set jwks_uri to an https URL, or serve TLS",
        )


def _party_tls(p: Party, obs: Observation) -> Iterator[Finding]:
    if obs.public_trust_error is None:
        return
    if obs.public_trust_error == "":
        yield Finding(p.name, "tls.public", "pass", "the chain is trusted by this machine's roots")
    elif p.tls == "private":
        yield Finding(
            p.name,
            "tls.public",
            "pass",
            f"a private CA is fine here: {p.tls_fix}",
        )
    else:
        yield Finding(
            p.name,
            "tls.public",
            "fail" if p.tls == "public" else "warn",
            f"the chain is not trusted by this machine's roots ({obs.public_trust_error})",
            p.tls_fix,
        )
    if p.name == "aws" and obs.tls12_error:
        yield Finding(
            p.name,
            "tls.version",
            "warn",
            f"the server refuses TLS 1.2 ({obs.tls12_error}); AWS then falls back to the "
            "IAM provider's thumbprints",
            "allow TLS 1.2 at the TLS terminator",
        )


def _party_redirect(p: Party, obs: Observation) -> Iterator[Finding]:
    d = obs.discovery
    if d.status is not None and 300 <= d.status < 400:
        yield Finding(
            p.name,
            "discovery.redirect",
            "warn" if p.follows_redirects else "fail",
            f"the discovery URL redirects to {d.headers.get('location', '?')}"
            + ("" if p.follows_redirects else "; this party follows no redirects"),
            "make the issuer the URL that serves the document (jwt_issuer, server_path_prefix)",
        )


def _party_transport(p: Party, obs: Observation) -> Iterator[Finding]:
    d = obs.discovery
    if p.appends_discovery_path and obs.appended_discovery is not None:
        a = obs.appended_discovery
        if a.ok:
            yield Finding(p.name, "discovery.path", "pass", f"{a.url} is served")
        else:
            yield Finding(
                p.name,
                "discovery.path",
                "fail",
                f"this party requests {a.url} (issuer + path): {fetch_problem(a)}",
                "configure the party's discovery URL without the trailing slash",
            )
    if p.max_seconds is not None and d.status is not None:
        slowest = max(d.seconds, obs.jwks.seconds if obs.jwks else 0.0)
        timing = f"discovery {ms(d.seconds)}" + (
            f", JWKS {ms(obs.jwks.seconds)}" if obs.jwks else ""
        )
        if slowest >= p.max_seconds:
            status: Status = "fail"
        elif slowest >= p.max_seconds / 2:
            status = "warn"
        else:
            status = "pass"
        yield Finding(
            p.name,
            "response.time",
            status,
            f"{timing} (this party gives up after about {p.max_seconds:g} s)",
            "" if status == "pass" else "serve from closer to the party, or a CDN",
        )
    if p.needs_public_address and obs.addresses:
        private = [a for a in obs.addresses if not ipaddress.ip_address(a.split("%")[0]).is_global]
        if len(private) == len(obs.addresses):
            yield Finding(
                p.name,
                "address.public",
                "warn",
                f"the issuer's host resolves to {', '.join(obs.addresses)} here, not a public "
                "address",
                p.private_address_fix,
            )
        else:
            yield Finding(p.name, "address.public", "pass", "the host has a public address")


def _party_metadata(p: Party, obs: Observation) -> Iterator[Finding]:
    doc = obs.doc
    if doc is None:
        return
    if p.needs_response_types or p.strict_metadata:
        rts = doc.get("response_types_supported")
        if isinstance(rts, list) and rts:
            yield Finding(p.name, "metadata.response_types", "pass", f"response_types {rts}")
        else:
            yield Finding(
                p.name,
                "metadata.response_types",
                "fail",
                "response_types_supported is missing or empty",
                "serve the document from the provider (it always lists id_token)",
            )
    if not p.strict_metadata:
        return
    endpoint = doc.get("authorization_endpoint")
    if isinstance(endpoint, str) and endpoint.startswith("https://"):
        yield Finding(
            p.name, "metadata.authorization_endpoint", "pass", f"authorization_endpoint {endpoint}"
        )
    else:
        yield Finding(
            p.name,
            "metadata.authorization_endpoint",
            "fail",
            f"authorization_endpoint is {endpoint!r}, not an https URL (OIDC Discovery §3 "
            "REQUIRED; libiddawc refuses the document)",
            'discovery_document { authorization_endpoint = "https://<host>/authorize" } '
            "(provider config)",
        )
    subjects = doc.get("subject_types_supported")
    if isinstance(subjects, list) and subjects:
        yield Finding(p.name, "metadata.subject_types", "pass", f"subject_types {subjects}")
    else:
        yield Finding(
            p.name,
            "metadata.subject_types",
            "fail",
            "subject_types_supported is empty (Nimbus: 'At least one supported subject type "
            "must be specified')",
            'serve the document from this provider (it lists "public", as SPIRE >= 1.13)',
        )
    algs = doc.get("id_token_signing_alg_values_supported")
    if isinstance(algs, list) and "RS256" in algs:
        yield Finding(p.name, "metadata.alg_values", "pass", f"alg values {algs} include RS256")
    else:
        yield Finding(
            p.name,
            "metadata.alg_values",
            "warn",
            f"id_token_signing_alg_values_supported {algs!r} lacks RS256, which OIDC "
            "Discovery §3 requires",
            "leave discovery_document.signing_algs_from_keys off, or add an RSA key",
        )


def _party_keys(p: Party, obs: Observation) -> Iterator[Finding]:
    keys = obs.keys
    if not keys:
        return
    if p.max_keys is not None:
        n = len(keys)
        status: Status = "fail" if n > p.max_keys else "pass"
        yield Finding(
            p.name,
            "keys.count",
            status,
            f"{plural(n, 'key')} (this party reads at most {p.max_keys})",
            "" if status == "pass" else "fewer SPIRE servers or KMS keys per trust domain",
        )
    yield from _party_use(p, keys)
    algs = {kid_of(k) or "?": key_alg(k) for k in keys}
    bad = {kid: alg for kid, alg in algs.items() if alg not in p.accepted_algs}
    if not bad:
        yield Finding(
            p.name,
            "keys.alg",
            "pass",
            "; ".join(f"key {k}: alg {a} accepted" for k, a in algs.items()),
        )
    else:
        listing = "; ".join(f"key {k}: alg {a}" for k, a in bad.items())
        some_ok = len(bad) < len(algs)
        yield Finding(
            p.name,
            "keys.alg",
            "warn" if some_ok else p.alg_unsupported,
            f"not accepted by default: {listing}"
            + ("; tokens signed with the other keys are fine" if some_ok else ""),
            p.alg_fix,
        )
    if p.checks_alg_list and obs.doc is not None:
        listed = obs.doc.get("id_token_signing_alg_values_supported")
        listed_set = set(listed) if isinstance(listed, list) else set()
        unlisted = sorted({a for a in algs.values() if a not in listed_set})
        if unlisted:
            yield Finding(
                p.name,
                "keys.alg_listed",
                "fail",
                f"keys use {', '.join(unlisted)}, which id_token_signing_alg_values_supported "
                "does not list (openid-client rejects such tokens)",
                DERIVE_FIX,
            )
        else:
            yield Finding(
                p.name, "keys.alg_listed", "pass", "every key's alg is listed in the document"
            )
    if p.jwk_members is not None:
        extra = sorted({m for k in keys for m in k if m not in p.jwk_members})
        if extra:
            yield Finding(
                p.name,
                "keys.members",
                "fail",
                f"JWK members outside {sorted(p.jwk_members)}: {', '.join(extra)} "
                "(an uploaded JWKS with them is refused)",
                "serve the keys through the provider (it never adds x5c or x5t)",
            )
        else:
            yield Finding(p.name, "keys.members", "pass", "only kty/kid/alg/use/n/e/crv/x/y")


def _party_use(p: Party, keys: Sequence[dict[str, object]]) -> Iterator[Finding]:
    uses = {kid_of(k) or "?": k.get("use") for k in keys}
    other = {kid: u for kid, u in uses.items() if u not in (None, "sig")}
    if other:
        ignores_use = p.name in ("vault", "kubernetes")
        yield Finding(
            p.name,
            "keys.use",
            "warn" if ignores_use else "fail",
            "keys with use other than sig: " + ", ".join(f"{k}={u!r}" for k, u in other.items()),
            "serve the keys through the provider: use is absent or, with set_key_use, sig",
        )
    elif any(u is None for u in uses.values()):
        yield Finding(
            p.name,
            "keys.use",
            p.use_absent,
            "keys carry no use member"
            + (" (this party is documented to want use=sig)" if p.use_absent != "pass" else ""),
            p.use_fix if p.use_absent != "pass" else "",
        )
    else:
        yield Finding(p.name, "keys.use", "pass", 'every key has use "sig"')


def party_findings(p: Party, obs: Observation) -> list[Finding]:
    """Every finding of one party; only the URL, redirect and TLS ones without a document."""
    findings = list(_party_url_checks(p, obs))
    findings += _party_redirect(p, obs)
    if obs.doc is None:
        findings += _party_tls(p, obs)
        return findings
    findings += _party_issuer(p, obs)
    findings += _party_jwks_uri(p, obs)
    findings += _party_tls(p, obs)
    findings += _party_transport(p, obs)
    findings += _party_metadata(p, obs)
    findings += _party_keys(p, obs)
    return findings

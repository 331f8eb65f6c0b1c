"""Pure checks: an :class:`Observation` and the chosen parties -> findings.

A finding names the party (``all`` for what every relying party needs), a stable check id
(documented in ``docs/relying-parties.md``), pass/warn/fail, the reason and the fix.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from spire_oidc.doctor.cache_checks import (
    DEFAULT_CA_TTL,
    cacheable_findings,
    propagation_finding,
)
from spire_oidc.doctor.fetch import Fetched
from spire_oidc.doctor.findings import ALL, Finding, kid_of, ms, plural
from spire_oidc.doctor.observe import Observation
from spire_oidc.doctor.parties import Party
from spire_oidc.doctor.party_checks import fetch_problem, party_findings
from spire_oidc.doctor.token_checks import token_findings
from spire_oidc.doctor.triage import discovery_url_trap, unreachable


def _fetch_fix(fetched: Fetched, what: str) -> str:
    status = fetched.status
    if status is None:
        return (
            "check DNS and the listener (serving_cert_file.addr, acme, insecure_addr) and that "
            "nothing in between blocks the port"
        )
    if status == 404:
        if what == "discovery":
            return (
                "the issuer's path must be where the provider serves the document: set "
                "server_path_prefix to the issuer's path (or fix the proxy's path mapping)"
            )
        return "jwks_uri must point at the provider's /keys: fix jwks_uri or server_path_prefix"
    if status == 400:
        return "add the host the relying party uses to domains (provider config)"
    if status == 500:
        return "the source has not delivered keys yet: check the provider's source and its logs"
    if status == 501:
        return "the key set is empty (every key revoked): check the SPIRE bundle"
    if 300 <= status < 400:
        target = fetched.headers.get("location", "?")
        return f"serve the document at the URL itself, not a redirect to {target}"
    return "check the provider's and the proxy's logs"


# -- every relying party ----------------------------------------------------------------------


def _common(obs: Observation) -> Iterator[Finding]:
    d = obs.discovery
    if obs.doc is None:
        problem = obs.doc_error or fetch_problem(d)
        yield Finding(
            ALL, "discovery.fetch", "fail", f"{d.url}: {problem}", _fetch_fix(d, "discovery")
        )
        return
    yield Finding(ALL, "discovery.fetch", "pass", f"{d.url}: 200, JSON object, {ms(d.seconds)}")
    ctype = d.content_type.split(";", 1)[0].strip().lower()
    if ctype == "application/json":
        yield Finding(ALL, "discovery.content_type", "pass", "Content-Type: application/json")
    else:
        yield Finding(
            ALL,
            "discovery.content_type",
            "warn",
            f"Content-Type is {d.content_type!r}; OIDC Discovery §4.2 requires application/json",
            "serve the document from the provider itself (a proxy or object store rewrote it)",
        )
    issuer = obs.doc.get("issuer")
    if not isinstance(issuer, str) or not issuer:
        yield Finding(ALL, "issuer.present", "fail", 'the document has no "issuer"', "")
    jwks_uri = obs.doc.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri:
        yield Finding(ALL, "jwks_uri.present", "fail", 'the document has no "jwks_uri"', "")
        return
    yield from _tls_given_trust(obs)
    j = obs.jwks
    if j is None or obs.keys is None:
        problem = obs.jwks_error or (fetch_problem(j) if j else "not fetched")
        fix = _fetch_fix(j, "jwks") if j is not None and not obs.jwks_error else ""
        yield Finding(ALL, "jwks.fetch", "fail", f"{jwks_uri}: {problem}", fix)
        return
    yield Finding(
        ALL,
        "jwks.fetch",
        "pass",
        f"{j.url}: 200, {plural(len(obs.keys), 'key')}, {ms(j.seconds)}",
    )
    yield from _keys_common(obs.keys)


def _tls_given_trust(obs: Observation) -> Iterator[Finding]:
    trust = f"--ca {obs.ca_file}" if obs.ca_file else "this machine's roots"
    for name, fetched in (("discovery", obs.discovery), ("jwks", obs.jwks)):
        if fetched is None or fetched.tls_verified is None:
            continue
        if fetched.tls_verified:
            yield Finding(
                ALL,
                f"tls.{name}",
                "pass",
                f"{fetched.url}: {fetched.tls_version}, chain verified against {trust}",
            )
        else:
            yield Finding(
                ALL,
                f"tls.{name}",
                "fail",
                f"{fetched.url}: the chain does not verify against {trust}: {fetched.tls_error}",
                "serve the full chain (serving_cert_file.cert_file_path: leaf then "
                "intermediates) and check the certificate's names, or pass --ca",
            )


def _keys_common(keys: list[dict[str, object]]) -> Iterator[Finding]:
    if not keys:
        yield Finding(ALL, "keys.present", "fail", "the JWKS has no keys", "check the SPIRE bundle")
        return
    kids = [kid_of(k) for k in keys]
    missing = sum(1 for k in kids if not k)
    dupes = sorted({k for k in kids if k and kids.count(k) > 1})
    if missing:
        yield Finding(
            ALL,
            "keys.kid",
            "fail",
            f"{missing} of {len(keys)} keys have no kid; relying parties pick keys by kid "
            "(PyJWKClient ignores keys without one)",
            "serve the keys through the provider (it never serves a key without a kid)",
        )
    elif dupes:
        yield Finding(ALL, "keys.kid", "warn", f"duplicate kids: {', '.join(dupes)}", "")
    else:
        yield Finding(ALL, "keys.kid", "pass", f"every key has a unique kid ({', '.join(kids)})")
    no_alg = [k or "?" for k, jwk in zip(kids, keys, strict=True) if "alg" not in jwk]
    if no_alg:
        yield Finding(
            ALL,
            "keys.alg_member",
            "warn",
            f"keys without an alg member: {', '.join(no_alg)} (some validators need it, "
            "spiffe/spire#2753)",
            "use RSA keys of at least 2048 bits, P-256 or P-384 (SPIRE server jwt_key_type)",
        )
    else:
        yield Finding(ALL, "keys.alg_member", "pass", "every key has an alg member")


def run_checks(
    obs: Observation, parties: Sequence[Party], *, ca_ttl: float = DEFAULT_CA_TTL
) -> list[Finding]:
    """Every finding for ``obs``: the common ones first, then each party's, then the token's.

    ``ca_ttl`` is the SPIRE server's (seconds): it sets the window of ``cache.propagation``.
    A discovery document URL given as the issuer, or an issuer that does not answer at all, gives
    one failure and nothing else: every other check would only repeat its consequences.
    """
    trap = discovery_url_trap(obs)
    if trap is not None:
        return [trap]
    findings = list(_common(obs))
    if unreachable(obs):
        return findings
    propagation = propagation_finding(obs, ca_ttl)
    if propagation is not None:
        findings.append(propagation)
    for p in parties:
        findings += party_findings(p, obs)
        findings += cacheable_findings(obs, [p])
    findings += token_findings(obs, parties)
    return findings

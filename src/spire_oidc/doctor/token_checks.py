"""Pure checks of a JWT-SVID given with ``-token`` against the observed documents and keys."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from spire_oidc.doctor import jws
from spire_oidc.doctor.findings import ALL, Finding, kid_of
from spire_oidc.doctor.observe import Observation
from spire_oidc.doctor.parties import Party


def token_findings(obs: Observation, parties: Sequence[Party]) -> Iterator[Finding]:
    if obs.token_text is None:
        return
    try:
        token = jws.decode(obs.token_text)
    except jws.TokenError as exc:
        yield Finding(ALL, "token.decode", "fail", f"not a JWT: {exc}", "pass the JWT-SVID itself")
        return
    header, claims = token.header, token.claims
    alg = header.get("alg") if isinstance(header.get("alg"), str) else "?"
    kid = header.get("kid")
    keys = obs.keys or []
    if not isinstance(kid, str) or not kid:
        yield Finding(
            ALL,
            "token.kid",
            "warn",
            "the token has no kid; Infisical then tries at most 10 keys, others fail",
            "mint it with SPIRE (it always sets kid)",
        )
        candidates = keys
    else:
        candidates = [k for k in keys if kid_of(k) == kid]
        if candidates:
            yield Finding(ALL, "token.kid", "pass", f"kid {kid!r} is in the JWKS")
        else:
            yield Finding(
                ALL,
                "token.kid",
                "fail",
                f"kid {kid!r} is not in the JWKS ({', '.join(kid_of(k) for k in keys) or 'empty'})",
                "the provider serves another trust domain's bundle, or a stale one: check the "
                "source (trust_domain, server_api address, bundle path)",
            )
    errors = [jws.verify(token, k) for k in candidates]
    if candidates and "" in errors:
        yield Finding(ALL, "token.signature", "pass", f"the {alg} signature verifies")
    elif candidates:
        yield Finding(ALL, "token.signature", "fail", errors[0], "")
    yield from _token_claims(obs, claims)
    for p in parties:
        if alg not in p.accepted_algs:
            yield Finding(
                p.name,
                "token.alg",
                p.alg_unsupported,
                f"the token is signed with {alg}",
                p.alg_fix,
            )
        sub = claims.get("sub")
        if p.max_subject_bytes is not None and isinstance(sub, str):
            size = len(sub.encode())
            if size > p.max_subject_bytes:
                yield Finding(
                    p.name,
                    "token.sub",
                    "warn",
                    f"sub is {size} bytes; google.subject holds at most {p.max_subject_bytes}",
                    "map google.subject from a shorter expression (attribute mapping)",
                )
        aud = claims.get("aud")
        if p.single_audience and isinstance(aud, list) and len(aud) != 1:
            yield Finding(
                p.name,
                "token.aud",
                "warn",
                f"the token has {len(aud)} audiences; this party expects exactly one",
                "request the JWT-SVID for one audience (api://AzureADTokenExchange)",
            )


def _token_claims(obs: Observation, claims: dict[str, object]) -> Iterator[Finding]:
    served = obs.doc.get("issuer") if obs.doc else None
    iss = claims.get("iss")
    if iss == served and served is not None:
        yield Finding(ALL, "token.iss", "pass", f"iss equals the document's issuer {iss!r}")
    else:
        yield Finding(
            ALL,
            "token.iss",
            "fail",
            f"iss {iss!r} is not the document's issuer {served!r}",
            "set the same jwt_issuer in the SPIRE server and the provider",
        )
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if obs.audience:
        if obs.audience in auds:
            yield Finding(ALL, "token.aud", "pass", f"aud contains {obs.audience!r}")
        else:
            yield Finding(
                ALL,
                "token.aud",
                "fail",
                f"aud {aud!r} does not contain {obs.audience!r}",
                "request the JWT-SVID for the relying party's audience",
            )
    else:
        yield Finding(
            ALL,
            "token.aud",
            "warn",
            f"audience check skipped: no -audience given (the token's aud is {aud!r}); every "
            "relying party rejects a token whose aud is not its own",
            "run doctor again with -audience AUD, the audience the relying party expects",
        )
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        yield Finding(ALL, "token.exp", "fail", "the token has no exp", "mint it with SPIRE")
    elif exp <= obs.now:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))
        yield Finding(ALL, "token.exp", "fail", f"expired at {when}", "use a fresh JWT-SVID")
    else:
        yield Finding(ALL, "token.exp", "pass", f"valid for {int(exp - obs.now)} s more")
    if isinstance(claims.get("iat"), int | float):
        yield Finding(ALL, "token.iat", "pass", "iat is present")
    else:
        yield Finding(
            ALL,
            "token.iat",
            "warn",
            "the token has no iat (openid-client and OpenAI require it)",
            "mint it with SPIRE",
        )
    sub = claims.get("sub")
    if isinstance(sub, str) and sub.startswith("spiffe://"):
        yield Finding(ALL, "token.sub", "pass", f"sub is the SPIFFE ID {sub}")
    else:
        yield Finding(ALL, "token.sub", "warn", f"sub {sub!r} is not a SPIFFE ID", "")

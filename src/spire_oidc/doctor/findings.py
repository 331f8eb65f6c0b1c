"""What a check reports, and the small helpers every check module shares."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from spire_oidc.doctor.parties import SEVERITY, Status

ALL = "all"  # the party name of findings that hold for every relying party
_EC_ALGS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}


@dataclass(frozen=True)
class Finding:
    party: str
    check: str
    status: Status
    reason: str
    fix: str = ""


def worst(findings: Iterable[Finding]) -> Status:
    result: Status = "pass"
    for f in findings:
        if SEVERITY[f.status] > SEVERITY[result]:
            result = f.status
    return result


def key_alg(jwk: dict[str, object]) -> str:
    """The key's ``alg`` member, else what jwks-rsa/jose infer from kty and crv."""
    alg = jwk.get("alg")
    if isinstance(alg, str) and alg:
        return alg
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "RSA":
        return "RS256"
    if kty == "EC" and isinstance(crv, str):
        return _EC_ALGS.get(crv, "?")
    if kty == "OKP":
        return "EdDSA"
    return "?"


def kid_of(jwk: dict[str, object]) -> str:
    kid = jwk.get("kid")
    return kid if isinstance(kid, str) else ""


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"

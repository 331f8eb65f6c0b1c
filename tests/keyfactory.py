"""Test helpers: generate keys and SPIFFE bundles (shared by unit and integration tests)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from spire_oidc.keys import JWTKey, jwk_members

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

_RSA_CACHE: dict[int, rsa.RSAPrivateKey] = {}


def rsa_key(bits: int = 2048, *, fresh: bool = False) -> rsa.RSAPrivateKey:
    """An RSA key (cached per size unless ``fresh``: generation is slow)."""
    if fresh or bits not in _RSA_CACHE:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        if fresh:
            return key
        _RSA_CACHE[bits] = key
    return _RSA_CACHE[bits]


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


def public_jwk(kid: str, key: PrivateKey, *, use: str | None = "jwt-svid") -> dict[str, str]:
    """The public JWK of ``key`` as a SPIFFE bundle entry (``use`` first, no ``alg``)."""
    members = jwk_members(JWTKey(kid=kid, public_key=key.public_key()), set_key_use=False)
    members.pop("alg", None)
    out: dict[str, str] = {}
    if use is not None:
        out["use"] = use
    out.update(members)
    return out


def bundle_bytes(entries: Iterable[dict[str, object]], **extra: object) -> bytes:
    return json.dumps({**extra, "keys": list(entries)}, indent=2).encode()

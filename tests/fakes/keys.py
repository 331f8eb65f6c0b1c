"""Test keys and their encodings: JWK members (as the SPIRE agent sends them) and PKIX DER."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

_EC = {"secp256r1": ("P-256", 32), "secp384r1": ("P-384", 48), "secp521r1": ("P-521", 66)}


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkix(key: PrivateKey) -> bytes:
    """The SubjectPublicKeyInfo DER of the public half (what the SPIRE Server API sends)."""
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def jwk(kid: str | None, key: PrivateKey, *, use: str | None = None) -> dict[str, Any]:
    """The public JWK of ``key`` (no ``use`` unless given, as the agent's JWT bundles)."""
    out: dict[str, Any] = {}
    if use is not None:
        out["use"] = use
    pub = key.public_key()
    if isinstance(pub, ec.EllipticCurvePublicKey):
        crv, size = _EC[pub.curve.name]
        nums = pub.public_numbers()
        out |= {"kty": "EC", "crv": crv, "x": _b64(nums.x.to_bytes(size, "big"))}
        out["y"] = _b64(nums.y.to_bytes(size, "big"))
    elif isinstance(pub, rsa.RSAPublicKey):
        rn = pub.public_numbers()
        out |= {"kty": "RSA", "n": _b64(rn.n.to_bytes((rn.n.bit_length() + 7) // 8, "big"))}
        out["e"] = _b64(rn.e.to_bytes((rn.e.bit_length() + 7) // 8, "big"))
    else:
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        out |= {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw)}
    if kid is not None:
        out["kid"] = kid
    return out


def jwks(*entries: Mapping[str, Any], **extra: Any) -> bytes:
    """A JWKS / SPIFFE bundle document's bytes with ``entries`` as its ``keys``."""
    return json.dumps({"keys": [dict(e) for e in entries], **extra}).encode()


def der_of(public_key: Any) -> bytes:
    """The PKIX DER of a public key object (to compare with ``JWTKey.der``)."""
    der: bytes = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der

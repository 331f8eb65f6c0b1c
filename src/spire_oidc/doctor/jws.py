"""Pure JWT-SVID decoding and signature verification (RFC 7515 compact form, RFC 7518 algs).

Only what ``doctor`` needs: split and decode a token, and check its signature with one JWK.
Nothing is trusted before the signature verifies; claims are read for reporting only.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from spire_oidc.core.keys import key_from_jwk
from spire_oidc.errors import KeyParseError, ProviderError

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_EC_SIZES = {"ES256": 32, "ES384": 48, "ES512": 66}
_EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}


class TokenError(ProviderError, ValueError):
    """The token is not a well-formed compact JWS with JSON header and claims."""


@dataclass(frozen=True)
class Token:
    header: dict[str, object]
    claims: dict[str, object]
    signing_input: bytes
    signature: bytes


def _b64(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenError("a part is not base64url") from exc


def _json_object(raw: bytes, what: str) -> dict[str, object]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TokenError(f"the {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise TokenError(f"the {what} is not a JSON object")
    return value


def decode(text: str) -> Token:
    parts = text.strip().split(".")
    if len(parts) != 3:
        raise TokenError(f"a compact JWS has 3 parts, this has {len(parts)}")
    header = _json_object(_b64(parts[0]), "header")
    claims = _json_object(_b64(parts[1]), "claims set")
    return Token(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), _b64(parts[2]))


def verify(token: Token, jwk: Mapping[str, object]) -> str:
    """Empty if the signature verifies with ``jwk`` under the header's alg, else the reason."""
    alg = token.header.get("alg")
    if not isinstance(alg, str):
        return "the header has no alg"
    try:
        key = key_from_jwk(jwk).public_key
    except KeyParseError as exc:
        return f"the JWK cannot be used: {exc}"
    data, sig = token.signing_input, token.signature
    try:
        if alg[:2] in ("RS", "PS") and alg[2:] in _HASHES:
            if not isinstance(key, rsa.RSAPublicKey):
                return f"{alg} needs an RSA key"
            digest = _HASHES[alg[2:]]()
            pad: padding.AsymmetricPadding = (
                padding.PKCS1v15()
                if alg.startswith("RS")
                else padding.PSS(padding.MGF1(digest), digest.digest_size)
            )
            key.verify(sig, data, pad, digest)
        elif alg in _EC_SIZES:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                return f"{alg} needs an EC key"
            if key.curve.name != _EC_CURVES[alg]:
                return f"{alg} needs curve {_EC_CURVES[alg]}, the key is {key.curve.name}"
            size = _EC_SIZES[alg]
            if len(sig) != 2 * size:
                return f"an {alg} signature is {2 * size} bytes, this one {len(sig)}"
            r = int.from_bytes(sig[:size], "big")
            s = int.from_bytes(sig[size:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(_HASHES[alg[2:]]()))
        elif alg == "EdDSA":
            if not isinstance(key, ed25519.Ed25519PublicKey):
                return "EdDSA needs an Ed25519 key"
            key.verify(sig, data)
        else:
            return f"unsupported alg {alg!r}"
    except InvalidSignature:
        return "the signature does not verify"
    return ""

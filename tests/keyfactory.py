"""Test helpers for SPIFFE bundles, on top of the key encodings in :mod:`tests.fakes.keys`
(written independently of the product's JWK code, so they act as an oracle for it)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes import keys as _keys
from tests.fakes.keys import PrivateKey, ec_key

__all__ = ["PrivateKey", "bundle_bytes", "ec_key", "public_jwk", "rsa_key"]

_RSA_CACHE: dict[int, rsa.RSAPrivateKey] = {}


def rsa_key(bits: int = 2048, *, fresh: bool = False) -> rsa.RSAPrivateKey:
    """An RSA key, cached per size unless ``fresh`` (generation is slow)."""
    if fresh:
        return _keys.rsa_key(bits)
    if bits not in _RSA_CACHE:
        _RSA_CACHE[bits] = _keys.rsa_key(bits)
    return _RSA_CACHE[bits]


def public_jwk(kid: str, key: PrivateKey, *, use: str | None = "jwt-svid") -> dict[str, str]:
    """The public JWK of ``key`` as a SPIFFE bundle entry (``use: jwt-svid`` unless told)."""
    return {str(k): str(v) for k, v in _keys.jwk(kid, key, use=use).items()}


def bundle_bytes(entries: Iterable[dict[str, object]], **extra: object) -> bytes:
    return json.dumps({**extra, "keys": list(entries)}, indent=2).encode()

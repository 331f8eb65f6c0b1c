"""Pure key logic: upstream key material -> validated public keys -> JWK members.

Nothing here does I/O. Every parser raises :class:`KeyParseError` naming the kid, so a source can
skip the one bad key, log it and keep the rest (never serve it, never crash).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from spire_oidc.errors import KeyParseError, SourceError

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_CURVES: dict[str, tuple[ec.EllipticCurve, int]] = {
    "P-256": (ec.SECP256R1(), 32),
    "P-384": (ec.SECP384R1(), 48),
    "P-521": (ec.SECP521R1(), 66),
}
_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_EC_ALGS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}

# RFC 7517 §4.2 / SPIFFE bundle format: the `use` values that mean "signs JWT-SVIDs".
JWT_SVID_USES = frozenset({"jwt-svid", "sig"})
_B64URL = re.compile(r"[A-Za-z0-9_-]+")

# RSA sanity (issue 12 §9). Above 8192 bits no real signer exists and verification gets costly;
# below 2048 bits the key is still served, without ``alg``, as SPIRE does (see ``algorithm``).
# The exponent bound is Go's crypto/rsa verifier's (it refuses E > 2^31-1), so every RSA key we
# publish is usable by a Go relying party.
MAX_RSA_BITS = 8192
MAX_RSA_EXPONENT = 2**31 - 1


@dataclass(frozen=True)
class JWTKey:
    """One JWT signing key: its kid and the public key (never private material)."""

    kid: str
    public_key: PublicKey = field(compare=False, repr=False)
    der: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        if not self.der:
            der = self.public_key.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            object.__setattr__(self, "der", der)


@dataclass(frozen=True)
class KeySet:
    """An immutable snapshot of the keys a source delivered, in the source's order."""

    keys: tuple[JWTKey, ...] = ()

    def same_content(self, other: KeySet) -> bool:
        """Same kids with the same public keys, order ignored (change detection)."""
        return sorted((k.kid, k.der) for k in self.keys) == sorted(
            (k.kid, k.der) for k in other.keys
        )

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(k.kid for k in self.keys)


def _b64url_decode(kid: str, member: str, value: object) -> bytes:
    if not isinstance(value, str) or not value:
        raise KeyParseError(kid, f"member {member!r} must be a non-empty base64url string")
    if "=" in value:
        raise KeyParseError(kid, f"member {member!r} is not unpadded base64url")
    if _B64URL.fullmatch(value) is None or len(value) % 4 == 1:
        raise KeyParseError(kid, f"member {member!r} is not valid base64url")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise KeyParseError(kid, f"member {member!r} is not valid base64url") from exc


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def check_rsa(kid: str, n: int, e: int) -> None:
    """Refuse an RSA public key that no honest signer produces: an even modulus, a modulus above
    :data:`MAX_RSA_BITS`, or an exponent that is even or outside 3 .. :data:`MAX_RSA_EXPONENT`."""
    if n.bit_length() > MAX_RSA_BITS:
        raise KeyParseError(
            kid, f"RSA modulus of {n.bit_length()} bits is larger than {MAX_RSA_BITS} bits"
        )
    if n % 2 == 0:
        raise KeyParseError(kid, "RSA modulus is even")
    if e % 2 == 0 or not 3 <= e <= MAX_RSA_EXPONENT:
        shown = str(e) if e.bit_length() <= 64 else f"a {e.bit_length()}-bit number"
        raise KeyParseError(
            kid, f"RSA public exponent {shown} is not an odd number in 3..{MAX_RSA_EXPONENT}"
        )


def key_from_jwk(obj: Mapping[str, object]) -> JWTKey:
    """Parse one public JWK (RSA, EC P-256/384/521, OKP Ed25519) into a :class:`JWTKey`.

    Private members, if any, are ignored: only the public part is ever kept.
    """
    kid_value = obj.get("kid")
    if not isinstance(kid_value, str) or not kid_value:
        raise KeyParseError("", "key has no kid")
    kid = kid_value
    kty = obj.get("kty")
    try:
        if kty == "RSA":
            n = int.from_bytes(_b64url_decode(kid, "n", obj.get("n")), "big")
            e = int.from_bytes(_b64url_decode(kid, "e", obj.get("e")), "big")
            check_rsa(kid, n, e)
            pub: PublicKey = rsa.RSAPublicNumbers(e, n).public_key()
        elif kty == "EC":
            crv = obj.get("crv")
            if not isinstance(crv, str) or crv not in _CURVES:
                raise KeyParseError(kid, f"unsupported EC curve {crv!r}")
            curve, size = _CURVES[crv]
            x = _b64url_decode(kid, "x", obj.get("x"))
            y = _b64url_decode(kid, "y", obj.get("y"))
            if len(x) != size or len(y) != size:
                raise KeyParseError(kid, f"EC coordinates must be {size} bytes for {crv}")
            pub = ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve
            ).public_key()
        elif kty == "OKP":
            crv = obj.get("crv")
            if crv != "Ed25519":
                raise KeyParseError(kid, f"unsupported OKP curve {crv!r}")
            x = _b64url_decode(kid, "x", obj.get("x"))
            pub = ed25519.Ed25519PublicKey.from_public_bytes(x)
        elif kty == "oct":
            raise KeyParseError(kid, "symmetric keys are never published")
        else:
            raise KeyParseError(kid, f"unsupported key type {kty!r}")
    except KeyParseError:
        raise
    except (ValueError, UnsupportedAlgorithm, OverflowError) as exc:
        raise KeyParseError(kid, f"invalid {kty} public key: {exc}") from exc
    return JWTKey(kid=kid, public_key=pub)


def key_from_pkix(kid: str, der: bytes) -> JWTKey:
    """Parse a PKIX (SubjectPublicKeyInfo DER) public key, as the SPIRE Server API sends it."""
    if not kid:
        raise KeyParseError("", "key has no kid")
    try:
        pub = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyParseError(kid, f"malformed public key: {exc}") from exc
    if isinstance(pub, ec.EllipticCurvePublicKey):
        if pub.curve.name not in _CURVE_NAMES:
            raise KeyParseError(kid, f"unsupported EC curve {pub.curve.name}")
    elif isinstance(pub, rsa.RSAPublicKey):
        nums = pub.public_numbers()
        check_rsa(kid, nums.n, nums.e)
    elif not isinstance(pub, ed25519.Ed25519PublicKey):
        raise KeyParseError(kid, f"unsupported public key type {type(pub).__name__}")
    return JWTKey(kid=kid, public_key=pub)


def parse_jwks(
    keys: Iterable[object],
    *,
    uses: frozenset[str] | None = JWT_SVID_USES,
    accept_missing_use: bool = False,
    max_keys: int | None = None,
) -> tuple[list[JWTKey], list[KeyParseError]]:
    """Parse the ``keys`` array of a JWKS or SPIFFE bundle, keeping the document's order.

    Only entries whose ``use`` is in ``uses`` are considered (every entry when ``uses`` is None);
    an entry without ``use`` counts only with ``accept_missing_use`` (a Workload API JWKS may omit
    it; a SPIFFE bundle file must say ``jwt-svid``). Entries with another use (``x509-svid``,
    ``wit-svid``, ...) are ignored silently; malformed ones are returned as errors and skipped.
    A kid seen twice keeps its first key; the duplicate is an error.

    With ``max_keys``, more entries than that to consider raise :class:`SourceError` before any
    key is parsed (the bundle is refused as a whole; see :mod:`spire_oidc.core.limits`).
    """
    candidates: list[object] = []
    for entry in keys:
        if isinstance(entry, Mapping) and uses is not None:
            use = entry.get("use")
            if use is None:
                if not accept_missing_use:
                    continue
            elif use not in uses:
                continue
        candidates.append(entry)
    if max_keys is not None and len(candidates) > max_keys:
        raise SourceError(
            f"bundle has {len(candidates)} JWT signing keys, more than the limit of {max_keys}"
        )
    good: list[JWTKey] = []
    bad: list[KeyParseError] = []
    seen: set[str] = set()
    for entry in candidates:
        if not isinstance(entry, Mapping):
            bad.append(KeyParseError("", "key entry is not a JSON object"))
            continue
        try:
            key = key_from_jwk(entry)
        except KeyParseError as err:
            bad.append(err)
            continue
        if key.kid in seen:
            bad.append(KeyParseError(key.kid, "duplicate kid; the first key with it is kept"))
            continue
        seen.add(key.kid)
        good.append(key)
    return good, bad


def algorithm(key: PublicKey) -> tuple[str | None, str | None]:
    """The JWS ``alg`` for a public key, or ``(None, reason)`` when SPIRE serves it without one.

    SPIRE (pkg/common/cryptoutil/keys.go): RSA with a modulus of at least 256 bytes -> RS256,
    P-256 -> ES256, P-384 -> ES384. Ours adds P-521 -> ES512 and Ed25519 -> EdDSA.
    """
    if isinstance(key, rsa.RSAPublicKey):
        size = (key.key_size + 7) // 8
        if size >= 256:
            return "RS256", None
        return None, f"unsupported RSA key size: {size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        name = _CURVE_NAMES.get(key.curve.name)
        if name is None:
            return None, f"unsupported EC curve {key.curve.name}"
        return _EC_ALGS[name], None
    return "EdDSA", None


def jwk_members(key: JWTKey, *, set_key_use: bool) -> dict[str, str]:
    """The JWK of a public key, members in go-jose's order: use, kty, kid, crv, alg, x, y, n, e."""
    out: dict[str, str] = {}
    if set_key_use:
        out["use"] = "sig"
    alg, _ = algorithm(key.public_key)
    pub = key.public_key
    if isinstance(pub, rsa.RSAPublicKey):
        nums = pub.public_numbers()
        out["kty"] = "RSA"
        out["kid"] = key.kid
        if alg:
            out["alg"] = alg
        out["n"] = b64url(nums.n.to_bytes((nums.n.bit_length() + 7) // 8 or 1, "big"))
        out["e"] = b64url(nums.e.to_bytes((nums.e.bit_length() + 7) // 8 or 1, "big"))
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        crv = _CURVE_NAMES[pub.curve.name]
        size = _CURVES[crv][1]
        ecn = pub.public_numbers()
        out["kty"] = "EC"
        out["kid"] = key.kid
        out["crv"] = crv
        if alg:
            out["alg"] = alg
        out["x"] = b64url(ecn.x.to_bytes(size, "big"))
        out["y"] = b64url(ecn.y.to_bytes(size, "big"))
    else:
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        out["kty"] = "OKP"
        out["kid"] = key.kid
        out["crv"] = "Ed25519"
        if alg:
            out["alg"] = alg
        out["x"] = b64url(raw)
    return out

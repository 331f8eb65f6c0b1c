"""Key parsing and JWK rendering (pure)."""

from __future__ import annotations

import contextlib
import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from hypothesis import given, settings
from hypothesis import strategies as st

from spire_oidc.core.keys import (
    JWTKey,
    KeySet,
    algorithm,
    b64url,
    jwk_members,
    key_from_jwk,
    key_from_pkix,
    parse_jwks,
)
from spire_oidc.errors import KeyParseError, SourceError
from tests.keyfactory import ec_key, public_jwk, rsa_key


@pytest.mark.parametrize(
    ("curve", "alg", "size"),
    [(ec.SECP256R1(), "ES256", 32), (ec.SECP384R1(), "ES384", 48), (ec.SECP521R1(), "ES512", 66)],
)
def test_ec_round_trip(curve: ec.EllipticCurve, alg: str, size: int) -> None:
    """EC keys of every supported curve parse back to the same key and get the right alg."""
    priv = ec_key(curve)
    jwk = public_jwk("k1", priv)
    key = key_from_jwk(jwk)
    assert key.der == JWTKey("k1", priv.public_key()).der
    members = jwk_members(key, set_key_use=False)
    assert list(members) == ["kty", "kid", "crv", "alg", "x", "y"]
    assert members["alg"] == alg
    assert len(members["x"]) == len(members["y"]) == (size * 4 + 2) // 3


def test_rsa_2048_gets_rs256_and_members_in_go_jose_order() -> None:
    """RSA >= 2048 bits is RS256; members follow go-jose's order with use first."""
    key = key_from_jwk(public_jwk("r", rsa_key(2048)))
    members = jwk_members(key, set_key_use=True)
    assert list(members) == ["use", "kty", "kid", "alg", "n", "e"]
    assert members["use"] == "sig" and members["alg"] == "RS256" and members["e"] == "AQAB"


def test_small_rsa_served_without_alg() -> None:
    """RSA under 2048 bits keeps SPIRE's behaviour: published, with no alg."""
    key = key_from_jwk(public_jwk("small", rsa_key(1024)))
    assert "alg" not in jwk_members(key, set_key_use=False)
    assert algorithm(key.public_key) == (None, "unsupported RSA key size: 128")


def test_ed25519_is_eddsa() -> None:
    """Ed25519 keys are published as OKP with alg EdDSA (our improvement)."""
    priv = ed25519.Ed25519PrivateKey.generate()
    key = key_from_jwk(public_jwk("ed", priv))
    assert jwk_members(key, set_key_use=False) == {
        "kty": "OKP",
        "kid": "ed",
        "crv": "Ed25519",
        "alg": "EdDSA",
        "x": public_jwk("ed", priv)["x"],
    }


def test_private_members_are_never_kept() -> None:
    """A JWK carrying a private exponent yields only its public part."""
    jwk = {**public_jwk("p", ec_key()), "d": "AAAA"}
    members = jwk_members(key_from_jwk(jwk), set_key_use=False)
    assert "d" not in members


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda j: j.pop("kid"), "no kid"),
        (lambda j: j.update(kid=""), "no kid"),
        (lambda j: j.update(x="!!!"), "base64url"),
        (lambda j: j.update(x=j["x"] + "=="), "unpadded"),
        (lambda j: j.update(x=j["x"][:-4]), "32 bytes"),
        (lambda j: j.update(y=j["x"]), "invalid EC"),
        (lambda j: j.update(crv="P-192"), "curve"),
        (lambda j: j.update(kty="oct", k="AAAA"), "symmetric"),
        (lambda j: j.update(kty="XYZ"), "unsupported key type"),
    ],
)
def test_malformed_jwks_are_rejected_with_kid(mutate: object, reason: str) -> None:
    """Every malformed JWK raises KeyParseError naming what is wrong."""
    jwk: dict[str, str] = public_jwk("bad", ec_key())
    mutate(jwk)  # type: ignore[operator]
    with pytest.raises(KeyParseError, match=reason):
        key_from_jwk(jwk)


def test_x25519_is_not_a_signing_key() -> None:
    """OKP keys other than Ed25519 are skipped."""
    raw = (
        x25519.X25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    from spire_oidc.core.keys import b64url

    with pytest.raises(KeyParseError, match="OKP curve"):
        key_from_jwk({"kty": "OKP", "crv": "X25519", "kid": "x", "x": b64url(raw)})


def test_parse_jwks_keeps_order_skips_bad_and_other_uses() -> None:
    """parse_jwks keeps the document order, skips x509/wit entries and reports malformed ones."""
    a, b = public_jwk("a", ec_key()), public_jwk("b", rsa_key())
    bad = {**public_jwk("c", ec_key()), "x": "AA"}
    x509 = {**public_jwk("d", ec_key()), "use": "x509-svid"}
    dup = public_jwk("a", ec_key())
    keys, errors = parse_jwks([b, x509, bad, "junk", a, dup])
    assert [k.kid for k in keys] == ["b", "a"]
    assert sorted(e.kid for e in errors) == ["", "a", "c"]


def test_keyset_same_content_ignores_order() -> None:
    """Change detection compares kids and public keys, not order."""
    k1 = key_from_jwk(public_jwk("1", ec_key()))
    k2 = key_from_jwk(public_jwk("2", ec_key()))
    assert KeySet((k1, k2)).same_content(KeySet((k2, k1)))
    assert not KeySet((k1,)).same_content(KeySet((k1, k2)))
    other = key_from_jwk(public_jwk("1", ec_key()))
    assert not KeySet((k1,)).same_content(KeySet((other,)))


def test_pkix_keys() -> None:
    """Server API keys arrive as PKIX DER; garbage is a KeyParseError with the kid."""
    priv = ec_key()
    der = priv.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key_from_pkix("k", der).der == der
    with pytest.raises(KeyParseError) as err:
        key_from_pkix("k2", b"\x30\x03garbage")
    assert err.value.kid == "k2"
    x = (
        x25519.X25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KeyParseError, match="unsupported"):
        key_from_pkix("k3", x)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["kty", "kid", "crv", "x", "y", "n", "e", "use", "k"]),
        _json | st.sampled_from(["EC", "RSA", "OKP", "P-256", "Ed25519", "AQAB", "AAAA"]),
    )
)
def test_any_jwk_object_is_a_key_or_a_rejection(obj: dict[str, object]) -> None:
    """Any JSON object from upstream parses to a key or raises KeyParseError, never anything else."""
    try:
        key = key_from_jwk(obj)
    except KeyParseError:
        return
    assert key.kid == obj["kid"]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_pkix_bytes_are_a_key_or_a_rejection(data: bytes) -> None:
    """Any bytes as a PKIX key parse or raise KeyParseError."""
    with contextlib.suppress(KeyParseError):
        key_from_pkix("k", data)


# -- hostile RSA keys (issue 12 §9) -------------------------------------------------------------
def _rsa_jwk(kid: str, n: int, e: int) -> dict[str, object]:
    def enc(v: int) -> str:
        return b64url(v.to_bytes((v.bit_length() + 7) // 8, "big"))

    return {"kty": "RSA", "kid": kid, "use": "jwt-svid", "n": enc(n), "e": enc(e)}


def _pkix(n: int, e: int) -> bytes:
    return (
        rsa.RSAPublicNumbers(e, n)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


_N = rsa_key(2048).public_key().public_numbers().n
HOSTILE_RSA = {
    "even-modulus": (_N + 1, 65537, "modulus is even"),
    "65536-bit-modulus": ((_N << (65536 - 2048)) | 1, 65537, "65536 bits is larger than 8192"),
    "8193-bit-modulus": ((_N << (8193 - 2048)) | 1, 65537, "8193 bits"),
    "huge-exponent": (_N, 2**64 + 1, "exponent a 65-bit number is not an odd number"),
    "exponent-above-go": (_N, 2**31 + 1, "exponent 2147483649"),
    "exponent-1": (_N, 1, "exponent 1 "),
    "even-exponent": (_N, 65536, "exponent 65536 "),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_RSA))
def test_hostile_rsa_jwk_is_skipped_with_its_kid(case: str) -> None:
    """An RSA JWK with an even or oversized modulus or an absurd exponent is refused by kid."""
    n, e, reason = HOSTILE_RSA[case]
    good = public_jwk("good", ec_key())
    keys, bad = parse_jwks([_rsa_jwk(case, n, e), good])
    assert [k.kid for k in keys] == ["good"]
    assert [err.kid for err in bad] == [case] and reason in bad[0].reason


# cryptography cannot even encode an exponent of 1 or an even one as a public key.
@pytest.mark.parametrize(
    "case", sorted(k for k in HOSTILE_RSA if k not in ("exponent-1", "even-exponent"))
)
def test_hostile_rsa_pkix_is_refused_with_its_kid(case: str) -> None:
    """The same RSA sanity rules apply to Server API (PKIX DER) keys."""
    n, e, reason = HOSTILE_RSA[case]
    with pytest.raises(KeyParseError, match=re.escape(reason)) as err:
        key_from_pkix(case, _pkix(n, e))
    assert err.value.kid == case


def test_rsa_bounds_that_stay_accepted() -> None:
    """8192-bit moduli and exponents 3 and 2^31-1 are accepted (RS256); < 2048 bits still
    served without alg, as SPIRE does."""
    big = (_N << (8192 - 2048)) | 1
    for n, e in ((big, 65537), (_N, 3), (_N, 2**31 - 1)):
        key = key_from_jwk(_rsa_jwk("k", n, e))
        assert jwk_members(key, set_key_use=False)["alg"] == "RS256"
        assert key_from_pkix("k", _pkix(n, e)).der == key.der
    small = rsa_key(1024).public_key().public_numbers()
    assert "alg" not in jwk_members(
        key_from_jwk(_rsa_jwk("s", small.n, small.e)), set_key_use=False
    )


def test_key_count_over_the_limit_refuses_the_bundle() -> None:
    """More JWT keys than max_keys refuse the whole bundle before any key is parsed; entries of
    other uses do not count."""
    entries = [public_jwk(f"k{i}", ec_key()) for i in range(3)]
    other = [public_jwk("x", ec_key(), use="x509-svid")] * 5
    assert len(parse_jwks(entries + other, max_keys=3)[0]) == 3
    with pytest.raises(SourceError, match="4 JWT signing keys, more than the limit of 3"):
        parse_jwks([*entries, {"kid": "garbage", "use": "sig"}], max_keys=3)

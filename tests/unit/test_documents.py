"""Golden bytes of the two documents (spire-behavior.md §3.3, §3.5)."""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives.asymmetric import ec

from spire_oidc.core.documents import go_json, render_discovery, render_jwks
from spire_oidc.core.keys import JWTKey, KeySet
from tests.paths import spec_configs

# spire-behavior.md §3.3: the discovery document for Host `localhost`, default config (296 bytes).
SPIRE_DISCOVERY_LOCALHOST = b"""{
  "issuer": "https://localhost",
  "jwks_uri": "https://localhost/keys",
  "authorization_endpoint": "",
  "response_types_supported": [
    "id_token"
  ],
  "subject_types_supported": [
    "public"
  ],
  "id_token_signing_alg_values_supported": [
    "RS256",
    "ES256",
    "ES384"
  ]
}"""

# spire-behavior.md §3.5: /keys with set_key_use for one P-256 key.
SPIRE_JWKS_P256_USE = b"""{
  "keys": [
    {
      "use": "sig",
      "kty": "EC",
      "kid": "kid-p256",
      "crv": "P-256",
      "alg": "ES256",
      "x": "Tby-z7fdXPK4GalDjX6zAKpWUDgeb1wVIXtnU0gTApI",
      "y": "BgfRbmZ08wcKdIHueehAbJcMB5Zi2zSjzuj9DvpPOXs"
    }
  ]
}"""


def _b64(s: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")


def spire_example_key() -> JWTKey:
    pub = ec.EllipticCurvePublicNumbers(
        _b64("Tby-z7fdXPK4GalDjX6zAKpWUDgeb1wVIXtnU0gTApI"),
        _b64("BgfRbmZ08wcKdIHueehAbJcMB5Zi2zSjzuj9DvpPOXs"),
        ec.SECP256R1(),
    ).public_key()
    return JWTKey("kid-p256", pub)


def test_discovery_document_is_byte_identical_to_spire() -> None:
    """The discovery document matches SPIRE's bytes: field order, indent, no trailing newline."""
    body = render_discovery("https://localhost", "https://localhost/keys")
    assert body == SPIRE_DISCOVERY_LOCALHOST
    assert len(body) == 296


def test_discovery_matches_spire_integration_expectation() -> None:
    """SPIRE's integration suite's expected document (compared as JSON, as its jq does)."""
    expected = json.loads(
        (spec_configs() / "spire-integration-expected-oidc-config.json").read_text()
    )
    body = render_discovery("https://localhost", "https://localhost/keys")
    assert json.loads(body) == expected


def test_jwks_is_byte_identical_to_spire() -> None:
    """The JWKS matches SPIRE's bytes with set_key_use, and has no use member without it."""
    keys = KeySet((spire_example_key(),))
    assert render_jwks(keys, set_key_use=True) == SPIRE_JWKS_P256_USE
    assert render_jwks(keys, set_key_use=False) == SPIRE_JWKS_P256_USE.replace(
        b'      "use": "sig",\n', b""
    )


def test_go_escaping_of_kids() -> None:
    """Kids are escaped the Go way: <, >, & and U+2028/2029 as \\u escapes, UTF-8 kept, / kept."""
    assert go_json("a<b>&c\"d'é/\u2028\u2029") == (
        b'"a\\u003cb\\u003e\\u0026c\\"d\'\xc3\xa9/\\u2028\\u2029"'
    )


def test_empty_arrays_and_nesting_like_go() -> None:
    """MarshalIndent formatting of nested values matches Go's."""
    assert (
        go_json({"a": [], "b": {}, "c": [1]})
        == b'{\n  "a": [],\n  "b": {},\n  "c": [\n    1\n  ]\n}'
    )


def test_keys_keep_source_order() -> None:
    """Keys are rendered in the order the source delivered them."""
    k1 = spire_example_key()
    k2 = JWTKey("a-second", ec.generate_private_key(ec.SECP384R1()).public_key())
    doc = json.loads(render_jwks(KeySet((k1, k2)), set_key_use=False))
    assert [k["kid"] for k in doc["keys"]] == ["kid-p256", "a-second"]
    doc = json.loads(render_jwks(KeySet((k2, k1)), set_key_use=False))
    assert [k["kid"] for k in doc["keys"]] == ["a-second", "kid-p256"]

"""Pure rendering: key sets and URLs -> the exact response bytes relying parties receive.

Byte-identical to SPIRE's provider (spire-behavior.md §3.3, §3.5): ``json.MarshalIndent`` with a
two-space indent, no trailing newline, Go's escaping of ``<``, ``>``, ``&``, U+2028 and U+2029, and
go-jose's member order inside each JWK.
"""

from __future__ import annotations

import json

from spire_oidc.keys import KeySet, jwk_members

# The three arrays are constants in SPIRE, independent of the keys actually served.
RESPONSE_TYPES_SUPPORTED = ("id_token",)
SUBJECT_TYPES_SUPPORTED = ("public",)
ID_TOKEN_SIGNING_ALG_VALUES_SUPPORTED = ("RS256", "ES256", "ES384")

_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def go_json(value: object) -> bytes:
    """Encode like Go's ``json.MarshalIndent(v, "", "  ")`` (HTML-safe escaping, UTF-8 kept)."""
    text = json.dumps(value, indent=2, ensure_ascii=False, separators=(",", ": "))
    return text.translate(_GO_ESCAPES).encode("utf-8")


def render_jwks(keys: KeySet, *, set_key_use: bool) -> bytes:
    """The ``/keys`` body: ``{"keys": [...]}`` in the source's key order."""
    return go_json({"keys": [jwk_members(k, set_key_use=set_key_use) for k in keys.keys]})


def render_discovery(issuer: str, jwks_uri: str) -> bytes:
    """The ``/.well-known/openid-configuration`` body, fields in SPIRE's order."""
    return go_json(
        {
            "issuer": issuer,
            "jwks_uri": jwks_uri,
            "authorization_endpoint": "",
            "response_types_supported": list(RESPONSE_TYPES_SUPPORTED),
            "subject_types_supported": list(SUBJECT_TYPES_SUPPORTED),
            "id_token_signing_alg_values_supported": list(ID_TOKEN_SIGNING_ALG_VALUES_SUPPORTED),
        }
    )

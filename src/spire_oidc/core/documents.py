"""Pure rendering: key sets and URLs -> the exact response bytes relying parties receive.

Byte-identical to SPIRE's provider (spire-behavior.md §3.3, §3.5): ``json.MarshalIndent`` with a
two-space indent, no trailing newline, Go's escaping of ``<``, ``>``, ``&``, U+2028 and U+2029, and
go-jose's member order inside each JWK.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from spire_oidc.core.keys import KeySet, algorithm, jwk_members

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


# The order of derived alg values: SPIRE's three first, then what this provider adds.
_ALG_ORDER = ("RS256", "ES256", "ES384", "ES512", "EdDSA")


@dataclass(frozen=True)
class DiscoveryOptions:
    """Spec-clean variations of the discovery document (config ``discovery_document``).

    The defaults give SPIRE's bytes. ``authorization_endpoint``: ``""`` is SPIRE's empty string,
    ``None`` leaves the member out, anything else is emitted as given. ``signing_algs_from_keys``
    lists the algorithms of the keys served instead of SPIRE's constant. ``claims_supported``
    (``None``: not emitted) is appended after SPIRE's members.
    """

    authorization_endpoint: str | None = ""
    signing_algs_from_keys: bool = False
    claims_supported: tuple[str, ...] | None = None

    @property
    def depends_on_keys(self) -> bool:
        return self.signing_algs_from_keys


SPIRE_DISCOVERY = DiscoveryOptions()


def signing_alg_values(keys: KeySet | None) -> tuple[str, ...]:
    """The algorithms of ``keys`` in a fixed order; SPIRE's constant when none has one."""
    algs = {algorithm(k.public_key)[0] for k in keys.keys} if keys is not None else set()
    derived = tuple(a for a in _ALG_ORDER if a in algs)
    return derived or ID_TOKEN_SIGNING_ALG_VALUES_SUPPORTED


def render_discovery(
    issuer: str,
    jwks_uri: str,
    options: DiscoveryOptions = SPIRE_DISCOVERY,
    keys: KeySet | None = None,
) -> bytes:
    """The ``/.well-known/openid-configuration`` body, fields in SPIRE's order.

    ``keys`` (the key set served now) matters only with ``options.signing_algs_from_keys``.
    """
    doc: dict[str, object] = {"issuer": issuer, "jwks_uri": jwks_uri}
    if options.authorization_endpoint is not None:
        doc["authorization_endpoint"] = options.authorization_endpoint
    doc["response_types_supported"] = list(RESPONSE_TYPES_SUPPORTED)
    doc["subject_types_supported"] = list(SUBJECT_TYPES_SUPPORTED)
    algs = (
        signing_alg_values(keys)
        if options.signing_algs_from_keys
        else ID_TOKEN_SIGNING_ALG_VALUES_SUPPORTED
    )
    doc["id_token_signing_alg_values_supported"] = list(algs)
    if options.claims_supported is not None:
        doc["claims_supported"] = list(options.claims_supported)
    return go_json(doc)

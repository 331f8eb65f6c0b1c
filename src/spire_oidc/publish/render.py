"""What is published: the two objects' keys, bytes and headers (pure, no I/O).

The bytes are those the provider's own listener serves for the issuer's host (``jwt_issuer`` is
required with ``publish``, so the issuer and ``jwks_uri`` do not depend on the request), with one
deliberate difference: **the published JWKS lists its keys sorted by kid**, not in the source's
order, so that every replica renders byte-identical objects whatever order its upstream
delivered the keys in (the listener keeps the source's order, as SPIRE does; relying parties
select keys by kid, so the order carries no meaning). Everything else — go-jose's member order,
Go's escaping, the two-space indent, ``set_key_use``, the ``discovery_document`` variant — is the
listener's rendering (:mod:`spire_oidc.core.documents`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote, urlsplit

from spire_oidc.core.documents import DiscoveryOptions, render_discovery, render_jwks
from spire_oidc.core.keys import KeySet
from spire_oidc.errors import StartupError

DEFAULT_CACHE_CONTROL: Final = "public, max-age=300"
CONTENT_TYPE: Final = "application/json"
DISCOVERY_SUFFIX: Final = ".well-known/openid-configuration"
# Beside the documents: the record behind the no-rollback rule (publish/rule.py).
STATE_KEY: Final = ".spire-oidc/publish-state.json"


def object_path(url: str) -> str:
    """The decoded, cleaned path of ``url`` without its leading slash ("" for the root)."""
    out: list[str] = []
    for seg in unquote(urlsplit(url).path).split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    return "/".join(out)


@dataclass(frozen=True)
class Document:
    """One object to publish."""

    key: str
    body: bytes
    cache_control: str
    content_type: str = CONTENT_TYPE


@dataclass(frozen=True)
class PublishTarget:
    """Everything fixed by the configuration: URLs, rendering options, headers, object keys."""

    issuer: str  # exactly as the listener's discovery document states it
    jwks_uri: str
    discovery: DiscoveryOptions
    set_key_use: bool
    keys_cache_control: str = DEFAULT_CACHE_CONTROL
    discovery_cache_control: str = DEFAULT_CACHE_CONTROL

    @property
    def jwks_key(self) -> str:
        key = object_path(self.jwks_uri)
        if not key:
            raise StartupError(
                f"cannot publish: jwks_uri {self.jwks_uri!r} has no path to store the JWKS under"
            )
        return key

    @property
    def discovery_key(self) -> str:
        base = object_path(self.issuer)
        return f"{base}/{DISCOVERY_SUFFIX}" if base else DISCOVERY_SUFFIX

    def check(self) -> None:
        """Raise StartupError when the two documents cannot both be stored (same key)."""
        if self.jwks_key == self.discovery_key:
            raise StartupError(
                f"cannot publish: jwks_uri {self.jwks_uri!r} names the discovery document's path"
            )

    def render(self, keys: KeySet) -> tuple[Document, Document]:
        """The JWKS and the discovery document for ``keys``, in the order they are written."""
        ordered = KeySet(tuple(sorted(keys.keys, key=lambda k: (k.kid, k.der))))
        jwks = render_jwks(ordered, set_key_use=self.set_key_use)
        discovery = render_discovery(self.issuer, self.jwks_uri, self.discovery, ordered)
        return (
            Document(self.jwks_key, jwks, self.keys_cache_control),
            Document(self.discovery_key, discovery, self.discovery_cache_control),
        )

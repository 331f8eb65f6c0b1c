"""The ``publish`` and ``cache_control`` blocks (ours): publication to object storage, and the
Cache-Control of both documents (docs/configuration.md, docs/deployment.md "behind a CDN").

``publish`` needs ``jwt_issuer`` (the public URL the objects are served under). With
``publish`` present the provider may run without any listener (publish-only mode): SPIRE's
"either acme, serving_cert_file, insecure_addr or listen_socket_path must be configured" check is
relaxed for that case only (:func:`publish_only`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spire_oidc.config.model import CacheControlConfig, PublishConfig
from spire_oidc.config.storage_url import StorageURLError, parse_storage_url

if TYPE_CHECKING:
    from spire_oidc.config.checks import Checks

PUBLISH = "publish"
CACHE_CONTROL = "cache_control"
MAX_CACHE_CONTROL = 256  # a header value, not a document


def publish_only(checks: Checks) -> bool:
    """Whether the file has a ``publish`` block (so no listener is required)."""
    return checks.root.block(PUBLISH) is not None


def read_publish(checks: Checks) -> PublishConfig | None:
    """The block's config, or None when it is absent; errors name the block's key."""
    section = checks.root.block(PUBLISH)
    if section is None:
        return None
    url = section.text("url")
    if not url:
        raise checks.error(
            "url must be configured in the publish configuration section", section, "url"
        )
    try:
        parse_storage_url(url)
    except StorageURLError as exc:
        raise checks.error(
            f"invalid url in the publish configuration section: {exc}", section, "url"
        ) from None
    if not checks.root.text("jwt_issuer"):
        raise checks.error(
            "jwt_issuer must be configured with the publish section: it is the public URL the "
            "published documents are served under",
            section,
        )
    return PublishConfig(url=url)


def read_cache_control(checks: Checks) -> CacheControlConfig | None:
    """The block's config, or None when it is absent; a value must be one printable header."""
    section = checks.root.block(CACHE_CONTROL)
    if section is None:
        return None
    values: dict[str, str | None] = {}
    for name in ("keys", "discovery"):
        if not section.has(name):
            values[name] = None
            continue
        value = section.text(name).strip()
        if (
            not value
            or len(value) > MAX_CACHE_CONTROL
            or any(not (0x20 <= ord(c) < 0x7F) for c in value)
        ):
            raise checks.error(
                f"{name} in the cache_control configuration section must be a Cache-Control "
                f"header value (printable ASCII, 1-{MAX_CACHE_CONTROL} characters), "
                f'e.g. "public, max-age=300"',
                section,
                name,
            )
        values[name] = value
    return CacheControlConfig(keys=values["keys"], discovery=values["discovery"])

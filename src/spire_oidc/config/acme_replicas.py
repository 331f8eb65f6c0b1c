"""The ``acme`` keys for replicas (ours): ``storage`` and ``lock_lease`` (docs/acme.md).

Checked when the file is loaded, before any port is bound: a malformed ``storage`` URL names
what is allowed, ``storage`` together with an explicitly written ``cache_dir`` is refused naming
both keys, and ``lock_lease`` is a Go duration of at least one second.
"""

from __future__ import annotations

from typing import Protocol

from spire_oidc.config.gocompat import DurationError, parse_duration
from spire_oidc.config.hcl import Section
from spire_oidc.config.model import DEFAULT_ACME_LOCK_LEASE, MIN_ACME_LOCK_LEASE
from spire_oidc.config.storage_url import StorageURLError, parse_storage_url
from spire_oidc.errors import ConfigError


class _Errors(Protocol):
    def error(
        self, message: str, section: Section | None = None, name: str = ""
    ) -> ConfigError: ...


def replica_keys(checks: _Errors, acme: Section) -> tuple[str, float]:
    """``(storage, lock_lease)`` of the ``acme`` block, checked."""
    storage = acme.text("storage") if acme.has("storage") else ""
    if acme.has("storage"):
        if not storage:
            raise checks.error(
                "storage must not be empty in the acme configuration section (leave the key "
                "out to use cache_dir)",
                acme,
                "storage",
            )
        try:
            parse_storage_url(storage)
        except StorageURLError as exc:
            raise checks.error(
                f"invalid storage in the acme configuration section: {exc}", acme, "storage"
            ) from None
        if acme.has("cache_dir"):
            raise checks.error(
                "storage and cache_dir are mutually exclusive in the acme configuration section "
                "(the replicas keep the account key and certificates in storage)",
                acme,
                "storage",
            )
    lease = DEFAULT_ACME_LOCK_LEASE
    raw = acme.text("lock_lease") if acme.has("lock_lease") else ""
    if raw:
        try:
            lease = parse_duration(raw) / 1e9
        except DurationError as exc:
            raise checks.error(
                f"invalid lock_lease in the acme configuration section: {exc}", acme, "lock_lease"
            ) from None
        if lease < MIN_ACME_LOCK_LEASE:
            raise checks.error(
                f"lock_lease must be at least 1s in the acme configuration section (got {raw})",
                acme,
                "lock_lease",
            )
    return storage, lease

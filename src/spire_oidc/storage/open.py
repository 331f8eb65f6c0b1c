"""Open the store for a configured location: the one place that picks a backend.

``file://`` needs nothing beyond the standard library; the cloud schemes import ``obstore`` here,
lazily, so ``-version`` and ``validate`` never load it. Credentials come from each cloud's
standard environment and credential chain (:mod:`spire_oidc.storage.cloud_config`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from spire_oidc.config.storage_url import StorageLocation
from spire_oidc.storage.base import ObjectStore


def open_store(location: StorageLocation, env: Mapping[str, str] | None = None) -> ObjectStore:
    """The store for ``location``; ``env`` defaults to ``os.environ``.

    Raises :class:`~spire_oidc.storage.base.StorageError` (naming the variable to set) when the
    environment cannot work, e.g. half a key pair or an endpoint that is not http(s).
    Opening makes no request: the first ``get``/``put`` is the first contact.
    """
    if location.scheme == "file":
        from spire_oidc.storage.files import FileStore

        return FileStore(location.prefix)
    from spire_oidc.storage.cloud import CloudStore
    from spire_oidc.storage.cloud_config import cloud_settings

    return CloudStore(cloud_settings(location, os.environ if env is None else env))

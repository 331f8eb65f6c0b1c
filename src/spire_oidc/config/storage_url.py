"""Storage locations: the ``acme.storage`` and ``publish.url`` values (ours, not SPIRE's).

::

    s3://BUCKET[/PREFIX]     any S3-compatible store (AWS environment and credential chain)
    az://CONTAINER[/PREFIX]  Azure Blob (AZURE_STORAGE_* environment, or an emulator endpoint);
                             CONTAINER may be $web, Azure's static-website container
    gs://BUCKET[/PREFIX]     Google Cloud Storage (GOOGLE_APPLICATION_CREDENTIALS, or an emulator)
    file:///ABSOLUTE/PATH    a directory (on a shared volume for replicas: NFS, EFS, RWX)

Pure parsing, no I/O: a malformed value raises :class:`StorageURLError` naming what is allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from spire_oidc.errors import ConfigValueError

Scheme = Literal["s3", "az", "gs", "file"]
SCHEMES: Final[tuple[Scheme, ...]] = ("s3", "az", "gs", "file")
ALLOWED: Final = "s3://BUCKET/PREFIX, az://CONTAINER/PREFIX, gs://BUCKET/PREFIX or file:///PATH"

# Bucket and container names: the intersection-friendly superset of the three clouds' rules
# (lower-case letters, digits, '.', '-', '_'; 3..63 characters; starts and ends alphanumeric).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]")
# Azure's static-website container: the one container name with a '$' (docs/deployment.md,
# "Behind a CDN"); accepted for az:// only, exactly as Azure spells it.
AZURE_STATIC_WEBSITE: Final = "$web"


class StorageURLError(ConfigValueError):
    """A storage URL is malformed; the message says what is allowed."""


@dataclass(frozen=True)
class StorageLocation:
    """Where objects live: a bucket (or container) and a key prefix, or a directory."""

    scheme: Scheme
    bucket: str  # "" for file://
    prefix: str  # no leading or trailing '/', "" for the bucket root; the directory for file://

    def key(self, name: str) -> str:
        """``name`` under the prefix (cloud stores; the file backend joins paths itself)."""
        return f"{self.prefix}/{name}" if self.prefix and self.scheme != "file" else name

    def __str__(self) -> str:
        if self.scheme == "file":
            return f"file://{self.prefix}"
        return f"{self.scheme}://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")


def parse_storage_url(value: str) -> StorageLocation:
    """Parse one storage URL (see the module docstring)."""
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in SCHEMES:
        raise StorageURLError(f"{value!r} is not a storage URL: use {ALLOWED}")
    if any(c.isspace() or ord(c) < 0x20 for c in value) or "?" in rest or "#" in rest:
        raise StorageURLError(f"{value!r}: no spaces, control characters, '?' or '#' allowed")
    if scheme == "file":
        if not rest.startswith("/"):
            raise StorageURLError(f"{value!r}: a file URL needs an absolute path (file:///PATH)")
        path = "/" + "/".join(p for p in rest.split("/") if p)
        if any(p in (".", "..") for p in path.split("/")):
            raise StorageURLError(f"{value!r}: '.' and '..' are not allowed in the path")
        return StorageLocation("file", "", path)
    bucket, _, prefix = rest.partition("/")
    static_website = scheme == "az" and bucket == AZURE_STATIC_WEBSITE
    if not static_website and (not _BUCKET.fullmatch(bucket) or ".." in bucket):
        what = "container" if scheme == "az" else "bucket"
        raise StorageURLError(
            f"{value!r}: {what} name {bucket!r} must be 3-63 lower-case letters, digits, "
            "'.', '-' or '_', starting and ending with a letter or digit"
            + (" (or $web, the static-website container)" if scheme == "az" else "")
        )
    parts = [p for p in prefix.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise StorageURLError(f"{value!r}: '.' and '..' are not allowed in the prefix")
    return StorageLocation(scheme, bucket, "/".join(parts))

"""The object-store interface: bytes by key, with conditional writes.

Keys are relative to the configured location's prefix, ``/``-separated, never empty, never
starting with ``/`` and with no ``.`` or ``..`` segment (:func:`check_key`).

Every write names its condition (:class:`PutMode`):

* ``CREATE``: succeed only if no object has the key (S3 ``If-None-Match: *``);
* ``OVERWRITE``: unconditional;
* :class:`IfMatch`: succeed only if the stored object's ETag is still the one given (S3
  ``If-Match``): the compare-and-swap that locks and the no-rollback rule are built on.

A failed condition raises :class:`PreconditionFailed`; anything else that goes wrong raises
:class:`StorageError` with a ``reason`` from a fixed vocabulary (for metrics labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, Protocol

from spire_oidc.errors import ProviderError

# Fixed vocabulary of StorageError.reason (bounded metric label values).
REASONS: Final = (
    "unreachable",  # connection refused, DNS, timeout
    "credentials",  # missing or rejected credentials (the message names the variable)
    "denied",  # authenticated but not allowed
    "precondition",  # a conditional write lost (PreconditionFailed)
    "not_found",  # bucket or container missing
    "invalid",  # the store answered something we cannot use
    "other",
)
Reason = Literal[
    "unreachable", "credentials", "denied", "precondition", "not_found", "invalid", "other"
]


class StorageError(ProviderError):
    """A storage request failed; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, message: str, *, reason: Reason = "other") -> None:
        super().__init__(message)
        self.reason: Reason = reason


class PreconditionFailed(StorageError):
    """A conditional write lost: the object exists (CREATE) or changed (IfMatch)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="precondition")


@dataclass(frozen=True)
class StoredObject:
    """One object as read: its bytes, its ETag and the two headers we set on writes."""

    data: bytes
    etag: str
    content_type: str | None = None
    cache_control: str | None = None


@dataclass(frozen=True)
class IfMatch:
    """Write only if the stored object's ETag is still ``etag``."""

    etag: str


class _Mode:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


CREATE: Final = _Mode("CREATE")
OVERWRITE: Final = _Mode("OVERWRITE")
PutMode = _Mode | IfMatch


class ObjectStore(Protocol):
    """Bytes by key under one location; every method may raise :class:`StorageError`."""

    def describe(self) -> str:
        """The location for logs and ``/ready?verbose`` (no credentials)."""
        ...

    async def get(self, key: str) -> StoredObject | None:
        """The object, or None when there is none under ``key``."""
        ...

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        mode: PutMode = OVERWRITE,
        content_type: str | None = None,
        cache_control: str | None = None,
    ) -> str:
        """Write ``data`` under ``key`` if ``mode`` allows it; return the new ETag."""
        ...

    async def close(self) -> None:
        """Release connections (idempotent)."""
        ...


def check_key(key: str) -> str:
    """``key`` if it is a valid relative object key, else ValueError (a programming error)."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid object key {key!r}")
    return key

"""The cloud backend: S3, Azure Blob and GCS through ``obstore`` (imported here only).

* Keys live under the location's prefix (obstore's ``prefix``).
* ``CREATE`` is obstore's ``mode="create"`` (S3 ``If-None-Match: *``, Azure
  ``If-None-Match: *``, GCS ``x-goog-if-generation-match: 0``); :class:`IfMatch` is an
  ``UpdateVersion`` (S3 and Azure ``If-Match: <etag>``, GCS ``x-goog-if-generation-match:
  <generation>``): the server decides, nothing is emulated client-side. Our ETag keeps both the
  server's ETag and, where there is one, the version (GCS generation): ``<etag> v=<version>``.
* ``Content-Type`` and ``Cache-Control`` are object attributes (served back on GET).
* Every request is bounded: connect 5 s, request 15 s, at most 2 retries inside 15 s, and a 20 s
  ceiling around each call; an outage surfaces as ``StorageError(reason="unreachable")`` and the
  caller retries with its own backoff.
* Errors name the location and, for credentials, the variable to fix; messages carry no secret
  (URL query strings, where a SAS would be, are cut).
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Final

from spire_oidc.storage.base import (
    CREATE,
    OVERWRITE,
    IfMatch,
    PreconditionFailed,
    PutMode,
    Reason,
    StorageError,
    StoredObject,
    check_key,
)
from spire_oidc.storage.cloud_config import CloudSettings

if TYPE_CHECKING:
    from obstore import PutMode as ObstorePutMode
    from obstore import UpdateVersion
    from obstore.store import AzureStore, GCSStore, S3Store

CONNECT_TIMEOUT: Final = "5s"
REQUEST_TIMEOUT: Final = "15s"
MAX_RETRIES: Final = 2
RETRY_WINDOW: Final = timedelta(seconds=15)
CALL_CEILING: Final = 20.0
_VERSION_SEP: Final = " v="

_BUCKET_MISSING = re.compile(r"NoSuchBucket|ContainerNotFound|bucket does not exist", re.I)
_SIGNATURE = re.compile(
    r"SignatureDoesNotMatch|AuthenticationFailed|AuthorizationFailure|InvalidAuthenticationInfo"
    r"|InvalidToken|ExpiredToken|invalid_grant|Server failed to authenticate",
    re.I,
)
_UNKNOWN_KEY = re.compile(r"InvalidAccessKeyId|InvalidClientTokenId", re.I)
# Fetching credentials from a chain (instance metadata, STS, Entra ID, Google's token endpoint).
_FETCHING_CREDENTIALS = re.compile(
    r"credential|token request|instance metadata|metadata endpoint|imds|AssumeRoleWithWebIdentity"
    r"|/latest/api/token|/latest/meta-data|computeMetadata|/metadata/identity|oauth2",
    re.I,
)
_UNREACHABLE = re.compile(
    r"error sending request|connection refused|connect error|timed out|deadline has elapsed"
    r"|dns error|connection reset|connection closed|broken pipe|tcp connect"
    r"|non-2xx status code: 5\d\d",
    re.I,
)
_QUERY = re.compile(r"(https?://[^\s?\"']+)\?[^\s\"']*")


def compose_etag(e_tag: str | None, version: str | None) -> str:
    """Our opaque ETag from the server's ETag and version (either may be missing)."""
    tag = e_tag or ""
    return f"{tag}{_VERSION_SEP}{version}" if version else tag


def split_etag(etag: str) -> tuple[str | None, str | None]:
    tag, sep, version = etag.partition(_VERSION_SEP)
    return (tag or None), (version if sep else None)


def summary(exc: BaseException) -> str:
    """The first line of a foreign error, URL queries cut, bounded in length."""
    text = str(exc).split("\n\nDebug source:")[0]
    text = " ".join(text.split())
    text = _QUERY.sub(r"\1?…", text)
    return text[:400]


class CloudStore:
    """An :class:`~spire_oidc.storage.base.ObjectStore` over one obstore store."""

    def __init__(self, settings: CloudSettings) -> None:
        self.settings = settings
        self._store = _make_store(settings)

    def describe(self) -> str:
        return self.settings.describe()

    def _error(self, what: str, key: str, exc: BaseException) -> StorageError:
        from obstore import exceptions as ox

        s = self.settings
        text = summary(exc)
        where = f"{s.describe()}: {what} {key}"
        if isinstance(exc, ox.PreconditionError | ox.AlreadyExistsError):
            return PreconditionFailed(f"{where}: the condition failed ({text})")
        if _BUCKET_MISSING.search(text) or (isinstance(exc, ox.NotFoundError) and what == "put"):
            what_missing = "container" if s.location.scheme == "az" else "bucket"
            return StorageError(
                f"{where}: the {what_missing} {s.location.bucket!r} does not exist ({text})",
                reason="not_found",
            )
        if _UNKNOWN_KEY.search(text):
            return StorageError(
                f"{where}: the access key was refused: check AWS_ACCESS_KEY_ID ({text})",
                reason="credentials",
            )
        if _SIGNATURE.search(text) or isinstance(exc, ox.UnauthenticatedError):
            return StorageError(
                f"{where}: the credentials were refused (the request signature did not match): "
                f"check the secret in {s.secret_variable} ({text})",
                reason="credentials",
            )
        if isinstance(exc, ox.PermissionDeniedError):
            return StorageError(f"{where}: access denied ({text})", reason="denied")
        if _FETCHING_CREDENTIALS.search(text):
            if not s.explicit_credentials:
                return StorageError(
                    f"{s.describe()}: no credentials: {s.no_credentials_hint} ({text})",
                    reason="credentials",
                )
            return StorageError(
                f"{where}: getting credentials failed: check {s.secret_variable} ({text})",
                reason="credentials",
            )
        if _UNREACHABLE.search(text) or isinstance(exc, TimeoutError):
            return StorageError(f"{where}: unreachable ({text})", reason="unreachable")
        reason: Reason = "other"
        if isinstance(exc, ox.InvalidPathError | ox.NotSupportedError):
            reason = "invalid"
        return StorageError(f"{where}: {text}", reason=reason)

    async def get(self, key: str) -> StoredObject | None:
        import obstore
        from obstore import exceptions as ox

        check_key(key)
        try:
            async with asyncio.timeout(CALL_CEILING):
                result = await obstore.get_async(self._store, key)
                data = bytes(await result.bytes_async())
        except (ox.NotFoundError, FileNotFoundError) as exc:  # obstore raises the latter
            if _BUCKET_MISSING.search(summary(exc)):
                raise self._error("get", key, exc) from exc
            return None
        except (ox.BaseError, TimeoutError, OSError) as exc:
            raise self._error("get", key, exc) from exc
        meta, attributes = result.meta, result.attributes
        content_type = attributes.get("Content-Type")
        cache_control = attributes.get("Cache-Control")
        return StoredObject(
            data,
            compose_etag(meta.get("e_tag"), meta.get("version")),
            content_type if isinstance(content_type, str) else None,
            cache_control if isinstance(cache_control, str) else None,
        )

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        mode: PutMode = OVERWRITE,
        content_type: str | None = None,
        cache_control: str | None = None,
    ) -> str:
        import obstore
        from obstore import exceptions as ox

        check_key(key)
        attributes: dict[str, str] = {}
        if content_type is not None:
            attributes["Content-Type"] = content_type
        if cache_control is not None:
            attributes["Cache-Control"] = cache_control
        if mode is CREATE:
            put_mode: ObstorePutMode = "create"
        elif mode is OVERWRITE:
            put_mode = "overwrite"
        elif isinstance(mode, IfMatch):
            e_tag, version = split_etag(mode.etag)
            update: UpdateVersion = {}  # obstore refuses None values: give only what we have
            if e_tag is not None:
                update["e_tag"] = e_tag
            if version is not None:
                update["version"] = version
            put_mode = update
        else:
            raise ValueError(f"unknown put mode {mode!r}")
        try:
            async with asyncio.timeout(CALL_CEILING):
                result = await obstore.put_async(
                    self._store,
                    key,
                    data,
                    mode=put_mode,
                    attributes=attributes or None,
                )
                if result.get("e_tag") is None and result.get("version") is None:
                    meta = await obstore.head_async(self._store, key)
                    return compose_etag(meta.get("e_tag"), meta.get("version"))
        except (ox.BaseError, TimeoutError, OSError) as exc:
            raise self._error("put", key, exc) from exc
        return compose_etag(result.get("e_tag"), result.get("version"))

    async def close(self) -> None:
        return None  # obstore's clients hold pooled connections only; nothing to flush


def _make_store(settings: CloudSettings) -> S3Store | AzureStore | GCSStore:
    from obstore.store import AzureStore, GCSStore, S3Store

    client_options = {
        "allow_http": settings.allow_http,  # the http:// rule: only from the endpoint variable
        "connect_timeout": CONNECT_TIMEOUT,
        "timeout": REQUEST_TIMEOUT,
    }
    retry_config = {
        "max_retries": MAX_RETRIES,
        "retry_timeout": RETRY_WINDOW,
        "backoff": {
            "init_backoff": timedelta(milliseconds=200),
            "max_backoff": timedelta(seconds=2),
            "base": 2,
        },
    }
    loc = settings.location
    prefix = loc.prefix or None
    config = dict(settings.config)
    kwargs: dict[str, object] = {
        "prefix": prefix,
        "config": config,
        "client_options": client_options,
        "retry_config": retry_config,
    }
    try:
        if loc.scheme == "s3":
            return S3Store(loc.bucket, **kwargs)  # type: ignore[arg-type]
        if loc.scheme == "az":
            return AzureStore(loc.bucket, **kwargs)  # type: ignore[arg-type]
        return GCSStore(loc.bucket, **kwargs)  # type: ignore[arg-type]
    except Exception as exc:  # obstore's configuration errors (e.g. a malformed key file)
        raise StorageError(
            f"{settings.describe()}: cannot configure the client: {summary(exc)}",
            reason="invalid",
        ) from exc

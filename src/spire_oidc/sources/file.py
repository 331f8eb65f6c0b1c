"""The ``file`` source: a SPIFFE bundle document on disk, polled every ``poll_interval``.

Like SPIRE (spire-behavior.md §4.3): JWT authorities (``use: jwt-svid``) only, a valid bundle with
no JWT authority is a revocation of every key (``/keys`` 501), and a missing or invalid file keeps
the last good key set in service. Unlike SPIRE, one malformed key (or one without a kid) is skipped
and logged instead of rejecting the whole file, and keys keep the file's order.
"""

from __future__ import annotations

import asyncio
import hashlib
import json

import structlog

from spire_oidc.config.model import FileConfig
from spire_oidc.core.clock import Clock
from spire_oidc.core.keys import KeySet, parse_jwks
from spire_oidc.errors import SourceError
from spire_oidc.sources.base import KeySink

log = structlog.get_logger(__name__)

_JWT_SVID = frozenset({"jwt-svid"})
MAX_BUNDLE_BYTES = 16 * 1024 * 1024


def parse_bundle(data: bytes) -> KeySet:
    """Parse SPIFFE bundle bytes into the JWT authorities; malformed keys are skipped and logged.

    Raises :class:`SourceError` when the document as a whole is unusable.
    """
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(f"bundle is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise SourceError("bundle is not a JSON object")
    raw_keys = doc.get("keys")
    if raw_keys is None:
        raise SourceError("no authorities found")
    if not isinstance(raw_keys, list):
        raise SourceError('bundle member "keys" is not an array')
    keys, rejected = parse_jwks(raw_keys, uses=_JWT_SVID)
    for err in rejected:
        log.warning("bundle_key_skipped", kid=err.kid, reason=err.reason)
    if rejected and not keys:
        # Not a revocation: the file meant to publish keys and none is usable (SPIRE rejects such
        # a file too), so the last good key set stays in service.
        raise SourceError(f"none of the {len(rejected)} JWT authorities in the bundle is usable")
    return KeySet(tuple(keys))


class FileSource:
    """Polls a SPIFFE bundle file."""

    kind = "file"

    def __init__(self, config: FileConfig, *, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._last_digest: bytes | None = None
        self._last_keys: KeySet | None = None

    @property
    def poll_interval(self) -> float:
        return self._config.poll_interval

    async def run(self, sink: KeySink) -> None:
        log.debug("polling_started", source=self.kind, interval=self.poll_interval)
        while True:
            await self.poll_once(sink)
            await asyncio.sleep(self.poll_interval)

    async def poll_once(self, sink: KeySink) -> None:
        """Read and publish the bundle once; failures are reported and logged, never raised."""
        path = self._config.path
        try:
            data = await asyncio.to_thread(_read, path)
            digest = hashlib.sha256(data).digest()
            if digest == self._last_digest and self._last_keys is not None:
                keys = self._last_keys
            else:
                keys = parse_bundle(data)
                self._last_digest, self._last_keys = digest, keys
        except SourceError as exc:
            self._last_digest = None
            log.warning("bundle_file_load_failed", path=path, error=str(exc))
            sink.report_error(f"bundle file {path}: {exc}")
            return
        sink.publish(keys)


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BUNDLE_BYTES + 1)
    except OSError as exc:
        raise SourceError(f"open {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_BUNDLE_BYTES:
        raise SourceError(f"bundle file is larger than {MAX_BUNDLE_BYTES} bytes")
    return data

"""The ``file`` source: a SPIFFE bundle document on disk, polled every ``poll_interval``.

Like SPIRE (spire-behavior.md §4.3): JWT authorities (``use: jwt-svid``) only, a valid bundle with
no JWT authority is a revocation of every key (``/keys`` 501), and a missing or invalid file keeps
the last good key set in service. Unlike SPIRE, one malformed key (or one without a kid) is skipped
and logged instead of rejecting the whole file, and keys keep the file's order.

A bundle over the limits of :mod:`spire_oidc.core.limits` (bytes, JWT keys) is refused as a whole
and the last good keys stay in service. Reading, hashing and parsing run in a worker thread: a
large bundle never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json

import structlog

from spire_oidc.config.model import FileConfig
from spire_oidc.core.clock import Clock
from spire_oidc.core.keys import KeySet, parse_jwks
from spire_oidc.core.limits import LIMITS, KeyLimits
from spire_oidc.errors import SourceError
from spire_oidc.sources.base import KeySink

log = structlog.get_logger(__name__)

_JWT_SVID = frozenset({"jwt-svid"})


def parse_bundle(data: bytes, *, limits: KeyLimits = LIMITS) -> KeySet:
    """Parse SPIFFE bundle bytes into the JWT authorities; malformed keys are skipped and logged.

    Raises :class:`SourceError` when the document as a whole is unusable or over the limits.
    """
    too_big = limits.check_bundle_size(len(data))
    if too_big is not None:
        raise SourceError(too_big)
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
    keys, rejected = parse_jwks(raw_keys, uses=_JWT_SVID, max_keys=limits.max_keys)
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

    def __init__(self, config: FileConfig, *, clock: Clock, limits: KeyLimits = LIMITS) -> None:
        self._config = config
        self._clock = clock
        self._limits = limits
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
            keys = await asyncio.to_thread(self._load, path)
        except SourceError as exc:
            self._last_digest = None
            log.warning("bundle_file_load_failed", path=path, error=str(exc))
            sink.report_error(f"bundle file {path}: {exc}")
            return
        sink.publish(keys)

    def _load(self, path: str) -> KeySet:
        """Read, hash and parse (worker thread); an unchanged file is not parsed again."""
        data = _read(path, self._limits)
        digest = hashlib.sha256(data).digest()
        if digest == self._last_digest and self._last_keys is not None:
            return self._last_keys
        keys = parse_bundle(data, limits=self._limits)
        self._last_digest, self._last_keys = digest, keys
        return keys


def _read(path: str, limits: KeyLimits) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read(limits.max_bundle_bytes + 1)
    except OSError as exc:
        raise SourceError(f"open {path}: {exc.strerror or exc}") from exc
    if len(data) > limits.max_bundle_bytes:
        raise SourceError(f"bundle file is larger than the limit of {limits.max_bundle_bytes} B")
    return data

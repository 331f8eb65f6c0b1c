"""The one shared mutable cell: the rendered key set currently served, and its freshness.

Exactly one writer (the configured source, through the :class:`~spire_oidc.sources.base.KeySink`
methods) and many readers (the HTTP handlers, health, metrics). Every publication replaces one
immutable :class:`RenderedKeys` reference, so readers never see a half-updated state and never
wait. Change detection lives here: a snapshot with the same kids and public keys (order ignored)
changes nothing — no new ``Last-Modified``, no new ``ETag``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate

import structlog

from spire_oidc.core.clock import Clock
from spire_oidc.core.documents import render_jwks
from spire_oidc.core.keys import KeySet, algorithm

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RenderedKeys:
    """An immutable, fully rendered key set: what ``/keys`` answers with."""

    keys: KeySet
    body: bytes  # the JWKS bytes (b"" for an empty key set: /keys answers 501)
    etag: str  # strong ETag, a hash of the body, so replicas with the same keys agree
    mod_time: float  # when the content last changed (seconds since the epoch)
    last_modified: str  # mod_time as an HTTP-date

    @property
    def empty(self) -> bool:
        return not self.keys.keys


def _render(keys: KeySet, *, set_key_use: bool, mod_time: float) -> RenderedKeys:
    body = render_jwks(keys, set_key_use=set_key_use) if keys.keys else b""
    digest = hashlib.sha256(body).hexdigest()[:32]
    return RenderedKeys(
        keys=keys,
        body=body,
        etag=f'"{digest}"',
        mod_time=mod_time,
        last_modified=formatdate(int(mod_time), usegmt=True),
    )


class KeyStore:
    """Holds the served key set; implements the sources' ``KeySink``."""

    def __init__(self, *, set_key_use: bool, clock: Clock) -> None:
        self._set_key_use = set_key_use
        self._clock = clock
        self._current: RenderedKeys | None = None
        self._restored = False  # the current keys come from the state file, not from upstream
        self._last_success: float | None = None
        self._streaming = False
        self._last_error: str | None = None
        self._warned_alg: set[tuple[str, bytes]] = set()
        self._listeners: list[Callable[[RenderedKeys], None]] = []
        self._delivery_listeners: list[Callable[[RenderedKeys], None]] = []
        self.updates = 0  # number of content changes (metrics)
        self.errors = 0  # number of reported upstream errors (metrics)

    # -- readers -----------------------------------------------------------------------------
    @property
    def current(self) -> RenderedKeys | None:
        """The key set served now, or ``None`` before the first successful fetch."""
        return self._current

    @property
    def last_success(self) -> float | None:
        """Wall time of the last successful fetch (or of the last moment a stream was healthy)."""
        if self._streaming:
            return self._clock.now()
        return self._last_success

    @property
    def streaming(self) -> bool:
        return self._streaming

    @property
    def last_error(self) -> str | None:
        return self._last_error

    def add_listener(self, listener: Callable[[RenderedKeys], None]) -> None:
        """Call ``listener`` after every content change (metrics, persistence)."""
        self._listeners.append(listener)

    def add_delivery_listener(self, listener: Callable[[RenderedKeys], None]) -> None:
        """Call ``listener`` after every delivery from the source, changed or not, with the
        snapshot served (the publisher: restored keys count only once the source confirms)."""
        self._delivery_listeners.append(listener)

    # -- the KeySink side -----------------------------------------------------------------------
    def publish(self, keys: KeySet) -> bool:
        """Record a successful fetch; swap the rendered bytes only when the content changed."""
        now = self._clock.now()
        self._last_success = now
        self._last_error = None
        self._restored = False
        current = self._current
        if current is not None and current.keys.same_content(keys):
            self._delivered(current)
            return False
        self._warn_unsupported(keys)
        rendered = _render(keys, set_key_use=self._set_key_use, mod_time=now)
        self._current = rendered
        self.updates += 1
        log.info(
            "keys_updated",
            kids=list(keys.kids),
            key_count=len(keys.keys),
            previous_kids=list(current.keys.kids) if current else None,
        )
        if not keys.keys:
            log.warning(
                "keys_revoked", detail="the source delivered an empty key set; /keys -> 501"
            )
        for listener in self._listeners:
            listener(rendered)
        self._delivered(rendered)
        return True

    def _delivered(self, rendered: RenderedKeys) -> None:
        for listener in self._delivery_listeners:
            listener(rendered)

    def restore(self, keys: KeySet, mod_time: float) -> None:
        """Serve keys persisted by an earlier run (not fresh: no upstream success is recorded)."""
        if self._current is None:
            self._current = _render(keys, set_key_use=self._set_key_use, mod_time=mod_time)
            self._restored = True

    @property
    def restored(self) -> bool:
        """Whether the keys served now were restored from disk and not yet confirmed upstream."""
        return self._restored

    def expire_restored(self) -> bool:
        """Stop serving restored keys that upstream never confirmed (their maximum age passed)."""
        if not self._restored:
            return False
        self._current = None
        self._restored = False
        log.warning("restored_keys_expired", detail="upstream never confirmed them; /keys -> 500")
        return True

    def report_error(self, message: str) -> None:
        self._last_error = message
        self.errors += 1

    def set_streaming(self, connected: bool) -> None:
        if self._streaming and not connected:
            # The stream was healthy until now: that is the last moment we know keys were fresh.
            self._last_success = self._clock.now()
        self._streaming = connected

    def _warn_unsupported(self, keys: KeySet) -> None:
        # SPIRE logs "Failed to get public key algorithm" on every request; we warn once per key.
        for key in keys.keys:
            alg, reason = algorithm(key.public_key)
            ident = (key.kid, key.der)
            if alg is None and ident not in self._warned_alg:
                self._warned_alg.add(ident)
                log.warning("key_algorithm_unknown", kid=key.kid, error=reason)

"""The one seam between key sources and the rest of the provider.

A source is a long-running coroutine (:meth:`Source.run`) that publishes immutable
:class:`~spire_oidc.core.keys.KeySet` snapshots into a :class:`KeySink` (the store) and reports its
freshness. It never raises for an upstream failure: it reports the error, keeps going, and the
sink keeps serving the last good snapshot. Change detection is the sink's job, not the source's.

Freshness has two shapes:

* a polling source calls :meth:`KeySink.publish` after every successful fetch (unchanged content
  included); freshness is the time of the last successful fetch;
* a streaming source calls :meth:`KeySink.set_streaming` with ``True`` while its stream is
  connected with no error (fresh at every instant, even when no message arrives for hours),
  ``False`` when it breaks, and :meth:`KeySink.publish` for every message.
"""

from __future__ import annotations

from typing import Protocol

from spire_oidc.core.keys import KeySet


class KeySink(Protocol):
    """Where a source delivers its snapshots (implemented by the store)."""

    def publish(self, keys: KeySet) -> bool:
        """A successful fetch delivered ``keys`` (possibly empty: a revocation of every key).

        Returns whether the served content changed.
        """
        ...

    def report_error(self, message: str) -> None:
        """A fetch failed; the last good snapshot stays in service."""
        ...

    def set_streaming(self, connected: bool) -> None:
        """A streaming source's connection state: connected with no error counts as fresh."""
        ...


class Source(Protocol):
    """A key source. ``run`` runs until cancelled; upstream failures never escape it."""

    @property
    def kind(self) -> str:
        """``file``, ``server_api`` or ``workload_api`` (logs, health, metrics)."""
        ...

    @property
    def poll_interval(self) -> float:
        """Seconds between polls (for a stream: the maximum retry delay); sets the health window."""
        ...

    async def run(self, sink: KeySink) -> None:
        """Fetch keys forever, publishing into ``sink``; return only when cancelled."""
        ...

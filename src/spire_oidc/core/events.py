"""What the TLS and ACME components report as they work, whether or not metrics are on.

:class:`EventMetrics` is the seam: the Prometheus implementation lives in
:mod:`spire_oidc.http.metrics`; :class:`NullMetrics` is what components get when metrics are off.
Calls may come from worker threads (the ACME client runs in one).
"""

from __future__ import annotations

from typing import Protocol


class EventMetrics(Protocol):
    """What the TLS and ACME components report (thread-safe; cheap; never raises)."""

    def certificate_loaded(self, domain: str, not_after: float, *, source: str) -> None:
        """The certificate served for ``domain`` expires at ``not_after`` (epoch seconds)."""
        ...

    def certificate_removed(self, domain: str, *, source: str) -> None:
        """No certificate from ``source`` is served for ``domain`` any more."""
        ...

    def acme_order(self, domain: str) -> None:
        """An ACME order for ``domain`` was started."""
        ...

    def acme_failure(self, domain: str, reason: str) -> None:
        """An ACME order or renewal for ``domain`` failed; ``reason`` is a short stable word."""
        ...

    def acme_lock_held(self, domain: str, held: bool) -> None:
        """This replica holds (or no longer holds) the shared order lock for ``domain``."""
        ...

    def acme_storage_error(self, reason: str) -> None:
        """A call to the replicas' shared storage failed (``reason``: storage REASONS)."""
        ...


class NullMetrics:
    """:class:`EventMetrics` that records nothing (metrics disabled)."""

    def certificate_loaded(self, domain: str, not_after: float, *, source: str) -> None:
        return None

    def certificate_removed(self, domain: str, *, source: str) -> None:
        return None

    def acme_order(self, domain: str) -> None:
        return None

    def acme_failure(self, domain: str, reason: str) -> None:
        return None

    def acme_lock_held(self, domain: str, held: bool) -> None:
        return None

    def acme_storage_error(self, reason: str) -> None:
        return None

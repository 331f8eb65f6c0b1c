"""What the publisher (:mod:`spire_oidc.publish`) reports, read by health and metrics.

The publisher is the one writer; ``/ready?verbose`` and ``/metrics`` read this cell at request
time (the HTTP layer may not import ``publish``, so the status lives here, in ``core``). All
access is on the event loop thread: no locks.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Final, Literal

# Upper bounds in seconds of the publish-lag histogram (key change -> verified object).
LAG_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

# Why an attempt failed: StorageError.reason, plus "mismatch" (the read-back differed).
FAILURE_REASONS: Final = (
    "unreachable",
    "credentials",
    "denied",
    "precondition",
    "not_found",
    "invalid",
    "other",
    "mismatch",
)

Phase = Literal["waiting_for_keys", "publishing", "in_sync", "behind", "retrying"]


@dataclass
class LagHistogram:
    """Publish lag observations in :data:`LAG_BUCKETS` (the last slot is +Inf)."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(LAG_BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(LAG_BUCKETS, seconds)] += 1
        self.total += seconds

    @property
    def count(self) -> int:
        return sum(self.counts)


@dataclass
class PublishStatus:
    """The publisher's facts: where it writes, how the last attempts went, what is pending."""

    target: str  # the storage scheme ("s3", "az", "gs", "file"): no bucket, path or credential
    phase: Phase = "waiting_for_keys"
    pending: bool = False  # a key set is waiting to be verified in the store
    last_success: float | None = None  # wall time of the last verified (or already equal) state
    last_error_reason: str | None = None  # one of FAILURE_REASONS, None after a success
    writes: int = 0  # objects written (documents and the state object)
    skips: int = 0  # publications skipped because the stored bytes already matched
    behind: int = 0  # decisions to leave the store alone (its key set is newer than ours)
    failures: dict[str, int] = field(default_factory=dict)
    lag: LagHistogram = field(default_factory=LagHistogram)

    def failed(self, reason: str) -> None:
        self.failures[reason] = self.failures.get(reason, 0) + 1
        self.last_error_reason = reason
        self.phase = "retrying"

    def public(self, now: float) -> dict[str, object]:
        """The ``publish`` section of ``/ready?verbose`` (nothing secret, no bucket or path)."""
        age = None if self.last_success is None else round(max(0.0, now - self.last_success), 3)
        return {
            "target": self.target,
            "state": self.phase,
            "pending": self.pending,
            "last_success_timestamp": self.last_success,
            "last_success_age_seconds": age,
            "last_error_reason": self.last_error_reason,
            "writes": self.writes,
            "skipped": self.skips,
        }

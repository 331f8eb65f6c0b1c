"""The metric families of object storage, built at scrape time (:mod:`spire_oidc.http.metrics`
yields them when configured):

* the publication's (``publish { url }``), from the publisher's
  :class:`~spire_oidc.core.publication.PublishStatus`; labels are bounded: the failure reasons
  are :data:`~spire_oidc.core.publication.FAILURE_REASONS`, the outcomes a fixed triple;
* the ACME replicas' (``acme.storage``): the order-lock gauge and the storage error counter
  (the storage layer's fixed reason vocabulary).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from spire_oidc.core.publication import FAILURE_REASONS, LAG_BUCKETS, PublishStatus

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

METRICS_PREFIX = "spire_oidc"
PREFIX = f"{METRICS_PREFIX}_publish"


def publish_families(status: PublishStatus) -> Iterator[Metric]:
    """Every publish family (see docs/operations.md, "Publication")."""
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )

    if status.last_success is not None:
        yield GaugeMetricFamily(
            f"{PREFIX}_last_success_timestamp_seconds",
            "When the published objects were last verified to hold our key set (epoch seconds).",
            value=status.last_success,
        )
    yield GaugeMetricFamily(
        f"{PREFIX}_pending",
        "1 while a delivered key set is not yet verified in the store (failing or behind).",
        value=1 if status.pending else 0,
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_behind",
        "1 while the store holds a newer key set than our source delivered (no rollback).",
        value=1 if status.phase == "behind" else 0,
    )
    outcomes = CounterMetricFamily(
        f"{PREFIX}_objects",
        "Objects written, and publications skipped because the stored bytes already matched.",
        labels=["outcome"],
    )
    outcomes.add_metric(["written"], status.writes)
    outcomes.add_metric(["skipped"], status.skips)
    outcomes.add_metric(["behind"], status.behind)
    yield outcomes
    failures = CounterMetricFamily(
        f"{PREFIX}_failures",
        "Failed publication attempts, by reason (storage error reasons, or mismatch).",
        labels=["reason"],
    )
    for reason in FAILURE_REASONS:
        failures.add_metric([reason], status.failures.get(reason, 0))
    yield failures
    lag = HistogramMetricFamily(
        f"{PREFIX}_lag_seconds",
        "Time from a key change delivered by the source to the verified objects in the store.",
    )
    cumulative, buckets = 0, []
    for bound, count in zip((*LAG_BUCKETS, float("inf")), status.lag.counts, strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
    lag.add_metric([], buckets, status.lag.total)
    yield lag


def replica_families(
    locks: list[tuple[str, bool]], storage_errors: list[tuple[str, int]]
) -> Iterator[Metric]:
    """The ACME replicas' lock gauge and storage error counter."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    held = GaugeMetricFamily(
        f"{METRICS_PREFIX}_acme_lock_held",
        "1 while this replica holds the shared ACME order lock for a domain.",
        labels=["domain"],
    )
    for domain, is_held in locks:
        held.add_metric([domain], 1 if is_held else 0)
    yield held
    errors = CounterMetricFamily(
        f"{METRICS_PREFIX}_acme_storage_errors",
        "Failed calls to the replicas' shared ACME storage, by reason.",
        labels=["reason"],
    )
    for reason, count in storage_errors:
        errors.add_metric([reason], count)
    yield errors

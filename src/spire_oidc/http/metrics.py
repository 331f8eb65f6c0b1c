"""Prometheus metrics, served at ``/metrics`` on the health listener (``health_checks``).

SPIRE's provider has no metrics (spire-behavior.md §8). Ours are enabled by
``health_checks { metrics = true }``; only then is ``prometheus_client`` imported.

Cost on the request path: the main server's access-logger hook (aiohttp calls it after every
response) calls :meth:`ProviderMetrics.observe_request`, which does a dict lookup, two integer
increments and a bisection into the latency buckets, on plain Python numbers owned by the event
loop thread. Everything else — key counts, ages, source state, certificate expiry — is read from
the store and the other components only when ``/metrics`` is scraped.

Other components report through :class:`~spire_oidc.core.events.EventMetrics` (certificate
expiry per domain, ACME orders and failures); ``NullMetrics`` is what they get when metrics are
off. Those calls may come from worker threads (the ACME client runs in one), so they take a
lock; the request path does not.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from spire_oidc import __version__
from spire_oidc.core.clock import Clock
from spire_oidc.core.publication import PublishStatus
from spire_oidc.core.store import KeyStore
from spire_oidc.http.health import freshness_threshold
from spire_oidc.http.urls import request_route

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

PREFIX = "spire_oidc"
# Upper bounds in seconds: serving pre-rendered bytes takes well under a millisecond, so the
# low buckets carry the information; the high ones catch a stalled event loop.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
ROUTE_DISCOVERY = "discovery"
ROUTE_KEYS = "keys"
ROUTE_OTHER = "other"


@dataclass(frozen=True)
class CertificateFile:
    """A certificate file whose leaf's expiry is exported, re-read when ``generation`` moves."""

    path: str
    generation: Callable[[], int]
    source: str = "serving_cert_file"


def certificate_expiry(pem: bytes) -> tuple[list[str], float]:
    """The DNS names (SANs, else the CN) and ``notAfter`` (epoch seconds) of a PEM chain's leaf."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    leaf = x509.load_pem_x509_certificates(pem)[0]
    names: list[str] = []
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = [str(n) for n in san.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        pass
    if not names:
        names = [str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return names or [""], leaf.not_valid_after_utc.timestamp()


class _Histogram:
    """Latency buckets for one route: plain integers, cumulated only when scraped."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last slot is +Inf
        self.total = 0.0


class ProviderMetrics:
    """The enabled metrics: a private registry and a collector reading the provider's state."""

    def __init__(
        self,
        *,
        store: KeyStore,
        clock: Clock,
        source_kind: str,
        poll_interval: float,
        routes: dict[str, str],
    ) -> None:
        from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

        self._store = store
        self._clock = clock
        self._source_kind = source_kind
        self._threshold = freshness_threshold(poll_interval)
        self._routes = dict(routes)  # raw request path -> route label
        self._requests: dict[tuple[str, int], int] = {}
        self._latency = {r: _Histogram() for r in (ROUTE_DISCOVERY, ROUTE_KEYS, ROUTE_OTHER)}
        self._lock = threading.Lock()
        self._certs: dict[tuple[str, str], float] = {}  # (source, domain) -> notAfter
        self._acme_orders: dict[str, int] = {}
        self._acme_failures: dict[tuple[str, str], int] = {}
        self._acme_locks: dict[str, bool] = {}  # domain -> this replica holds the order lock
        self._acme_storage_errors: dict[str, int] = {}  # reason -> count
        self._cert_files: list[CertificateFile] = []
        self._cert_generations: dict[str, int] = {}
        self._first_served: dict[str, float] = {}  # kid -> when this process first served it
        self._health_requests: dict[tuple[str, int], int] = {}
        self._health_paths: frozenset[str] = frozenset()
        self._publication: PublishStatus | None = None
        store.add_listener(lambda rendered: self._sync_first_served(rendered.keys.kids))
        if store.current is not None:
            self._sync_first_served(store.current.keys.kids)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    # -- the request path -------------------------------------------------------------------
    def observe_request(self, raw_path: str, status: int, seconds: float) -> None:
        """Count one answered request (called by the access-logger hook, on the loop thread)."""
        route = self._routes.get(raw_path)
        if route is None:
            route = self._slow_route(raw_path)
        key = (route, status)
        requests = self._requests
        requests[key] = requests.get(key, 0) + 1
        hist = self._latency[route]
        hist.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        hist.total += seconds

    def _slow_route(self, raw_path: str) -> str:
        clean = request_route(raw_path)
        route = self._routes.get(clean, ROUTE_OTHER) if clean is not None else ROUTE_OTHER
        if len(self._routes) < 1024:  # remember what we worked out; bounded against scanners
            self._routes[raw_path] = route
        return route

    def _sync_first_served(self, kids: Iterable[str]) -> None:
        """Remember when each kid was first served; forget kids that left the set (bounded)."""
        now = self._clock.now()
        served = dict.fromkeys(kids)
        first = self._first_served
        for kid in [k for k in first if k not in served]:
            del first[kid]
        for kid in served:
            first.setdefault(kid, now)

    # -- the health listener ----------------------------------------------------------------
    def set_health_paths(self, paths: Iterable[str]) -> None:
        """The health listener's own paths; any other path is counted as ``other``."""
        self._health_paths = frozenset(paths)

    def observe_health_request(self, path: str, status: int) -> None:
        """Count one request answered by the health listener (bounded labels)."""
        label = path if path in self._health_paths else ROUTE_OTHER
        key = (label, status)
        self._health_requests[key] = self._health_requests.get(key, 0) + 1

    # -- EventMetrics -----------------------------------------------------------------------
    def certificate_loaded(self, domain: str, not_after: float, *, source: str) -> None:
        with self._lock:
            self._certs[(source, domain)] = not_after

    def certificate_removed(self, domain: str, *, source: str) -> None:
        with self._lock:
            self._certs.pop((source, domain), None)

    def acme_order(self, domain: str) -> None:
        with self._lock:
            self._acme_orders[domain] = self._acme_orders.get(domain, 0) + 1

    def acme_failure(self, domain: str, reason: str) -> None:
        with self._lock:
            key = (domain, reason)
            self._acme_failures[key] = self._acme_failures.get(key, 0) + 1

    def watch_publication(self, status: PublishStatus) -> None:
        """Export the publisher's status (``publish { url }``; http/storage_metrics.py)."""
        self._publication = status

    def acme_lock_held(self, domain: str, held: bool) -> None:
        with self._lock:
            self._acme_locks[domain] = held

    def acme_storage_error(self, reason: str) -> None:
        with self._lock:
            self._acme_storage_errors[reason] = self._acme_storage_errors.get(reason, 0) + 1

    def watch_certificate_file(self, cert: CertificateFile) -> None:
        """Export the expiry of a certificate file's leaf; re-read when its generation moves."""
        self._cert_files.append(cert)
        self._refresh_certificate_file(cert)

    def _refresh_certificate_file(self, cert: CertificateFile) -> None:
        generation = cert.generation()
        if self._cert_generations.get(cert.path) == generation:
            return
        try:
            with open(cert.path, "rb") as fh:
                names, not_after = certificate_expiry(fh.read())
        except (OSError, ValueError):
            return  # the TLS component logs unreadable files; keep the last known expiry
        self._cert_generations[cert.path] = generation
        with self._lock:
            for source, domain in [k for k in self._certs if k[0] == cert.source]:
                del self._certs[(source, domain)]
            for name in names:
                self._certs[(cert.source, name)] = not_after

    # -- exposition -------------------------------------------------------------------------
    def render(self, accept: str) -> tuple[bytes, str]:
        """The exposition (Prometheus text or OpenMetrics, per ``Accept``) and its content type."""
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        """Build every family from the current state (called by the registry at scrape time)."""
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        for cert in self._cert_files:
            self._refresh_certificate_file(cert)
        now = self._clock.now()
        store = self._store
        current = store.current

        info = GaugeMetricFamily(
            f"{PREFIX}_build_info", "The provider's version.", labels=["version"]
        )
        info.add_metric([__version__], 1)
        yield info

        yield _by_code(
            f"{PREFIX}_http_requests",
            "Requests answered on the main listener, by route and status code.",
            "route",
            self._requests,
        )

        latency = HistogramMetricFamily(
            f"{PREFIX}_http_request_duration_seconds",
            "Time from the parsed request head to the response written, by route.",
            labels=["route"],
        )
        for route, hist in self._latency.items():
            cumulative, buckets = 0, []
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), hist.counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            latency.add_metric([route], buckets, hist.total)
        yield latency

        yield _by_code(
            f"{PREFIX}_health_requests",
            "Requests answered on the health listener (ready, live, metrics), by path and code.",
            "path",
            self._health_requests,
        )

        yield GaugeMetricFamily(
            f"{PREFIX}_keys_served",
            "Keys in the JWKS served at /keys (0 before the first fetch or after a revocation).",
            value=0 if current is None else len(current.keys.keys),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_keys_loaded",
            "1 once a key set has been loaded from the source, else 0.",
            value=0 if current is None else 1,
        )
        if current is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_keys_last_change_age_seconds",
                "Seconds since the served key set's content last changed (Last-Modified).",
                value=max(0.0, now - current.mod_time),
            )
        self._sync_first_served(() if current is None else current.keys.kids)
        first_served = GaugeMetricFamily(
            f"{PREFIX}_key_first_served_timestamp_seconds",
            "When this process first served each key ID, in seconds since the epoch.",
            labels=["kid"],
        )
        for kid, when in sorted(self._first_served.items()):
            first_served.add_metric([kid], when)
        yield first_served
        yield CounterMetricFamily(
            f"{PREFIX}_keys_updates",
            "Changes of the served key set's content.",
            value=store.updates,
        )

        last = store.last_success
        kind = [self._source_kind]
        if last is not None:
            age = GaugeMetricFamily(
                f"{PREFIX}_source_last_success_age_seconds",
                "Seconds since the key source last succeeded (0 while a stream is connected).",
                labels=["source"],
            )
            age.add_metric(kind, max(0.0, now - last))
            yield age
        connected = GaugeMetricFamily(
            f"{PREFIX}_source_connected",
            "1 while the stream is open (workload_api) or the last fetch succeeded (polling).",
            labels=["source"],
        )
        ok = store.streaming or (last is not None and store.last_error is None)
        connected.add_metric(kind, 1 if ok else 0)
        yield connected
        healthy = GaugeMetricFamily(
            f"{PREFIX}_source_healthy",
            "1 when keys are loaded and the source is fresh (the ready rule), else 0.",
            labels=["source"],
        )
        fresh = current is not None and last is not None and now - last < self._threshold
        healthy.add_metric(kind, 1 if fresh else 0)
        yield healthy
        errors = CounterMetricFamily(
            f"{PREFIX}_upstream_errors",
            "Failed fetches from the key source (the last good keys stay in service).",
            labels=["source"],
        )
        errors.add_metric(kind, store.errors)
        yield errors

        with self._lock:
            certs = sorted(self._certs.items())
            orders = sorted(self._acme_orders.items())
            failures = sorted(self._acme_failures.items())
            locks = sorted(self._acme_locks.items())
            storage_errors = sorted(self._acme_storage_errors.items())
        expiry = GaugeMetricFamily(
            f"{PREFIX}_certificate_expiry_timestamp_seconds",
            "notAfter of the certificate served for a domain, in seconds since the epoch.",
            labels=["domain", "source"],
        )
        for (source, domain), not_after in certs:
            expiry.add_metric([domain, source], not_after)
        yield expiry
        acme_orders = CounterMetricFamily(
            f"{PREFIX}_acme_orders", "ACME orders started, by domain.", labels=["domain"]
        )
        for domain, count in orders:
            acme_orders.add_metric([domain], count)
        yield acme_orders
        acme_failures = CounterMetricFamily(
            f"{PREFIX}_acme_failures",
            "ACME orders or renewals that failed, by domain and reason.",
            labels=["domain", "reason"],
        )
        for (domain, reason), count in failures:
            acme_failures.add_metric([domain, reason], count)
        yield acme_failures
        if self._publication is not None:
            from spire_oidc.http.storage_metrics import publish_families

            yield from publish_families(self._publication)
        if locks or storage_errors:  # only with acme.storage (replicas)
            from spire_oidc.http.storage_metrics import replica_families

            yield from replica_families(locks, storage_errors)


def _by_code(name: str, doc: str, label: str, counts: dict[tuple[str, int], int]) -> Metric:
    """A request counter labelled by ``label`` (route or path) and status code."""
    from prometheus_client.core import CounterMetricFamily

    family = CounterMetricFamily(name, doc, labels=[label, "code"])
    for (value, status), count in sorted(counts.items()):
        family.add_metric([value, str(status)], count)
    return family

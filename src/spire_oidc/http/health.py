"""Health checks on their own plain-HTTP listener (spire-behavior.md §6, DESIGN decision 11).

* ``ready``: keys are loaded and the source was fresh within ``max(3 min, 5 × poll_interval)``
  (SPIRE's documented rule; SPIRE's code uses ``poll_interval`` itself once ``5p ≥ 3 min``), and
  the provider is not shutting down.
* ``live``: the process works, whatever SPIRE's state (SPIRE's ``live`` fails during an upstream
  outage, and a liveness restart would throw away the last good keys).

Bodies are empty, as in SPIRE; ``?verbose`` adds a JSON explanation for humans. The health
listener is unauthenticated: the explanation names no path, address, trust domain or kid, and the
source's last error is reduced to a fixed summary (:mod:`spire_oidc.http.public_errors`); the
full text is in the log (docs/threat-model.md, docs/operations.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Protocol

from aiohttp import web
from multidict import CIMultiDict

from spire_oidc.config.model import METRICS_PATH, HealthChecksConfig
from spire_oidc.core.clock import Clock
from spire_oidc.core.state import ProcessState
from spire_oidc.core.store import KeyStore
from spire_oidc.http.httputil import Response, text_response
from spire_oidc.http.public_errors import public_error

MIN_THRESHOLD = 180.0


def freshness_threshold(poll_interval: float) -> float:
    """How old the last successful fetch may be for ``ready``: ``max(3 min, 5 × poll_interval)``."""
    return max(MIN_THRESHOLD, 5 * poll_interval)


class MetricsExposition(Protocol):
    """Renders the Prometheus exposition for ``/metrics`` (:mod:`spire_oidc.http.metrics`)."""

    def render(self, accept: str) -> tuple[bytes, str]: ...

    def set_health_paths(self, paths: Iterable[str]) -> None: ...

    def observe_health_request(self, path: str, status: int) -> None: ...


class HealthHandler:
    """Answers ``ready_path`` and ``live_path``."""

    def __init__(
        self,
        config: HealthChecksConfig,
        *,
        store: KeyStore,
        poll_interval: float,
        source_kind: str,
        clock: Clock,
        state: ProcessState,
        metrics: MetricsExposition | None = None,
    ) -> None:
        self._config = config
        self._metrics = metrics
        self._store = store
        self._threshold = freshness_threshold(poll_interval)
        self._source_kind = source_kind
        self._clock = clock
        self._state = state
        if metrics is not None:
            metrics.set_health_paths((config.ready_path, config.live_path, METRICS_PATH))

    def readiness(self) -> dict[str, object]:
        """The facts behind ``ready`` (also its verbose body: nothing here names a path or kid)."""
        now = self._clock.now()
        current = self._store.current
        last = self._store.last_success
        age = None if last is None else max(0.0, now - last)
        reasons: list[str] = []
        if self._state.shutting_down:
            reasons.append("shutting down")
        if current is None:
            reasons.append("no key set has been loaded yet")
        elif self._store.restored:
            reasons.append(
                "serving keys restored from state_dir; the source has not confirmed them"
            )
        if age is None:
            reasons.append(f"the {self._source_kind} source has not succeeded yet")
        elif age >= self._threshold:
            reasons.append(
                f"the {self._source_kind} source last succeeded {age:.0f}s ago "
                f"(threshold {self._threshold:.0f}s)"
            )
        reasons.extend(f"{k}: {v}" for k, v in sorted(self._state.waiting.items()))
        extra = {name: report(now) for name, report in sorted(self._state.reports.items())}
        return {
            **extra,
            "reasons": reasons,
            "source": self._source_kind,
            "streaming": self._store.streaming,
            "last_success_age_seconds": None if age is None else round(age, 3),
            "threshold_seconds": self._threshold,
            "key_count": None if current is None else len(current.keys.keys),
            "last_error": public_error(self._store.last_error),
        }

    def is_ready(self) -> bool:
        if self._state.shutting_down or self._store.current is None or self._state.blocked():
            return False
        last = self._store.last_success
        return last is not None and self._clock.now() - last < self._threshold

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        response = self._respond(request)
        if self._metrics is not None:
            self._metrics.observe_health_request(request.path, response.status)
        return response

    def _respond(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path == self._config.ready_path:
            ok = self.is_ready()
            facts = {"ready": ok, **self.readiness()}
        elif path == self._config.live_path:
            ok = True
            facts = {"live": True, "shutting_down": self._state.shutting_down}
        elif path == METRICS_PATH and self._metrics is not None:
            if request.method not in ("GET", "HEAD"):
                return text_response(405, "method not allowed")
            body, content_type = self._metrics.render(request.headers.get("Accept", ""))
            return Response(body=body, headers=CIMultiDict({"Content-Type": content_type}))
        else:
            return text_response(404, "404 page not found")
        if request.method not in ("GET", "HEAD"):
            return text_response(405, "method not allowed")
        status = 200 if ok else 500
        if "verbose" in request.query:
            body = json.dumps(facts, indent=2).encode() + b"\n"
            return Response(
                status=status,
                body=body,
                headers=CIMultiDict({"Content-Type": "application/json"}),
            )
        return Response(status=status, body=b"")

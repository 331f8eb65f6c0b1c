"""The main listener's HTTP server (contract C1): the fast path in front of the full handler.

:func:`build_main_server` is the one way the daemon gets it; the connection cap, the request
metrics hook and request logging are applied here, never patched onto the result afterwards.
"""

from __future__ import annotations

import logging
from typing import Protocol

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from spire_oidc.http.connlimit import CappedServer, ConnectionCap
from spire_oidc.http.fastpath import FastServer
from spire_oidc.http.timeouts import Timeouts
from spire_oidc.http.web import ProviderHandler
from spire_oidc.logs import AccessLogger


class RequestObserver(Protocol):
    """Told about every answered request (``ProviderMetrics.observe_request``)."""

    def observe_request(self, raw_path: str, status: int, seconds: float) -> None: ...


def build_main_server(
    handler: ProviderHandler,
    *,
    timeouts: Timeouts,
    cap: ConnectionCap | None,
    observer: RequestObserver | None,
    log_requests: bool,
) -> web.Server:
    """The main listener's server: the fast path (fastpath.py), unless every request must be
    logged through aiohttp's access-log hook (``log_requests``), then plain ``web.Server``.
    Request metrics work on both: the fast path reports its answers to ``observer`` itself."""
    access_log_class = _access_logger_class(observer, AccessLogger if log_requests else None)
    access: dict[str, object] = {"access_log": None}
    if access_log_class is not None:
        access = {
            "access_log_class": access_log_class,
            "access_log": logging.getLogger("spire_oidc.access"),
        }
    if not log_requests:
        fast = FastServer(handler, keepalive_timeout=timeouts.idle, **access)
        fast.cap = cap
        if observer is not None:
            fast.observer = observer.observe_request
        return fast
    server = CappedServer(handler, keepalive_timeout=timeouts.idle, **access)  # type: ignore[arg-type]
    server.cap = cap
    return server


def _access_logger_class(
    observer: RequestObserver | None, delegate: type[AbstractAccessLogger] | None
) -> type[AbstractAccessLogger] | None:
    """aiohttp's access-log hook: request metrics (``observer``), then ``delegate`` (logging)."""
    if observer is None:
        return delegate
    observe = observer.observe_request

    class MetricsAccessLogger(AbstractAccessLogger):
        def __init__(self, logger: logging.Logger, log_format: str) -> None:
            super().__init__(logger, log_format)
            self.inner = delegate(logger, log_format) if delegate is not None else None

        def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
            observe(request.raw_path, response.status, time)
            if self.inner is not None:
                self.inner.log(request, response, time)

        @property
        def enabled(self) -> bool:
            return True

    return MetricsAccessLogger

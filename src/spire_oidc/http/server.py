"""The main listener's server (contract C1): the fast path in front of the full aiohttp handler,
with the connection cap, the request-metrics hook and request logging applied to both paths."""

from __future__ import annotations

import logging
from typing import Protocol

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from spire_oidc.http.adapter import DISCOVERY, KEYS, FastServer, RequestLog
from spire_oidc.http.connlimit import ConnectionCap
from spire_oidc.http.timeouts import Timeouts
from spire_oidc.http.web import ProviderHandler
from spire_oidc.logs import log_request


class RequestObserver(Protocol):
    """Counts each answered request (``ProviderMetrics`` is one)."""

    def observe_request(self, raw_path: str, status: int, seconds: float) -> None: ...


def build_main_server(
    handler: ProviderHandler,
    *,
    timeouts: Timeouts,
    cap: ConnectionCap | None,
    observer: RequestObserver | None,
    log_requests: bool,
) -> web.Server:
    """The main listener's server: answers on the fast path where it can (adapter.py), else on
    aiohttp with ``handler``; one cap, one metrics hook and one request log for both paths."""
    request_log: RequestLog | None = log_request if log_requests else None
    access: dict[str, object] = {"access_log": None}
    if observer is not None or log_requests:
        access = {
            "access_log_class": access_logger_class(observer, log_requests=log_requests),
            "access_log": logging.getLogger("spire_oidc.access"),
        }
    plan = handler.plan
    return FastServer(
        handler,
        tables=handler.tables,
        routes={plan.keys_route: KEYS, plan.discovery_route: DISCOVERY},
        plain_scheme=handler.plain_scheme,
        timeouts=timeouts,
        cap=cap,
        observe=observer.observe_request if observer is not None else None,
        request_log=request_log,
        **access,
    )


def access_logger_class(
    observer: RequestObserver | None, *, log_requests: bool
) -> type[AbstractAccessLogger]:
    """aiohttp's access-log hook for the full handler: metrics first, then the request log."""
    observe = observer.observe_request if observer is not None else None

    class ProviderAccessLogger(AbstractAccessLogger):
        def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
            if observe is not None:
                observe(request.raw_path, response.status, time)
            if log_requests:
                log_request(
                    request.method,
                    request.path_qs,
                    response.status,
                    request.remote,
                    request.headers.get("User-Agent", ""),
                    time,
                )

        @property
        def enabled(self) -> bool:
            return True

    return ProviderAccessLogger

"""The main HTTP handler: the discovery document and ``/keys`` (spire-behavior.md §3).

It only reads the store and pre-rendered bytes: it never awaits gRPC, ACME or disk, and nothing is
JSON-encoded per request. It imports nothing from gRPC, SPIFFE or ACME.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from aiohttp import web
from multidict import CIMultiDict

from spire_oidc.config.domains import DomainAllowlist
from spire_oidc.core.documents import SPIRE_DISCOVERY, DiscoveryOptions, render_discovery
from spire_oidc.core.store import KeyStore, RenderedKeys
from spire_oidc.http.hosts import check_host
from spire_oidc.http.httputil import (
    RangeError,
    Response,
    etag_matches_strong,
    etag_matches_weak,
    parse_http_date,
    parse_single_range,
    text_response,
)
from spire_oidc.http.proxies import ProxyTrust
from spire_oidc.http.responses import (
    ACAO,
    SPIRE_CACHE,
    CachePolicy,
    Headers,
    ResponseTable,
    ResponseTables,
)
from spire_oidc.http.urls import UrlPlan, request_route

log = structlog.get_logger(__name__)

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

_FORWARDED_PROTO = re.compile(r"(?i)proto=(https|http)")
# Infisical's SPIRE guide has operators enter .../.well-known/openid_configuration (underscore)
# as the discovery URL; Infisical then appends /.well-known/openid-configuration. SPIRE answers
# 404, and so do we, but we say which URL to configure (at most every _TRAP_WARN_EVERY seconds).
_INFISICAL_SUFFIXES = (
    "/.well-known/openid_configuration",
    "/.well-known/openid_configuration/.well-known/openid-configuration",
)
_TRAP_WARN_EVERY = 60.0


@dataclass(frozen=True)
class WebSettings:
    """What the handler needs from the configuration."""

    domains: tuple[str, ...]
    allow_insecure_scheme: bool
    server_path_prefix: str = ""
    jwt_issuer: str = ""
    jwks_uri: str = ""
    discovery: DiscoveryOptions = SPIRE_DISCOVERY  # config discovery_document
    trusted_proxies: tuple[str, ...] | None = None  # None: every client may forward (SPIRE)
    cache: CachePolicy = SPIRE_CACHE  # config cache_control (unset: SPIRE's headers)


def _method_not_allowed() -> Response:
    return text_response(405, "method not allowed")


def _not_found() -> Response:
    return text_response(404, "404 page not found")


class ProviderHandler:
    """Routes requests to the discovery document and the JWKS."""

    def __init__(self, settings: WebSettings, store: KeyStore) -> None:
        self._settings = settings
        self._store = store
        self._allow = DomainAllowlist(settings.domains)
        self._proxies = ProxyTrust(settings.trusted_proxies)
        self._plan = UrlPlan.from_config(
            prefix=settings.server_path_prefix,
            jwt_issuer=settings.jwt_issuer,
            jwks_uri=settings.jwks_uri,
        )
        self._routes: dict[str, Handler] = {
            self._plan.discovery_route: self.discovery,
            self._plan.keys_route: self.keys,
        }
        # Every 200 for the snapshot served now, shared with the fast path (responses.py).
        self._tables = ResponseTables(store, settings.cache)
        self._trap_warned = -_TRAP_WARN_EVERY
        self._trap_unreported = 0

    @property
    def plan(self) -> UrlPlan:
        return self._plan

    @property
    def store(self) -> KeyStore:
        return self._store

    @property
    def tables(self) -> ResponseTables:
        """The response table of the snapshot served now (read by the fast path too)."""
        return self._tables

    def plain_scheme(self, transport: asyncio.BaseTransport | None) -> str:
        """The issuer scheme for a request that carries no forwarding header (§3.3 step 2)."""
        if (
            self._settings.allow_insecure_scheme
            and transport is not None
            and transport.get_extra_info("sslcontext") is None
        ):
            return "http"
        return "https"

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        raw = request.raw_path
        handler = self._routes.get(raw)
        if handler is None:
            if not raw.startswith("/"):
                # absolute-form request target (GET http://host/path): route on its path.
                raw = request.rel_url.raw_path_qs if raw.startswith(("http:", "https:")) else raw
            route = request_route(raw)
            handler = self._routes.get(route) if route is not None else None
            if handler is None:
                if route is not None and route.endswith(_INFISICAL_SUFFIXES):
                    self._warn_infisical(request, route)
                return _not_found()
        return await handler(request)

    # -- /.well-known/openid-configuration --------------------------------------------------
    async def discovery(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return _method_not_allowed()
        scheme, host = self._scheme_and_host(request)
        table = self._tables.current()
        body = table.discovery(scheme, host)
        if body is None:
            refusal = check_host(host, self._allow)
            if refusal is not None:
                return text_response(400, refusal, CIMultiDict([ACAO]))
            options = self._settings.discovery
            snapshot = table.snapshot  # render from the table's own snapshot, never another
            body = render_discovery(
                self._plan.issuer(scheme, host),
                self._plan.jwks_uri(scheme, host),
                options,
                snapshot.keys if snapshot is not None else None,
            )
            if snapshot is None and options.depends_on_keys:
                # No keys yet: the body is a placeholder until the first key set arrives.
                placeholder = table.policy.placeholder_headers
                return Response(body=body, headers=CIMultiDict(placeholder))
            table.add_discovery(scheme, host, body)
        return Response(body=body, headers=CIMultiDict(table.discovery_headers))

    def _warn_infisical(self, request: web.BaseRequest, route: str) -> None:
        """Name the discovery URL to configure for a request of Infisical's wrong one."""
        now = time.monotonic()
        self._trap_unreported += 1
        if now - self._trap_warned < _TRAP_WARN_EVERY:
            return
        scheme, host = self._scheme_and_host(request)
        if check_host(host, self._allow) is None:
            configure = self._plan.issuer(scheme, host)
        else:  # never echo a host we would not serve
            configure = self._plan.issuer(scheme, "<your domain>")
        log.warning(
            "infisical_discovery_url_misconfigured",
            path=route,
            configure_discovery_url=configure,
            requests=self._trap_unreported,
            detail="the OIDC discovery URL is the issuer; Infisical appends "
            "/.well-known/openid-configuration itself (the underscore path is a 404 in SPIRE too)",
        )
        self._trap_warned = now
        self._trap_unreported = 0

    def _scheme_and_host(self, request: web.BaseRequest) -> tuple[str, str]:
        """SPIRE's gorilla ProxyHeaders + scheme rule (spire-behavior.md §3.3 steps 1-2).

        With ``trusted_proxies`` set, the forwarded headers of other peers are ignored."""
        headers = request.headers
        transport = request.transport
        forwarding = self._proxies.trust_all or self._proxies.trusts(
            transport.get_extra_info("peername") if transport is not None else None
        )
        fwd_scheme = ""
        proto = headers.get("X-Forwarded-Proto", "") if forwarding else ""
        if proto:
            fwd_scheme = proto.lower()
        elif forwarding:
            proto = headers.get("X-Forwarded-Scheme", "")
            if proto:
                fwd_scheme = proto.lower()
            else:
                forwarded = headers.get("Forwarded", "")
                if forwarded:
                    m = _FORWARDED_PROTO.search(forwarded)
                    if m:
                        fwd_scheme = m.group(1).lower()
        raw = request.raw_path
        absolute = raw.startswith(("http://", "https://"))
        if absolute and not fwd_scheme:
            fwd_scheme = raw.split(":", 1)[0].lower()
        scheme = "https" if fwd_scheme == "https" else self.plain_scheme(request.transport)
        host = headers.get("X-Forwarded-Host", "") if forwarding else ""
        if not host:
            host = request.url.raw_authority if absolute else headers.get("Host", "")
        return scheme, host

    # -- /keys ------------------------------------------------------------------------------
    async def keys(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return _method_not_allowed()
        table = self._tables.current()
        current = table.snapshot
        if current is None:
            return text_response(500, "document not available", CIMultiDict([ACAO]))
        if current.empty:
            return text_response(
                501, "jwt not supported/enabled in this service", CIMultiDict([ACAO])
            )
        return serve_keys(request, table)


def serve_keys(request: web.BaseRequest, table: ResponseTable) -> Response:
    """Go's ``http.ServeContent`` over the JWKS bytes, plus a strong ETag (RFC 9110 §13.2.2)."""
    current = table.snapshot
    not_modified = table.not_modified
    if table.keys is None or not_modified is None or current is None:  # 500/501 come first
        raise ValueError("serve_keys needs a non-empty key set")
    keys_200, body = table.keys
    headers = request.headers
    mod_time = int(current.mod_time)
    # 1. If-Match, else If-Unmodified-Since
    if_match = headers.get("If-Match")
    if if_match is not None:
        if not etag_matches_strong(if_match, current.etag):
            return _precondition_failed(keys_200)
    else:
        ius = headers.get("If-Unmodified-Since")
        if ius is not None:
            t = parse_http_date(ius)
            if t is not None and mod_time > t:
                return _precondition_failed(keys_200)
    # 2. If-None-Match, else If-Modified-Since
    inm = headers.get("If-None-Match")
    if inm is not None:
        if etag_matches_weak(inm, current.etag):
            return _not_modified(not_modified)
    else:
        ims = headers.get("If-Modified-Since")
        if ims is not None:
            t = parse_http_date(ims)
            if t is not None and mod_time <= t:
                return _not_modified(not_modified)
    out = CIMultiDict(keys_200)
    rng = headers.get("Range")
    if rng is not None and _if_range_ok(headers.get("If-Range"), current):
        try:
            span = parse_single_range(rng, len(body))
        except RangeError as err:
            extra: CIMultiDict[str] = CIMultiDict(table.policy.range_error_headers)
            if err.no_overlap:
                extra["Content-Range"] = f"bytes */{len(body)}"
            return text_response(416, str(err), extra)
        if span is not None:
            start, end = span
            out["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
            return Response(status=206, body=body[start : end + 1], headers=out)
    return Response(body=body, headers=out)


def _if_range_ok(if_range: str | None, current: RenderedKeys) -> bool:
    if if_range is None:
        return True
    if if_range.startswith(('"', "W/")):
        return if_range == current.etag
    t = parse_http_date(if_range)
    return t is not None and int(t) == int(current.mod_time)


def _not_modified(headers: Headers) -> Response:
    return Response(status=304, headers=CIMultiDict(headers))


def _precondition_failed(keys_200: Headers) -> Response:
    out: CIMultiDict[str] = CIMultiDict(keys_200)
    del out["Accept-Ranges"]
    return Response(status=412, body=b"", headers=out)

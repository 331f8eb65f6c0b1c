"""The main HTTP handler: the discovery document and ``/keys`` (spire-behavior.md §3).

It only reads the store and pre-rendered bytes: it never awaits gRPC, ACME or disk, and nothing is
JSON-encoded per request. It imports nothing from gRPC, SPIFFE or ACME.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

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
from spire_oidc.http.urls import UrlPlan, request_route

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

_FORWARDED_PROTO = re.compile(r"(?i)proto=(https|http)")
_DISCOVERY_CACHE_SIZE = 256

ACAO = ("Access-Control-Allow-Origin", "*")
_NO_CACHE = (
    ("Cache-Control", "no-cache, no-store, must-revalidate"),
    ("Pragma", "no-cache"),
    ("Expires", "0"),
)
# The discovery document's headers, in the order they are sent (Content-Length and Date follow).
DISCOVERY_HEADERS = (("Content-Type", "application/json"), ACAO)


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
        # (scheme, host) -> rendered discovery body; bounded, only allowed hosts are cached.
        self._discovery_cache: dict[tuple[str, str], bytes] = {}
        if settings.discovery.depends_on_keys:
            # The body lists the served keys' algorithms: render again after each key change.
            store.add_listener(lambda _keys: self._discovery_cache.clear())

    @property
    def plan(self) -> UrlPlan:
        return self._plan

    @property
    def store(self) -> KeyStore:
        return self._store

    def cached_discovery(self, scheme: str, host: str) -> bytes | None:
        """The discovery body already rendered for an allowed (scheme, host), else None."""
        return self._discovery_cache.get((scheme, host))

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
                return _not_found()
        return await handler(request)

    # -- /.well-known/openid-configuration --------------------------------------------------
    async def discovery(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return _method_not_allowed()
        scheme, host = self._scheme_and_host(request)
        key = (scheme, host)
        body = self._discovery_cache.get(key)
        if body is None:
            refusal = check_host(host, self._allow)
            if refusal is not None:
                return text_response(400, refusal, CIMultiDict([ACAO]))
            options = self._settings.discovery
            current = self._store.current
            body = render_discovery(
                self._plan.issuer(scheme, host),
                self._plan.jwks_uri(scheme, host),
                options,
                current.keys if current is not None else None,
            )
            if current is None and options.depends_on_keys:
                # No keys yet: the body is a placeholder until the first key set arrives.
                return Response(body=body, headers=CIMultiDict(DISCOVERY_HEADERS))
            if len(self._discovery_cache) >= _DISCOVERY_CACHE_SIZE:
                self._discovery_cache.pop(next(iter(self._discovery_cache)))
            self._discovery_cache[key] = body
        return Response(body=body, headers=CIMultiDict(DISCOVERY_HEADERS))

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
        current = self._store.current
        if current is None:
            return text_response(500, "document not available", CIMultiDict([ACAO]))
        if current.empty:
            return text_response(
                501, "jwt not supported/enabled in this service", CIMultiDict([ACAO])
            )
        return serve_keys(request, current)


def keys_headers(current: RenderedKeys) -> tuple[tuple[str, str], ...]:
    """The ``/keys`` 200 headers in the order they are sent (Content-Length and Date follow)."""
    return (
        ("Accept-Ranges", "bytes"),
        ACAO,
        _NO_CACHE[0],
        ("Content-Type", "application/json"),
        ("ETag", current.etag),
        _NO_CACHE[2],
        ("Last-Modified", current.last_modified),
        _NO_CACHE[1],
    )


def _keys_headers(current: RenderedKeys) -> CIMultiDict[str]:
    return CIMultiDict(keys_headers(current))


def serve_keys(request: web.BaseRequest, current: RenderedKeys) -> Response:
    """Go's ``http.ServeContent`` over the JWKS bytes, plus a strong ETag (RFC 9110 §13.2.2)."""
    headers = request.headers
    mod_time = int(current.mod_time)
    # 1. If-Match, else If-Unmodified-Since
    if_match = headers.get("If-Match")
    if if_match is not None:
        if not etag_matches_strong(if_match, current.etag):
            return _precondition_failed(current)
    else:
        ius = headers.get("If-Unmodified-Since")
        if ius is not None:
            t = parse_http_date(ius)
            if t is not None and mod_time > t:
                return _precondition_failed(current)
    # 2. If-None-Match, else If-Modified-Since
    inm = headers.get("If-None-Match")
    if inm is not None:
        if etag_matches_weak(inm, current.etag):
            return _not_modified(current)
    else:
        ims = headers.get("If-Modified-Since")
        if ims is not None:
            t = parse_http_date(ims)
            if t is not None and mod_time <= t:
                return _not_modified(current)
    body = current.body
    out = _keys_headers(current)
    rng = headers.get("Range")
    if rng is not None and _if_range_ok(headers.get("If-Range"), current):
        try:
            span = parse_single_range(rng, len(body))
        except RangeError as err:
            extra: CIMultiDict[str] = CIMultiDict((ACAO, _NO_CACHE[2], _NO_CACHE[1]))
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


def _not_modified(current: RenderedKeys) -> Response:
    return Response(
        status=304,
        headers=CIMultiDict(
            (
                ACAO,
                _NO_CACHE[0],
                ("ETag", current.etag),
                _NO_CACHE[2],
                ("Last-Modified", current.last_modified),
                _NO_CACHE[1],
            )
        ),
    )


def _precondition_failed(current: RenderedKeys) -> Response:
    out = _keys_headers(current)
    del out["Accept-Ranges"]
    return Response(status=412, body=b"", headers=out)

"""The plain-HTTP listener for http-01 (RFC 8555 §8.3), an extension: SPIRE has no http-01.

It answers ``GET /.well-known/acme-challenge/<token>`` with the key authorization while that
token's authorization is pending; with shared storage (replicas), an unknown token is looked
up there (:meth:`spire_oidc.acme.shared.SharedChallenges.http01`). Everything else gets what
Go autocert's ``HTTPHandler(nil)`` gives: ``GET``/``HEAD`` for a configured name is redirected
(302) to the same path over HTTPS, anything else is a 404. It never serves keys or the
discovery document in clear text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from multidict import CIMultiDict

from spire_oidc.acme.selector import normalize

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"


class Http01Handler:
    """The low-level aiohttp handler of the http-01 listener."""

    def __init__(self, names: Sequence[str], *, https_port: int = 443) -> None:
        self._names = frozenset(names)
        self._https_port = https_port
        self.tokens: dict[str, str] = {}  # token -> key authorization (event loop only)
        self.lookup: Callable[[str], Awaitable[str | None]] | None = None  # the shared storage
        self.served = 0

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path.startswith(CHALLENGE_PREFIX) and request.method in ("GET", "HEAD"):
            token = path[len(CHALLENGE_PREFIX) :]
            key_authorization = self.tokens.get(token)
            if key_authorization is None and self.lookup is not None:
                key_authorization = await self.lookup(token)
            if key_authorization is not None:
                self.served += 1
                return web.Response(
                    body=key_authorization.encode("ascii"),
                    headers=CIMultiDict({"Content-Type": "text/plain"}),
                )
            return _not_found()
        host = normalize(request.host.rsplit(":", 1)[0] if request.host else None)
        if request.method in ("GET", "HEAD") and host in self._names:
            port = "" if self._https_port == 443 else f":{self._https_port}"
            target = f"https://{host}{port}{request.raw_path}"
            return web.Response(status=302, headers=CIMultiDict({"Location": target}))
        return _not_found()


def _not_found() -> web.Response:
    return web.Response(
        status=404,
        body=b"404 page not found\n",
        headers=CIMultiDict({"Content-Type": "text/plain; charset=utf-8"}),
    )

"""Pure URL logic: routes, issuer and ``jwks_uri`` (spire-behavior.md §3.1, §3.3).

SPIRE builds these with Go's ``net/url``; this module reproduces the observable results, except the
double escaping of ``jwks_uri`` for prefixes with escapable characters (a SPIRE bug, fixed here:
the path is escaped once).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

# Characters Go leaves unescaped in a URL path (url.shouldEscape, encodePath mode).
_PATH_SAFE = "/:@!$&'()*+,;=-._~"

DISCOVERY_SUFFIX = "/.well-known/openid-configuration"
KEYS_SUFFIX = "/keys"


def clean_path(path: str) -> str:
    """Go's ``path.Clean`` for an absolute path: no empty, ``.`` or ``..`` segments."""
    out: list[str] = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    return "/" + "/".join(out)


def join_path(base: str, elem: str) -> str:
    """Go's ``url.JoinPath`` on a decoded path: cleaned, always absolute, no trailing slash."""
    return clean_path(f"{base}/{elem}")


def escape_path(path: str) -> str:
    """Escape a decoded path the way Go's ``URL.EscapedPath`` does (once)."""
    return quote(path, safe=_PATH_SAFE)


def normalise_url(raw: str) -> str:
    """Go's ``url.Parse(raw).String()`` where it matters: lower-case scheme, escaped path."""
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    path = escape_path(unquote(parts.path)) if parts.path else ""
    out = f"{scheme}://{parts.netloc}{path}"
    if parts.query or raw.split("#", 1)[0].endswith("?"):
        out += f"?{parts.query}"
    if parts.fragment:
        out += f"#{quote(unquote(parts.fragment), safe=_PATH_SAFE + '?')}"
    return out


def issuer_keys_url(issuer: str) -> str:
    """``jwks_uri`` derived from ``jwt_issuer``: scheme://host + JoinPath(issuer path, "keys")."""
    parts = urlsplit(issuer)
    path = join_path(unquote(parts.path), "keys")
    host = parts.netloc.rsplit("@", 1)[-1]  # userinfo is dropped
    return f"{parts.scheme.lower()}://{host}{escape_path(path)}"


_SLASHES = re.compile(r"/+")


@dataclass(frozen=True)
class UrlPlan:
    """Everything about URLs that is fixed by the configuration, computed once at start-up."""

    discovery_route: str  # decoded, cleaned request path of the discovery document
    keys_route: str  # decoded, cleaned request path of the JWKS
    issuer_path: str  # appended to scheme://host when the issuer comes from the request
    keys_path: str  # escaped path of jwks_uri when it comes from the request
    fixed_issuer: str | None  # from jwt_issuer
    fixed_jwks_uri: str | None  # from jwks_uri, or derived from jwt_issuer

    @classmethod
    def from_config(cls, *, prefix: str, jwt_issuer: str, jwks_uri: str) -> UrlPlan:
        base = prefix or "/"
        if not base.startswith("/"):  # config.py normalises (with a warning); be safe anyway
            base = "/" + base
        fixed_issuer = normalise_url(jwt_issuer) if jwt_issuer else None
        if jwks_uri:
            fixed_jwks: str | None = normalise_url(jwks_uri)
        elif jwt_issuer:
            fixed_jwks = issuer_keys_url(jwt_issuer)
        else:
            fixed_jwks = None
        return cls(
            discovery_route=join_path(base, DISCOVERY_SUFFIX),
            keys_route=join_path(base, KEYS_SUFFIX),
            issuer_path="" if base == "/" else escape_path(base),
            keys_path=escape_path(join_path(base, "keys")),
            fixed_issuer=fixed_issuer,
            fixed_jwks_uri=fixed_jwks,
        )

    def issuer(self, scheme: str, host: str) -> str:
        if self.fixed_issuer is not None:
            return self.fixed_issuer
        return f"{scheme}://{host}{self.issuer_path}"

    def jwks_uri(self, scheme: str, host: str) -> str:
        if self.fixed_jwks_uri is not None:
            return self.fixed_jwks_uri
        return f"{scheme}://{host}{self.keys_path}"


def request_route(raw_path: str) -> str | None:
    """The decoded route of a raw request path, or ``None`` when the path is not clean.

    Percent-encoded characters are decoded (``/%6Beys`` is ``/keys``, as in Go's ServeMux) except
    an encoded ``/``, which never matches a route. Empty, ``.`` and ``..`` segments make the path
    unclean: SPIRE redirects those, we answer 404.
    """
    path = raw_path.split("?", 1)[0]
    if not path.startswith("/"):
        return None
    segments = path.split("/")[1:]
    decoded: list[str] = []
    for i, seg in enumerate(segments):
        if seg in (".", "..") or (seg == "" and i != len(segments) - 1):
            return None
        if "%" in seg:
            if re.search("%2f", seg, re.IGNORECASE):
                return None
            if _valid_escapes(seg):
                try:
                    seg = unquote(seg, errors="strict")
                except UnicodeDecodeError:
                    return None
        decoded.append(seg)
    return "/" + "/".join(decoded)


_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _valid_escapes(seg: str) -> bool:
    return _ESCAPE.search(seg) is None


def split_host_port(hostport: str) -> str:
    """The host of ``host:port`` as Go's ``net.SplitHostPort`` gives it, or the whole value."""
    i = hostport.rfind(":")
    if i < 0:
        return hostport
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0 or end + 1 != i:
            return hostport
        host = hostport[1:end]
        if "[" in host or "]" in host:
            return hostport
        return host
    host = hostport[:i]
    if ":" in host or "[" in host or "]" in host:
        return hostport
    return host

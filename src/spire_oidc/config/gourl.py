"""Go's ``net/url.Parse``, only as far as SPIRE's ``jwt_issuer`` / ``jwks_uri`` checks see it
(:func:`parse_url`: scheme, host, and Go's ``parse "...": ...`` errors)."""

from __future__ import annotations

import ipaddress
import re

from spire_oidc.config.domains import go_quote
from spire_oidc.errors import ConfigValueError


class GoURLError(ConfigValueError):
    """A Go ``*url.Error``; ``str()`` is Go's text (``parse "x": ...``)."""


_HOST_OK = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~!$&'()*+,;=:[]<>\""
)
_HEX = frozenset("0123456789abcdefABCDEF")


def _unescape(s: str, mode: str) -> str:
    """Go's ``unescape`` validity checks (mode "host", "zone" or "other"); returns ``s``."""
    raw = s.encode("utf-8", errors="surrogatepass")
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x25:  # '%'
            chunk = raw[i : i + 3]
            if len(chunk) < 3 or chr(chunk[1]) not in _HEX or chr(chunk[2]) not in _HEX:
                text = raw[i:][:3].decode("utf-8", errors="surrogatepass")
                raise GoURLError(f"invalid URL escape {go_quote(text)}")
            value = int(chunk[1:].decode(), 16)
            if mode == "host" and value < 0x80 and chunk != b"%25":
                raise GoURLError(f"invalid URL escape {go_quote(chunk.decode())}")
            if mode == "zone" and chunk != b"%25" and value != 0x20 and chr(value) not in _HOST_OK:
                raise GoURLError(f"invalid URL escape {go_quote(chunk.decode())}")
            i += 3
            continue
        if mode in ("host", "zone") and c < 0x80 and chr(c) not in _HOST_OK:
            raise GoURLError(f"invalid character {go_quote(chr(c))} in host name")
        i += 1
    return s


def _parse_host(scheme: str, host: str) -> str:
    open_bracket = host.rfind("[")
    if open_bracket > 0:
        raise GoURLError("invalid IP-literal")
    if open_bracket == 0:
        close = host.rfind("]")
        if close < 0:
            raise GoURLError("missing ']' in host")
        colon_port = host[close + 1 :]
        if not _valid_optional_port(colon_port):
            raise GoURLError(f"invalid port {go_quote(colon_port)} after host")
        name = host[1:close]
        zone = name.find("%25")
        if zone >= 0:
            _unescape(name[:zone], "host")
            _unescape(name[zone:], "zone")
            literal = name[:zone] + "%" + name[zone + 3 :]
        else:
            literal = _unescape(name, "host")
        try:
            addr = ipaddress.ip_address(literal)
        except ValueError:
            raise GoURLError(
                f"invalid host: ParseAddr({go_quote(literal)}): unable to parse IP"
            ) from None
        if addr.version == 4:
            raise GoURLError("invalid IP-literal")
        return host
    colon = host.find(":")
    if colon >= 0:
        last = host.rfind(":")
        if last != colon and scheme not in ("http", "https"):
            colon = last
        colon_port = host[colon:]
        if not _valid_optional_port(colon_port):
            raise GoURLError(f"invalid port {go_quote(colon_port)} after host")
    return _unescape(host, "host")


def _valid_optional_port(port: str) -> bool:
    return port == "" or (port[0] == ":" and all("0" <= c <= "9" for c in port[1:]))


_USERINFO_OK = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._:~!$&'()*+,;=%@"
)


def parse_url(raw_url: str) -> tuple[str, str]:
    """Go's ``url.Parse``: (lower-cased scheme, host) or :class:`GoURLError` with Go's text."""
    url, hash_, frag = raw_url.partition("#")
    try:
        scheme, host = _go_url_parse_no_fragment(url)
    except GoURLError as exc:
        raise GoURLError(f"parse {go_quote(url)}: {exc}") from None
    if hash_:
        try:
            _unescape(frag, "other")
        except GoURLError as exc:
            raise GoURLError(f"parse {go_quote(raw_url)}: {exc}") from None
    return scheme, host


def _go_url_parse_no_fragment(raw: str) -> tuple[str, str]:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise GoURLError("net/url: invalid control character in URL")
    if raw == "*":
        return "", ""
    scheme, rest = "", raw
    m = re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", raw)
    if raw.startswith(":"):
        raise GoURLError("missing protocol scheme")
    if m:
        scheme, rest = m.group()[:-1].lower(), raw[m.end() :]
    # A lone trailing "?" is ForceQuery; otherwise the query starts at the first "?".
    forced = rest.endswith("?") and rest.count("?") == 1
    rest = rest[:-1] if forced else rest.partition("?")[0]
    if not rest.startswith("/"):
        if scheme:
            return scheme, ""  # opaque
        if ":" in rest.partition("/")[0]:
            raise GoURLError("first path segment in URL cannot contain colon")
    host = ""
    if (scheme or not rest.startswith("///")) and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        rest = slash + path
        at = authority.rfind("@")
        host = _parse_host(scheme, authority[at + 1 :])
        if at >= 0:
            userinfo = authority[:at]
            if any(c not in _USERINFO_OK for c in userinfo):
                raise GoURLError("net/url: invalid userinfo")
            for part in userinfo.split(":", 1):
                _unescape(part, "other")
    _unescape(rest, "other")
    return scheme, host

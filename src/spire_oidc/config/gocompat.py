"""Go standard-library parsers whose results and error texts SPIRE's config checks expose.

* ``time.ParseDuration`` (:func:`parse_duration`, integer nanoseconds), exactly: an optional
  sign, then ``<number><unit>`` terms (fractions allowed; units ns, us, µs (U+00B5),
  μs (U+03BC), ms, s, m, h), with Go's messages (``time: missing unit in duration "5"``).
* ``net/url.Parse`` as far as SPIRE's ``jwt_issuer`` / ``jwks_uri`` checks see it
  (:func:`parse_url`: scheme, host, and Go's ``parse "...": ...`` errors).
* ``net.ResolveTCPAddr("tcp", addr)`` for ``serving_cert_file.addr`` (:func:`resolve_tcp_addr`):
  Go's host:port splitting and errors, service names, IP literals, and a bounded name lookup.
* ``os.Expand`` (:func:`go_expand`), under SPIRE's ``-expandEnv``.
* ``strconv.ParseInt(s, 0, 0)`` (:func:`parse_go_int`), as hcl decodes int fields.

The ``net`` address parsers (``net.Listen``, ``net.ResolveTCPAddr``) are in
:mod:`spire_oidc.config.gonet` and re-exported here.

One module for the Go compatibility shims the config layer needs.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from spire_oidc.config.domains import go_quote
from spire_oidc.config.gonet import GoAddrError, resolve_tcp_addr, split_listen_addr
from spire_oidc.errors import ConfigValueError

__all__ = [
    "DurationError",
    "GoAddrError",
    "GoURLError",
    "go_expand",
    "parse_duration",
    "parse_go_int",
    "parse_url",
    "resolve_tcp_addr",
    "split_listen_addr",
]

_NANOSECOND = 1
_MICROSECOND = 1000 * _NANOSECOND
_MILLISECOND = 1000 * _MICROSECOND
_SECOND = 1000 * _MILLISECOND
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE

_UNITS = {
    "ns": _NANOSECOND,
    "us": _MICROSECOND,
    "\u00b5s": _MICROSECOND,  # MICRO SIGN
    "\u03bcs": _MICROSECOND,  # GREEK SMALL LETTER MU
    "ms": _MILLISECOND,
    "s": _SECOND,
    "m": _MINUTE,
    "h": _HOUR,
}

_LIMIT = 1 << 63  # Go accumulates in uint64 and rejects anything above this


class DurationError(ConfigValueError):
    """A duration string Go would reject; ``str()`` is Go's error text."""


def _time_quote(s: str) -> str:
    """Quote like Go's ``time.quote``: non-ASCII and control characters become ``\\x`` bytes."""
    out = ['"']
    for ch in s:
        if ord(ch) >= 0x80 or ch < " ":
            data = ch.encode("utf-8", errors="surrogatepass")
            out.extend(f"\\x{b:02x}" for b in data)
        else:
            if ch in '"\\':
                out.append("\\")
            out.append(ch)
    out.append('"')
    return "".join(out)


def _is_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def parse_duration(text: str) -> int:
    """Parse ``text`` like Go's ``time.ParseDuration`` and return nanoseconds.

    Raises :class:`DurationError` with Go's exact message on invalid input.
    """
    invalid = DurationError("time: invalid duration " + _time_quote(text))
    s = text
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise invalid
    total = 0
    while s:
        if not (s[0] == "." or _is_digit(s[0])):
            raise invalid
        # Leading integer part.
        i = 0
        whole = 0
        while i < len(s) and _is_digit(s[i]):
            if whole > _LIMIT // 10:
                raise invalid
            whole = whole * 10 + (ord(s[i]) - 48)
            if whole > _LIMIT:
                raise invalid
            i += 1
        pre = i > 0
        s = s[i:]
        # Optional fraction: digits beyond int64 precision are read but ignored, as in Go.
        frac, scale, post = 0, 1.0, False
        if s and s[0] == ".":
            s = s[1:]
            i = 0
            overflow = False
            while i < len(s) and _is_digit(s[i]):
                if not overflow:
                    if frac > (_LIMIT - 1) // 10:
                        overflow = True
                    else:
                        nxt = frac * 10 + (ord(s[i]) - 48)
                        if nxt > _LIMIT:
                            overflow = True
                        else:
                            frac = nxt
                            scale *= 10
                i += 1
            post = i > 0
            s = s[i:]
        if not pre and not post:
            raise invalid
        # Unit: everything up to the next digit or '.'.
        i = 0
        while i < len(s) and not (s[i] == "." or _is_digit(s[i])):
            i += 1
        if i == 0:
            raise DurationError("time: missing unit in duration " + _time_quote(text))
        unit_name, s = s[:i], s[i:]
        unit = _UNITS.get(unit_name)
        if unit is None:
            raise DurationError(
                f"time: unknown unit {_time_quote(unit_name)} in duration {_time_quote(text)}"
            )
        if whole > _LIMIT // unit:
            raise invalid
        value = whole * unit
        if frac > 0:
            # Go converts through float64 here, and so do we (same IEEE arithmetic).
            value += int(float(frac) * (float(unit) / scale))
            if value > _LIMIT:
                raise invalid
        total += value
        if total > _LIMIT:
            raise invalid
    if neg:
        return -total
    if total > _LIMIT - 1:
        raise invalid
    return total


# ---------------------------------------------------------------------------------------------
# os.Expand


_SHELL_SPECIAL = frozenset("*#$@!?-0123456789")


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ("0" <= ch <= "9") or ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def _shell_name(s: str) -> tuple[str, int]:
    """Go's ``getShellName``: (name, characters consumed) at the start of ``s``."""
    if s[0] == "{":
        if len(s) > 2 and s[1] in _SHELL_SPECIAL and s[2] == "}":
            return s[1], 3
        close = s.find("}", 1)
        if close == 1:
            return "", 2  # "${}": bad syntax, eaten
        if close < 0:
            return "", 1  # "${" without "}": bad syntax, eaten
        return s[1:close], close + 1
    if s[0] in _SHELL_SPECIAL:
        return s[0], 1
    i = 0
    while i < len(s) and _is_alnum(s[i]):
        i += 1
    return s[:i], i


def go_expand(text: str, mapping: Callable[[str], str]) -> str:
    """Go's ``os.Expand``: replace ``$name`` and ``${name}`` in ``text`` with ``mapping(name)``."""
    out: list[str] = []
    i = j = 0
    while j < len(text):
        if text[j] == "$" and j + 1 < len(text):
            out.append(text[i:j])
            name, width = _shell_name(text[j + 1 :])
            if name:
                out.append(mapping(name))
            elif width == 0:
                out.append("$")  # "$" not followed by a name stays
            j += width
            i = j + 1
        j += 1
    if not out:
        return text
    out.append(text[i:])
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# net/url.Parse: only what decides SPIRE's jwt_issuer / jwks_uri checks (scheme, host, error).


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


# strconv.ParseInt(s, 0, 0), for int fields (health_checks.bind_port, max_connections).

_INT64_MAX = (1 << 63) - 1


def _underscore_ok(s: str) -> bool:
    saw = "^"
    i = 0
    if s[:1] in ("+", "-"):
        s = s[1:]
    hexa = False
    if len(s) >= 2 and s[0] == "0" and s[1].lower() in "box":
        i = 2
        saw = "0"
        hexa = s[1].lower() == "x"
    while i < len(s):
        c = s[i]
        if "0" <= c <= "9" or (hexa and "a" <= c.lower() <= "f"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
        i += 1
    return saw != "_"


def parse_go_int(s: str) -> int:
    """``strconv.ParseInt(s, 0, 0)`` on a 64-bit platform; ValueError carries Go's text."""
    syntax = ValueError(f"strconv.ParseInt: parsing {go_quote(s)}: invalid syntax")
    out_of_range = ValueError(f"strconv.ParseInt: parsing {go_quote(s)}: value out of range")
    if not s:
        raise syntax
    body = s
    neg = False
    if body[0] in "+-":
        neg = body[0] == "-"
        body = body[1:]
    if not body:
        raise syntax
    base, digits = 10, body
    if body[0] == "0":
        prefix = body[1:2].lower()
        if len(body) >= 3 and prefix in ("b", "o", "x"):
            base, digits = {"b": 2, "o": 8, "x": 16}[prefix], body[2:]
        else:
            base, digits = 8, body[1:]
    value = 0
    underscores = False
    for c in digits:
        if c == "_":
            underscores = True
            continue
        if "0" <= c <= "9":
            d = ord(c) - 48
        elif "a" <= c.lower() <= "z" and c.isascii():
            d = ord(c.lower()) - 87
        else:
            raise syntax
        if d >= base:
            raise syntax
        value = value * base + d
    if underscores and not _underscore_ok(body):
        raise syntax
    if (not neg and value > _INT64_MAX) or (neg and value > _INT64_MAX + 1):
        raise out_of_range
    return -value if neg else value

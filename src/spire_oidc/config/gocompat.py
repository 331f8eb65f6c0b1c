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
:mod:`spire_oidc.config.gonet`, ``net/url.Parse`` in :mod:`spire_oidc.config.gourl`; both are
re-exported here.

One module for the Go compatibility shims the config layer needs.
"""

from __future__ import annotations

from collections.abc import Callable

from spire_oidc.config.domains import go_quote
from spire_oidc.config.gonet import GoAddrError, resolve_tcp_addr, split_listen_addr
from spire_oidc.config.gourl import GoURLError, parse_url
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

"""The fast path's pure core: which request heads it may answer from the response table.

``classify(head)`` looks at one complete request head (request line, header lines and the blank
line) and returns a :class:`Route` when the head is one the fast path answers itself, or None
when aiohttp's parser and the full handler must decide. It does no I/O and keeps no state
(h11's style), so it is tested on its own against aiohttp's parser (tests/unit/test_route.py):
for every head it accepts, aiohttp's parser reads the same method, target, version and headers.

Accepted: ``GET``/``HEAD`` of an origin-form target, ``HTTP/1.1``, exactly one ``Host``, an
optional ``Connection: close``/``keep-alive``, strictly well-formed header lines (a token, a
colon, visible ASCII, space and tab), at most ``MAX_HEADER_LINES`` of them, and no header that
changes what aiohttp or the full handler does (bodies, conditionals, ranges, forwarding).
"""

from __future__ import annotations

import re
from typing import NamedTuple

# A request head longer than this (or more header lines) goes to aiohttp, which applies its own
# limits (8190-byte lines and fields, 128 headers) and answers 400/431 as it always did.
MAX_HEAD = 4096
MAX_HEADER_LINES = 64

# The request line: GET or HEAD, an origin-form target of visible ASCII, HTTP/1.1.
_REQUEST_LINE = re.compile(rb"(GET|HEAD) (/[!-~]*) HTTP/1\.1\r\n")
# Each header line: a token, a colon, then only visible ASCII, space and tab (RFC 9110 §5.5).
# obs-fold, bare CR/LF, NUL, obs-text and whitespace before the colon all fall back to aiohttp.
_HEADER_LINES = re.compile(rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t -~]*\r\n)*\r\n")
# Headers that change what the full handler or aiohttp's parser does with a request.
_FALLBACK_HEADERS = frozenset(
    {
        b"content-length",
        b"transfer-encoding",
        b"expect",
        b"upgrade",
        b"range",
        b"forwarded",
        b"proxy-connection",
        b"keep-alive",
    }
)
_FALLBACK_PREFIXES = (b"if-", b"x-forwarded-")
# aiohttp answers 400 when one of these appears twice (http_parser.SINGLETON_HEADERS; Host,
# User-Agent and the fallback headers are checked on their own).
_SINGLETONS = frozenset(
    {b"content-location", b"content-range", b"content-type", b"etag", b"max-forwards", b"server"}
)


class Route(NamedTuple):
    """What the fast path needs from an accepted head (a tuple: cheap to build, immutable)."""

    head: bool  # HEAD (no body) rather than GET
    target: bytes  # the request target exactly as sent (origin form)
    host: bytes  # the Host value, surrounding spaces and tabs removed (may be empty)
    close: bool  # Connection: close
    user_agent: bytes  # for request logging (b"" when absent)

    @property
    def method(self) -> str:
        return "HEAD" if self.head else "GET"


def classify(head: bytes) -> Route | None:
    """The route of one complete request head (ending in a blank line), or None to hand over."""
    if len(head) > MAX_HEAD:
        return None
    line = _REQUEST_LINE.match(head)
    if line is None:
        return None
    start = line.end()
    if _HEADER_LINES.fullmatch(head, start) is None:
        return None
    lines = head[start:-4].split(b"\r\n") if len(head) > start + 2 else []
    if len(lines) > MAX_HEADER_LINES:
        return None
    host: bytes | None = None
    close = False
    user_agent: bytes | None = None
    seen: set[bytes] | None = None
    for header in lines:
        name, _, value = header.partition(b":")
        name = name.lower()
        if name == b"host":
            if host is not None:
                return None  # duplicate Host: aiohttp answers 400
            host = value.strip(b" \t")
        elif name == b"connection":
            token = value.strip(b" \t").lower()
            if token == b"close":
                if close:
                    return None
                close = True
            elif token != b"keep-alive":
                return None
        elif name == b"user-agent":
            if user_agent is not None:
                return None  # duplicate: aiohttp answers 400
            user_agent = value.strip(b" \t")
        elif name in _FALLBACK_HEADERS or name.startswith(_FALLBACK_PREFIXES):
            return None
        elif name in _SINGLETONS:
            if seen is None:
                seen = set()
            elif name in seen:
                return None
            seen.add(name)
    if host is None:
        return None  # HTTP/1.1 needs Host: aiohttp and the full handler answer
    method, target = line.group(1, 2)
    return Route(method == b"HEAD", target, host, close, user_agent or b"")


# Relying parties repeat the same head on a connection (and across connections): the answer of
# the pure function above is remembered for the most recent heads, so a repeated head costs one
# dict lookup. Bounded: the memo is emptied when full, so hostile heads cost what classify costs.
MEMO_SIZE = 256
_memo: dict[bytes, Route | None] = {}


def classify_cached(head: bytes) -> Route | None:
    """:func:`classify`, remembered for up to ``MEMO_SIZE`` distinct heads."""
    try:
        return _memo[head]
    except KeyError:
        pass
    route = classify(head)
    if len(_memo) >= MEMO_SIZE:
        _memo.clear()
    _memo[head] = route
    return route

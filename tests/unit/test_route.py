"""The fast path's pure core: ``classify`` accepts only heads aiohttp's parser reads the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http_parser import HttpRequestParserC, HttpRequestParserPy
from hypothesis import given, settings
from hypothesis import strategies as st

from spire_oidc.http.route import MAX_HEAD, Route, classify

PARSERS = [HttpRequestParserPy, HttpRequestParserC]

_VISIBLE = bytes(range(0x21, 0x7F))
_VALUE_BYTES = _VISIBLE + b" \t\x00\x7f\x80\xff\r\n"
_NAMES = [
    b"Host",
    b"host",
    b"HOST",
    b"Connection",
    b"User-Agent",
    b"Accept",
    b"Accept-Encoding",
    b"X-Forwarded-Host",
    b"Forwarded",
    b"Content-Length",
    b"Transfer-Encoding",
    b"If-None-Match",
    b"Range",
    b"Upgrade",
    b"Keep-Alive",
]
_CONNECTION = [b"close", b"keep-alive", b"Close", b"KEEP-ALIVE", b"upgrade", b"close, te", b""]

# Mostly well-formed pieces, so that many heads are accepted, with odd ones mixed in.
methods = st.sampled_from([b"GET", b"GET", b"GET", b"HEAD", b"HEAD", b"POST", b"get"])
_target_text = st.text(alphabet=_VISIBLE.decode(), max_size=20).map(lambda t: ("/" + t).encode())
targets = st.one_of(
    st.sampled_from([b"/keys", b"/.well-known/openid-configuration", b"/", b"/%6Beys", b"*"]),
    _target_text,
    _target_text,
    st.binary(max_size=20).map(lambda b: b"/" + b),
)
versions = st.sampled_from([b"HTTP/1.1"] * 6 + [b"HTTP/1.0", b"HTTP/2.0", b"http/1.1", b""])
_token = st.text(alphabet="abcxyzABC-_!#~.0123456789", min_size=1, max_size=8).map(str.encode)
names = st.one_of(
    st.sampled_from(_NAMES),
    st.sampled_from([b"Accept", b"User-Agent", b"X-Request-Id", b"Accept-Language"]),
    _token,
    _token,
    st.binary(min_size=1, max_size=6),
)
_plain = st.text(alphabet=_VISIBLE.decode() + " \t", max_size=16).map(str.encode)
values = st.one_of(
    st.sampled_from([b"localhost", b" localhost ", b"\tdomain.test:8443", b"", b"evil.test"]),
    st.sampled_from(_CONNECTION),
    _plain,
    _plain,
    st.binary(max_size=16).map(lambda b: bytes(c for c in b if c in _VALUE_BYTES)),
)
separators = st.sampled_from([b":", b": ", b": ", b":\t", b" :"])
header_lines = st.lists(
    st.tuples(names, separators, values).map(lambda t: t[0] + t[1] + t[2] + b"\r\n"), max_size=5
)


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    space = draw(st.sampled_from([b" ", b" ", b" ", b"  "]))
    line = draw(methods) + b" " + draw(targets) + space + draw(versions) + b"\r\n"
    lines = draw(header_lines)
    if draw(st.integers(0, 4)):
        host = draw(st.sampled_from([b"localhost", b"domain.test:8443", b" a ", b""]))
        lines.insert(draw(st.integers(0, len(lines))), b"Host: " + host + b"\r\n")
    if draw(st.booleans()):
        conn = draw(st.sampled_from(_CONNECTION))
        lines.insert(draw(st.integers(0, len(lines))), b"Connection: " + conn + b"\r\n")
    return line + b"".join(lines) + b"\r\n"


@st.composite
def plain_heads(draw: st.DrawFn) -> bytes:
    """Heads of the shape relying parties send, with arbitrary benign headers (mostly accepted)."""
    benign = st.one_of(_token, st.sampled_from([b"Accept", b"User-Agent", b"Accept-Encoding"]))
    pieces = st.tuples(benign, st.sampled_from([b":", b": ", b":\t"]), _plain)
    lines = [n + sep + v + b"\r\n" for n, sep, v in draw(st.lists(pieces, max_size=6))]
    host = draw(st.sampled_from([b"localhost", b"domain.test:8443", b" a ", b"", b"[::1]:80"]))
    lines.insert(draw(st.integers(0, len(lines))), b"Host: " + host + b"\r\n")
    method = draw(st.sampled_from([b"GET", b"HEAD"]))
    return method + b" " + draw(_target_text) + b" HTTP/1.1\r\n" + b"".join(lines) + b"\r\n"


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _same_as_aiohttp(head: bytes, route: Route, loop: asyncio.AbstractEventLoop) -> None:
    for parser_class in PARSERS:
        parser = parser_class(
            BaseProtocol(loop), loop, 2**16, max_line_size=8190, max_field_size=8190
        )
        messages, upgraded, tail = parser.feed_data(head)  # raises on what aiohttp refuses
        assert len(messages) == 1 and not upgraded and tail == b"", parser_class
        msg = messages[0][0]
        assert msg.method == route.method
        assert msg.path == route.target.decode("ascii")
        assert tuple(msg.version) == (1, 1)
        assert msg.should_close is route.close
        assert not msg.chunked and not msg.upgrade
        assert msg.headers.getall("Host") == [route.host.decode("ascii")]
        assert msg.headers.get("User-Agent", "") == route.user_agent.decode("ascii")
        assert "Content-Length" not in msg.headers
        lines = head.split(b"\r\n")[1:-2]
        expected = [(n, v.strip(b" \t")) for n, _, v in (x.partition(b":") for x in lines)]
        assert list(msg.raw_headers) == expected, parser_class


@settings(max_examples=600, deadline=None)
@given(st.one_of(heads(), plain_heads()))
def test_accepted_heads_read_the_same_by_aiohttp(
    loop: asyncio.AbstractEventLoop, head: bytes
) -> None:
    """Every head classify accepts is parsed by aiohttp (Py and C) to the same request."""
    route = classify(head)
    if route is not None:
        _same_as_aiohttp(head, route, loop)


@pytest.mark.parametrize(
    "head",
    [
        b"GET /keys HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"HEAD /.well-known/openid-configuration HTTP/1.1\r\nhost:  a \r\nConnection: close\r\n\r\n",
        b"GET /keys HTTP/1.1\r\nUser-Agent: Go-http-client/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
    ],
)
def test_plain_requests_are_accepted(loop: asyncio.AbstractEventLoop, head: bytes) -> None:
    """What relying parties send is taken by the fast path, and read alike by aiohttp."""
    route = classify(head)
    assert route is not None
    _same_as_aiohttp(head, route, loop)


@pytest.mark.parametrize(
    "head",
    [
        b"GET /keys HTTP/1.0\r\nHost: localhost\r\n\r\n",
        b"GET /keys HTTP/2.0\r\nHost: localhost\r\n\r\n",
        b"GET /keys\r\nHost: localhost\r\n\r\n",
        b"GET /keys HTTP/1.1\r\n\r\n",
        b"GET /keys HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET /keys HTTP/1.1\r\nHost : localhost\r\n\r\n",
        b"GET /keys HTTP/1.1\r\nHost: localhost\r\n folded\r\n\r\n",
        b"GET /keys HTTP/1.1\r\nHost: localhost\r\nX-Bin: \xff\r\n\r\n",
        b"GET /keys HTTP/1.1\r\nHost: localhost\r\nConnection: upgrade\r\n\r\n",
        b"GET /keys HTTP/1.1\r\nHost: localhost\r\nIf-None-Match: *\r\n\r\n",
        b"GET /keys HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-Proto: https\r\n\r\n",
        b"GET http://localhost/keys HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"POST /keys HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"GET /keys HTTP/1.1\r\nHost: x\r\nUser-Agent: a\r\nUser-Agent: b\r\n\r\n",
        b"GET /keys HTTP/1.1\r\nHost: x\r\nETag: a\r\nEtag: b\r\n\r\n",
        b"GET /keys HTTP/1.1\r\nHost: localhost\r\nX: " + b"a" * MAX_HEAD + b"\r\n\r\n",
    ],
)
def test_everything_else_is_handed_over(head: bytes) -> None:
    """Other versions, methods, targets, odd syntax and meaningful headers go to aiohttp."""
    assert classify(head) is None


def test_classify_cached_matches_classify_and_stays_bounded() -> None:
    """The memo returns exactly what classify returns, and never holds more than MEMO_SIZE heads
    (hostile, ever-different heads cost a classify each, not memory)."""
    from spire_oidc.http import route as route_module

    heads = [f"GET /keys HTTP/1.1\r\nHost: h{i}.test\r\n\r\n".encode() for i in range(600)]
    heads.append(b"POST /keys HTTP/1.1\r\nHost: a\r\n\r\n")
    for head in heads + heads[:10]:
        assert route_module.classify_cached(head) == route_module.classify(head)
        assert len(route_module._memo) <= route_module.MEMO_SIZE

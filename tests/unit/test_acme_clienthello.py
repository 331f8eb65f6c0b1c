"""ClientHello parsing: SNI and the offered ALPN list, from real OpenSSL ClientHellos."""

from __future__ import annotations

import contextlib
import functools
import ssl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spire_oidc.acme.clienthello import ClientHello, Incomplete, NotClientHello, parse_client_hello


@functools.cache
def client_hello(server_name: str | None, alpn: tuple[str, ...] | None) -> bytes:
    """The first flight of a real OpenSSL client (one TLS record holding the ClientHello)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn is not None:
        ctx.set_alpn_protocols(list(alpn))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def test_sni_and_alpn_of_a_real_client_hello() -> None:
    """The SNI name and the ALPN list come out as the client sent them, in order."""
    hello = parse_client_hello(client_hello("oidc.test", ("h2", "http/1.1")))
    assert hello == ClientHello("oidc.test", ("h2", "http/1.1"))
    assert not hello.wants_acme_tls


def test_only_acme_tls_alone_wants_the_challenge_certificate() -> None:
    """ALPN exactly ["acme-tls/1"] asks for the challenge certificate; anything else does not."""
    alone = parse_client_hello(client_hello("oidc.test", ("acme-tls/1",)))
    mixed = parse_client_hello(client_hello("oidc.test", ("acme-tls/1", "http/1.1")))
    none = parse_client_hello(client_hello("oidc.test", None))
    assert isinstance(alone, ClientHello) and alone.wants_acme_tls
    assert isinstance(mixed, ClientHello) and not mixed.wants_acme_tls
    assert none == ClientHello("oidc.test", None)


def test_no_sni_when_the_client_dialled_an_ip() -> None:
    """A client without server_hostname sends no SNI extension."""
    assert parse_client_hello(client_hello(None, ("http/1.1",))) == ClientHello(None, ("http/1.1",))


def test_every_prefix_is_incomplete() -> None:
    """Any prefix of a ClientHello asks for more bytes instead of failing."""
    data = client_hello("oidc.test", ("acme-tls/1",))
    for cut in range(len(data)):
        assert parse_client_hello(data[:cut]) is Incomplete.MORE


def test_a_hello_split_over_two_records_is_reassembled() -> None:
    """A handshake message fragmented over two TLS records parses like the unfragmented one."""
    data = client_hello("oidc.test", ("h2", "http/1.1"))
    body = data[5:]
    first, second = body[:40], body[40:]
    record = lambda part: data[:3] + len(part).to_bytes(2) + part  # noqa: E731
    assert parse_client_hello(record(first) + record(second)) == parse_client_hello(data)
    assert parse_client_hello(record(first)) is Incomplete.MORE


@pytest.mark.parametrize(
    "data",
    [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x80\x2e\x01\x03\x01", b"\x16\x03\x01\x00\x00"],
)
def test_other_protocols_are_not_client_hellos(data: bytes) -> None:
    """Plain HTTP, SSLv2 and an empty record are rejected at once."""
    with pytest.raises(NotClientHello):
        parse_client_hello(data)


@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_crash_the_parser(data: bytes) -> None:
    """Any byte string is a ClientHello, incomplete, or NotClientHello: never another error."""
    with contextlib.suppress(NotClientHello):
        parse_client_hello(data)


@given(st.binary(min_size=1, max_size=300))
def test_corrupted_real_hello_never_crashes(tail: bytes) -> None:
    """A real record header followed by arbitrary bytes parses or is rejected cleanly."""
    data = client_hello("oidc.test", ("h2",))
    with contextlib.suppress(NotClientHello):
        parse_client_hello(data[:9] + tail)

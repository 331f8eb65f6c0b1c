"""``bytes_needed`` (the ACME peek's cheap completeness check) agrees with the full parser on
every prefix of real and record-split ClientHellos, so the listener parses each hello once."""

from __future__ import annotations

import ssl

import pytest

from spire_oidc.acme.clienthello import (
    Incomplete,
    NotClientHello,
    bytes_needed,
    parse_client_hello,
)


def _real_hello() -> bytes:
    ctx = ssl.create_default_context()
    ctx.set_alpn_protocols(["http/1.1"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="oidc.test")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def _split(hello: bytes, size: int) -> bytes:
    """The same handshake message re-framed in records of ``size`` bytes."""
    message = hello[5:]
    out = b""
    for i in range(0, len(message), size):
        chunk = message[i : i + size]
        out += bytes([22, 3, 1]) + len(chunk).to_bytes(2, "big") + chunk
    return out


@pytest.mark.parametrize("record_size", [None, 1, 3, 100])
def test_bytes_needed_agrees_with_the_parser_on_every_prefix(record_size: int | None) -> None:
    """For every prefix: more bytes are needed exactly when the parser says Incomplete, and
    the full hello needs no more than its own length."""
    hello = _real_hello()
    data = hello if record_size is None else _split(hello, record_size)
    for n in range(len(data) + 1):
        prefix = data[:n]
        incomplete = isinstance(parse_client_hello(prefix), Incomplete)
        assert (bytes_needed(prefix) > n) == incomplete, n
    assert bytes_needed(data) == len(data)
    parsed = parse_client_hello(data)
    assert not isinstance(parsed, Incomplete) and parsed.server_name == "oidc.test"


def test_bytes_needed_reads_the_total_from_record_headers() -> None:
    """With only the first record header of a 16 KiB record, the answer is that record's end."""
    assert bytes_needed(bytes([22, 3, 1, 0x40, 0x00])) == 5 + 0x4000
    assert bytes_needed(b"") == 5


def test_bytes_needed_refuses_what_the_parser_refuses() -> None:
    """Plain HTTP and an oversized ClientHello are refused from their headers alone."""
    with pytest.raises(NotClientHello):
        bytes_needed(b"GET / HTTP/1.1\r\n")
    huge = bytes([22, 3, 1, 0x40, 0x00, 1]) + (70 * 1024).to_bytes(3, "big") + bytes(0x3FFC)
    with pytest.raises(NotClientHello):
        bytes_needed(huge)

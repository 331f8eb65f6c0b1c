"""Pure parsing of a TLS ClientHello peeked from a socket: its SNI name and ALPN list.

The stdlib ``ssl`` module does not show the ALPN list a client offered before the certificate
is chosen, and tls-alpn-01 (RFC 8737 §3) needs exactly that: the challenge certificate goes
only to a client that offers the single protocol ``acme-tls/1``. So the listener peeks the
first bytes of each connection (``MSG_PEEK``) and parses them here, before any TLS state exists.

Layout (RFC 8446 §4.1.2 / RFC 5246 §7.4.1.2): TLS records of content type 22 carry the
handshake message ``type(1)=1 length(3) legacy_version(2) random(32) session_id<0..32>
cipher_suites<2..2^16-2> compression_methods<1..2^8-1> extensions<0..2^16-1>``; the message
may be split over several records. SNI is extension 0 (RFC 6066 §3), ALPN extension 16
(RFC 7301 §3.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

MAX_HELLO_BYTES = 64 * 1024  # a larger ClientHello is refused
_RECORD_HANDSHAKE = 22
_HANDSHAKE_CLIENT_HELLO = 1
_EXT_SERVER_NAME = 0
_EXT_ALPN = 16
_MAX_RECORD = 2**14 + 2048


class Incomplete(Enum):
    """More bytes are needed before the ClientHello can be parsed."""

    MORE = "more"


class NotClientHello(ValueError):
    """The bytes are not (the start of) a TLS ClientHello."""


@dataclass(frozen=True)
class ClientHello:
    """What the certificate choice needs from a ClientHello."""

    server_name: str | None  # the host_name entry of the SNI extension, as sent
    alpn: tuple[str, ...] | None  # None: no ALPN extension

    @property
    def wants_acme_tls(self) -> bool:
        """True when the client offered exactly ``["acme-tls/1"]`` (Go autocert's rule)."""
        return self.alpn == ("acme-tls/1",)


def bytes_needed(data: bytes) -> int:
    """How many bytes the ClientHello takes in all, as far as ``data`` tells: a value above
    ``len(data)`` means more must arrive first (only the record headers are read, so a caller
    can wait for that many bytes and parse once, instead of re-parsing every partial hello).

    Raises :class:`NotClientHello` as :func:`parse_client_hello` does for bad record headers.
    """
    pos = 0
    have = 0  # handshake bytes in the records seen so far
    head = bytearray()  # the first 4 bytes of the handshake message
    need: int | None = None
    while need is None or have < need:
        if len(data) - pos < 5:
            return pos + 5
        ctype, major, length = data[pos], data[pos + 1], int.from_bytes(data[pos + 3 : pos + 5])
        if ctype != _RECORD_HANDSHAKE or major != 3:
            raise NotClientHello("not a TLS handshake record")
        if length == 0 or length > _MAX_RECORD:
            raise NotClientHello("bad TLS record length")
        end = pos + 5 + length
        if len(head) < 4:
            head += data[pos + 5 : min(end, pos + 5 + 4 - len(head))]
        if len(data) < end:
            return end
        have += length
        pos = end
        if need is None and len(head) >= 4:
            if head[0] != _HANDSHAKE_CLIENT_HELLO:
                raise NotClientHello("first handshake message is not a ClientHello")
            need = 4 + int.from_bytes(head[1:4])
            if need > MAX_HELLO_BYTES:
                raise NotClientHello("ClientHello too large")
    return pos


def _handshake_bytes(data: bytes) -> bytes | Incomplete:
    """Reassemble the first handshake message from the records in ``data``."""
    out = bytearray()
    pos = 0
    need: int | None = None
    while need is None or len(out) < need:
        if len(data) - pos < 5:
            return Incomplete.MORE
        ctype, major, length = data[pos], data[pos + 1], int.from_bytes(data[pos + 3 : pos + 5])
        if ctype != _RECORD_HANDSHAKE or major != 3:
            raise NotClientHello("not a TLS handshake record")
        if length == 0 or length > _MAX_RECORD:
            raise NotClientHello("bad TLS record length")
        if len(data) - pos - 5 < length:
            return Incomplete.MORE
        out += data[pos + 5 : pos + 5 + length]
        pos += 5 + length
        if need is None and len(out) >= 4:
            if out[0] != _HANDSHAKE_CLIENT_HELLO:
                raise NotClientHello("first handshake message is not a ClientHello")
            need = 4 + int.from_bytes(out[1:4])
            if need > MAX_HELLO_BYTES:
                raise NotClientHello("ClientHello too large")
    assert need is not None
    return bytes(out[4:need])


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise NotClientHello("truncated ClientHello")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n))

    def vector(self, len_bytes: int) -> bytes:
        return self.take(self.uint(len_bytes))

    def done(self) -> bool:
        return self.pos >= len(self.data)


def parse_client_hello(data: bytes) -> ClientHello | Incomplete:
    """Parse the ClientHello at the start of ``data``.

    Returns :attr:`Incomplete.MORE` while the message is not complete yet; raises
    :class:`NotClientHello` when the bytes cannot be the start of one (plain HTTP, SSLv2, junk).
    """
    body = _handshake_bytes(data)
    if isinstance(body, Incomplete):
        return body
    r = _Reader(body)
    r.take(2 + 32)  # legacy_version, random
    r.vector(1)  # legacy_session_id
    r.vector(2)  # cipher_suites
    r.vector(1)  # legacy_compression_methods
    if r.done():
        return ClientHello(None, None)
    ext = _Reader(r.vector(2))
    server_name: str | None = None
    alpn: tuple[str, ...] | None = None
    seen: set[int] = set()
    while not ext.done():
        etype = ext.uint(2)
        edata = ext.vector(2)
        if etype in seen:
            raise NotClientHello(f"duplicate extension {etype}")  # RFC 8446 §4.2
        seen.add(etype)
        if etype == _EXT_SERVER_NAME:
            server_name = _server_name(edata)
        elif etype == _EXT_ALPN:
            alpn = _alpn(edata)
    return ClientHello(server_name, alpn)


def _server_name(edata: bytes) -> str | None:
    names = _Reader(_Reader(edata).vector(2))
    while not names.done():
        name_type = names.uint(1)
        name = names.vector(2)
        if name_type == 0:  # host_name
            try:
                return name.decode("ascii")
            except UnicodeDecodeError as exc:
                raise NotClientHello("SNI host_name is not ASCII") from exc
    return None


def _alpn(edata: bytes) -> tuple[str, ...]:
    protocols = _Reader(_Reader(edata).vector(2))
    out: list[str] = []
    while not protocols.done():
        out.append(protocols.vector(1).decode("latin-1"))
    return tuple(out)

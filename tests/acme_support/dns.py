"""A tiny DNS responder on loopback UDP: every A query gets 127.0.0.1 (or ``address``).

Pebble's VA resolves each identifier through it (``pebble -dnsserver``), so test names such as
``oidc.test`` lead back to the provider on this machine and no query leaves loopback. Pebble
asks AAAA first and dials the first address (acme.md §1.6), hence the empty AAAA answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import cast

_TYPE_A = 1


def answer(query: bytes, address: str = "127.0.0.1") -> bytes | None:
    """The response to one DNS query (RFC 1035 §4), or None for garbage; A is ``address``."""
    if len(query) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    pos = 12
    while True:  # QNAME labels
        if pos >= len(query):
            return None
        length = query[pos]
        pos += 1
        if length == 0:
            break
        if length & 0xC0:
            return None
        pos += length
    if pos + 4 > len(query):
        return None
    qtype, qclass = struct.unpack("!HH", query[pos : pos + 4])
    question = query[12 : pos + 4]
    rd = flags & 0x0100
    ancount = 1 if qtype == _TYPE_A and qclass == 1 else 0
    header = struct.pack("!HHHHHH", ident, 0x8000 | 0x0400 | rd | 0x0080, 1, ancount, 0, 0)
    body = question
    if ancount:
        # NAME (pointer to the question), TYPE A, CLASS IN, TTL 0, RDLENGTH 4, the address
        body += struct.pack("!HHHIH", 0xC00C, _TYPE_A, 1, 0, 4) + socket.inet_aton(address)
    return header + body


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: LoopbackDNS) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = answer(data, self.server.address)
        if reply is None or self.transport is None:
            return
        self.server.queries += 1
        hook = self.server.before_answer
        if hook is None:
            self.transport.sendto(reply, addr)
            return
        transport = self.transport

        async def delayed() -> None:
            try:
                await hook()
            finally:
                transport.sendto(reply, addr)

        task = asyncio.get_running_loop().create_task(delayed())
        self.server.hook_tasks.add(task)
        task.add_done_callback(self.server.hook_tasks.discard)


class LoopbackDNS:
    """Serve :func:`answer` on ``127.0.0.1:<port>`` (UDP) in the running event loop.

    Every A query is answered with ``address`` (a load balancer's, in the replica tests).
    """

    def __init__(self, address: str = "127.0.0.1") -> None:
        self.address = address
        self.port = 0
        self.queries = 0
        # Awaited before each answer: a test runs probes while the CA's validation waits on it.
        self.before_answer: Callable[[], Awaitable[None]] | None = None
        self.hook_tasks: set[asyncio.Task[None]] = set()
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> LoopbackDNS:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=("127.0.0.1", 0)
        )
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]
        return self

    def stop(self) -> None:
        if self._transport is not None:
            with contextlib.suppress(Exception):
                self._transport.close()
            self._transport = None

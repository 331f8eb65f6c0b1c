"""Which clients may set ``X-Forwarded-*`` / ``Forwarded`` (the ``trusted_proxies`` option).

SPIRE trusts those headers from every client (gorilla ProxyHeaders), and that stays the default.
With ``trusted_proxies`` set, only connections over the unix socket (entry ``"unix"``) or from the
listed addresses / CIDR ranges may change the advertised scheme and host; for everybody else the
headers are ignored, as if absent.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ProxyTrust:
    """Decides from the peer address whether forwarded headers are honoured."""

    def __init__(self, entries: Iterable[str] | None) -> None:
        self.trust_all = entries is None
        items = list(entries or ())
        self.unix = "unix" in items
        self.networks: tuple[_Network, ...] = tuple(
            ipaddress.ip_network(e, strict=False) for e in items if e != "unix"
        )
        self._cache: dict[str, bool] = {}

    def trusts(self, peer: object) -> bool:
        """``peer`` is the transport's ``peername``: a (host, port, ...) tuple, or a unix path."""
        if self.trust_all:
            return True
        if not isinstance(peer, tuple):  # unix sockets: "" or a path (or None)
            return self.unix
        host = str(peer[0])
        hit = self._cache.get(host)
        if hit is None:
            hit = self._match(host)
            if len(self._cache) < 4096:
                self._cache[host] = hit
        return hit

    def _match(self, host: str) -> bool:
        try:
            addr = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.networks)


def peer_address(transport: asyncio.BaseTransport | None) -> str:
    """The peer as aiohttp's ``request.remote`` gives it (the address; '' on a unix socket)."""
    peer = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peer, (list, tuple)):
        return str(peer[0])
    return str(peer) if peer is not None else ""

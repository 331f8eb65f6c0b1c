"""Binding the main and health listeners: TCP (plain or TLS) and unix sockets.

Bind failures become :class:`StartupError` with Go-like wording
(``listen tcp 127.0.0.1:8080: bind: address already in use``), so start-up stops with one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import ssl
import stat

from aiohttp import web

from spire_oidc.config.gonet import GoAddrError, split_listen_addr
from spire_oidc.errors import StartupError

# The accept queue of every listener. aiohttp's SockSite calls listen() again with its own default
# (128) unless told: a burst of connections would then overflow the queue, and each dropped SYN
# costs a client a one-second retransmission (Go listens with the kernel's somaxconn).
BACKLOG = 1024


def parse_tcp_addr(addr: str) -> tuple[str | None, int]:
    """Split a Go ``net.Listen("tcp", addr)`` address; an empty host means every interface.

    Go's parsing and texts come from one place, :func:`spire_oidc.config.gonet.split_listen_addr`,
    which the config checks use too (so ``validate`` refuses what this would refuse).
    """
    try:
        host, port = split_listen_addr(addr)
    except GoAddrError as exc:
        raise StartupError(f"listen tcp: {exc}") from exc
    return (host or None), port


def bind_tcp(addr: str, *, host: str | None = None, port: int | None = None) -> list[socket.socket]:
    """Bind (and listen on) a TCP address; ``host=None`` is every interface, IPv4 and IPv6."""
    if host is None and port is None:
        host, port = parse_tcp_addr(addr)
    if port is None or not 0 <= port <= 65535:
        raise StartupError(f"listen tcp {addr}: invalid port {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"listen tcp {addr}: lookup {host}: {exc.strerror}") from exc
    seen: set[tuple[int, object]] = set()
    socks: list[socket.socket] = []
    try:
        for family, stype, proto, _, sockaddr in infos:
            if (family, sockaddr) in seen:
                continue
            seen.add((family, sockaddr))
            sock = socket.socket(family, stype, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRNOTAVAIL and family == socket.AF_INET6 and host is None:
                    sock.close()
                    socks.remove(sock)
                    continue
                raise StartupError(
                    f"listen tcp {addr}: bind: {os.strerror(exc.errno or 0).lower()}"
                ) from exc
            sock.listen(BACKLOG)
            sock.setblocking(False)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def bind_unix(path: str) -> socket.socket:
    """A unix listening socket at ``path`` (a stale file there is removed), mode 0777 as SPIRE."""
    with contextlib.suppress(FileNotFoundError):
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            raise StartupError(f"listen unix {path}: bind: address already in use (a directory)")
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, 0o777)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise StartupError(f"listen unix {path}: bind: {exc.strerror}") from exc
    sock.setblocking(False)
    return sock


class _SockSite(web.SockSite):
    """aiohttp's SockSite with a bounded TLS handshake (Go bounds it by ReadHeaderTimeout)."""

    def __init__(
        self,
        runner: web.BaseRunner,
        sock: socket.socket,
        *,
        ssl_context: ssl.SSLContext | None,
        handshake_timeout: float,
    ) -> None:
        super().__init__(runner, sock, ssl_context=ssl_context, backlog=BACKLOG)
        self._handshake_timeout = handshake_timeout

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        if self._ssl_context is None:
            self._server = await loop.create_server(server, sock=self._sock, backlog=BACKLOG)
        else:
            self._server = await loop.create_server(
                server,
                sock=self._sock,
                ssl=self._ssl_context,
                backlog=BACKLOG,
                ssl_handshake_timeout=self._handshake_timeout,
            )


async def start_sites(
    runner: web.BaseRunner,
    socks: list[socket.socket],
    ssl_context: ssl.SSLContext | None = None,
    *,
    handshake_timeout: float = 10.0,
) -> list[web.SockSite]:
    """Serve ``runner`` on already-bound sockets; a TLS handshake must finish in time."""
    sites: list[web.SockSite] = []
    for sock in socks:
        site = _SockSite(runner, sock, ssl_context=ssl_context, handshake_timeout=handshake_timeout)
        await site.start()
        sites.append(site)
    return sites

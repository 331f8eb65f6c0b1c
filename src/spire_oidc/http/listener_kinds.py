"""The listeners behind one protocol: bind, start, stop, describe.

One implementation per kind of main listener (plain TCP, unix socket, certificate files; the
ACME one is :class:`spire_oidc.acme.service.AcmeService`, so that this package imports nothing
from ``acme``), plus :class:`SideListener` for the plain-HTTP side listeners (health/metrics and
ACME http-01). Each is built with everything it needs (its server, its connection cap, a
:class:`Timeouts`) and never patched afterwards. ``bind`` reserves the sockets (nothing is served
yet; a failure raises ``StartupError``), ``start`` serves, ``stop`` stops accepting, drains
in-flight requests and releases everything; ``stop`` is safe at any point, also after a failed
or missing ``bind``, so a composition root can register it before binding.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from spire_oidc.http.accept import CountedTlsSite
from spire_oidc.http.adapter import FullServer
from spire_oidc.http.connlimit import ConnectionCap
from spire_oidc.http.listeners import bind_tcp, bind_unix, start_sites
from spire_oidc.http.timeouts import Timeouts
from spire_oidc.http.tls import CertFileReloader

Work = tuple[str, Callable[[], Awaitable[None]]]


@dataclass(frozen=True)
class Description:
    """What a started listener logs: one event with its fields (a warning when ``warning``)."""

    event: str
    fields: Mapping[str, object] = field(default_factory=dict)
    warning: bool = False


class Listener(Protocol):
    """A listener the daemon binds, starts, describes and stops."""

    @property
    def addresses(self) -> list[str]: ...

    def bind(self) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def describe(self) -> Description: ...


class MainListener(Listener, Protocol):
    """The main listener: serves the provider's ``runner`` and may need background work."""

    runner: web.ServerRunner
    reloader: CertFileReloader | None

    def background(self) -> Sequence[Work]: ...


def sock_name(sock: socket.socket) -> str:
    """``host:port`` (IPv6 bracketed) of a bound TCP socket, or a unix socket's path."""
    name = sock.getsockname()
    if isinstance(name, tuple):
        host = name[0]
        return f"[{host}]:{name[1]}" if ":" in host else f"{host}:{name[1]}"
    return str(name)


class _Served:
    """The shared part: a runner over already-bound sockets, stoppable at any point."""

    reloader: CertFileReloader | None = None

    def __init__(self, server: web.Server, *, timeouts: Timeouts, cap: ConnectionCap) -> None:
        self.runner = web.ServerRunner(server, shutdown_timeout=timeouts.shutdown_grace)
        self.cap = cap
        self.timeouts = timeouts
        self.socks: list[socket.socket] = []
        self._started = False

    @property
    def addresses(self) -> list[str]:
        return [sock_name(s) for s in self.socks]

    def background(self) -> Sequence[Work]:
        return ()

    async def start(self) -> None:
        self._started = True
        await self.runner.setup()
        await start_sites(self.runner, self.socks)

    async def stop(self) -> None:
        if self._started:
            self._started = False
            await self.runner.cleanup()  # stop accepting, drain in-flight requests
        for s in self.socks:
            s.close()


class InsecureTcpListener(_Served):
    """``insecure_addr``: plain HTTP on TCP."""

    def __init__(
        self, addr: str, server: web.Server, *, timeouts: Timeouts, cap: ConnectionCap
    ) -> None:
        super().__init__(server, timeouts=timeouts, cap=cap)
        self.addr = addr

    def bind(self) -> None:
        self.socks = bind_tcp(self.addr)

    def describe(self) -> Description:
        fields = {"address": self.addr, "bound": self.addresses}
        return Description("serving_http_insecure", fields, warning=True)


class UnixListener(_Served):
    """``listen_socket_path``: plain HTTP on a unix socket (removed at stop)."""

    def __init__(
        self, path: str, server: web.Server, *, timeouts: Timeouts, cap: ConnectionCap
    ) -> None:
        super().__init__(server, timeouts=timeouts, cap=cap)
        self.path = path

    def bind(self) -> None:
        self.socks = [bind_unix(self.path)]

    async def stop(self) -> None:
        bound = bool(self.socks)
        await super().stop()
        if bound:
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def describe(self) -> Description:
        return Description("serving_http", {"network": "unix", "address": self.path})


async def start_tls(listener: _Served, context: ssl.SSLContext) -> list[CountedTlsSite]:
    """Serve ``listener``'s runner with TLS on its bound sockets, each connection counted
    against its cap from accept (:class:`CountedTlsSite`)."""
    listener._started = True
    await listener.runner.setup()
    sites = []
    for sock in listener.socks:
        site = CountedTlsSite(
            listener.runner,
            sock,
            context=context,
            cap=listener.cap,
            handshake_timeout=listener.timeouts.handshake,
        )
        await site.start()
        sites.append(site)
    return sites


class CertFileListener(_Served):
    """``serving_cert_file``: TLS from certificate files, reloaded when they change. Connections
    count against the cap from accept, through the handshake (:class:`CountedTlsSite`)."""

    def __init__(
        self,
        cert_file_path: str,
        key_file_path: str,
        *,
        addr: str,
        host: str,
        port: int,
        file_sync_interval: float,
        server: web.Server,
        timeouts: Timeouts,
        cap: ConnectionCap,
    ) -> None:
        super().__init__(server, timeouts=timeouts, cap=cap)
        self.certs = CertFileReloader(cert_file_path, key_file_path, file_sync_interval)
        self.reloader = self.certs
        self._addr, self._host, self._port = addr, host, port

    def bind(self) -> None:
        self.certs.load_initial()
        self.socks = bind_tcp(self._addr, host=self._host or None, port=self._port)

    async def start(self) -> None:
        await start_tls(self, self.certs.context)

    def background(self) -> Sequence[Work]:
        return (("certificate_watch", self.certs.run),)

    def describe(self) -> Description:
        reloader = self.certs
        return Description(
            "serving_https_certificate_files",
            {
                "address": self.addresses,
                "cert_file_path": reloader.cert_path,
                "key_file_path": reloader.key_path,
            },
        )


class SideListener(_Served):
    """A plain-HTTP side listener (health/metrics, ACME http-01): the same header and idle
    timeouts as the main listener and its own share of ``max_connections``."""

    def __init__(
        self,
        handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
        *,
        addr: str,
        host: str,
        port: int,
        timeouts: Timeouts,
        cap: ConnectionCap,
        event: str,
        fields: Mapping[str, object] | None = None,
    ) -> None:
        # Our aiohttp server (adapter.py): no Server header even on parser errors, Go's version
        # answers, the cap; idle connections close after the shorter of the two timeouts.
        bounded = dataclasses.replace(timeouts, idle=min(timeouts.header, timeouts.idle))
        server = FullServer(handler, timeouts=bounded, cap=cap, access_log=None)
        super().__init__(server, timeouts=timeouts, cap=cap)
        self._addr, self._host, self._port = addr, host, port
        self._event = event
        self._fields = dict(fields or {})

    @property
    def server(self) -> web.Server:
        server = self.runner.server
        if server is None:
            raise RuntimeError("side listener without a server")
        return server

    def bind(self) -> None:
        self.socks = bind_tcp(self._addr, host=self._host or None, port=self._port)

    def describe(self) -> Description:
        return Description(self._event, {"address": self.addresses, **self._fields})

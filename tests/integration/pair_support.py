"""One handler served twice on loopback: behind the fast path and behind plain aiohttp, so a
test can compare what both HTTP paths send (test_fastpath.py, test_cache_control.py)."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from aiohttp import web

from spire_oidc.core.store import KeyStore
from spire_oidc.http.adapter import FastServer, FullServer
from spire_oidc.http.listeners import start_sites
from spire_oidc.http.server import build_main_server
from spire_oidc.http.timeouts import Timeouts
from spire_oidc.http.web import ProviderHandler, WebSettings


@dataclass
class Pair:
    """The same handler behind the fast path and behind plain aiohttp."""

    fast: tuple[str, int]
    full: tuple[str, int]
    server: FastServer
    store: KeyStore
    runners: tuple[web.ServerRunner, ...] = ()

    @property
    def both(self) -> tuple[tuple[str, int], tuple[str, int]]:
        return (self.fast, self.full)

    async def close(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


async def _serve(server: web.Server) -> tuple[web.ServerRunner, tuple[str, int]]:
    runner = web.ServerRunner(server)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    await start_sites(runner, [sock])
    host, port = sock.getsockname()
    return runner, (host, port)


async def serve_pair(settings: WebSettings, store: KeyStore) -> Pair:
    """Serve ``ProviderHandler(settings, store)`` on both paths; ``close()`` stops both."""
    fast = build_main_server(
        ProviderHandler(settings, store),
        timeouts=Timeouts(),
        cap=None,
        observer=None,
        log_requests=False,
    )
    assert isinstance(fast, FastServer)
    # The same aiohttp path without the fast path in front.
    full = FullServer(
        ProviderHandler(settings, store), timeouts=Timeouts(), cap=None, access_log=None
    )
    fast_runner, fast_addr = await _serve(fast)
    full_runner, full_addr = await _serve(full)
    return Pair(fast_addr, full_addr, fast, store, (fast_runner, full_runner))

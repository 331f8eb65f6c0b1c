"""Every private aiohttp name http/adapter.py relies on still exists (fails loudly on upgrade)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.web_protocol import RequestHandler


async def _ok(request: web.BaseRequest) -> web.StreamResponse:
    return web.Response()


def test_private_aiohttp_names_exist() -> None:
    """RequestHandler, Server and StreamResponse internals used by the adapter are present."""

    async def check() -> None:
        server = web.Server(_ok)
        for name in ("_loop", "_kwargs", "_connections"):
            assert hasattr(server, name), f"web.Server.{name}"
        handler = RequestHandler(server, loop=asyncio.get_running_loop())
        for name in ("_messages", "_waiter", "handle_error", "eof_received", "transport"):
            assert hasattr(handler, name), f"RequestHandler.{name}"
        response = web.Response()
        for name in ("_headers", "_req", "_payload_writer", "_send_headers_immediately"):
            assert hasattr(response, name), f"StreamResponse.{name}"
        for name in ("_prepare_headers", "_write_headers"):
            assert callable(getattr(web.StreamResponse, name, None)), f"StreamResponse.{name}"

    asyncio.run(check())

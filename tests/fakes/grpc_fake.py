"""The lifecycle both gRPC fakes share: a real grpc.aio server on a unix socket."""

from __future__ import annotations

import contextlib
import os
from typing import Self

import grpc
import grpc.aio


class UnixGrpcFake:
    """Start, kill and restart a grpc.aio server on ``socket_path``; subclasses give the handler."""

    def __init__(self, socket_path: str | os.PathLike[str]) -> None:
        self.socket_path = os.path.abspath(os.fspath(socket_path))
        self._server: grpc.aio.Server | None = None

    def _handler(self) -> grpc.GenericRpcHandler:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Bind the socket and serve (a stale socket file is replaced)."""
        if self._server is not None:
            raise RuntimeError("already running")
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((self._handler(),))
        server.add_insecure_port("unix:" + self.socket_path)
        await server.start()
        self._server = server

    async def _kill(self) -> None:
        """Stop at once (in-flight calls are aborted) and remove the socket file."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace=None)
        with contextlib.suppress(FileNotFoundError):  # gRPC normally removes it already
            os.unlink(self.socket_path)

    async def stop(self) -> None:
        await self._kill()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

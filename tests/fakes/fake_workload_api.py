"""A fake SPIRE agent: the SPIFFE Workload API's ``FetchJWTBundles`` on a unix socket.

A real ``grpc.aio`` server speaking the agent's wire protocol with the ``spiffe`` package's own
messages (never a second compiled ``workload.proto``). Like the agent it checks the security
header (``workload.spiffe.io: true``, else ``INVALID_ARGUMENT``), sends the current bundles as
soon as a stream opens, keeps the stream open and pushes every update on every open stream.

Driven from the test::

    agent = FakeWorkloadAPI(tmp / "agent.sock")
    await agent.start()
    agent.set_jwks("spiffe://example.org", jwks(...))   # pushed on every open stream
    agent.deny()                                        # new streams: PERMISSION_DENIED
    agent.break_streams()                               # abort open streams (UNAVAILABLE)
    await agent.restart()                               # kill + start on the same socket
    agent.push_garbage()                                # bytes that are not a response

Counters: ``calls`` (streams opened, header included or not), ``call_times``,
``header_missing``, ``open_streams``, ``messages_sent``. Drive it from the event loop that runs
it (it is not thread-safe); every method except start/stop/restart is synchronous.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import grpc
import grpc.aio

from spire_oidc._compat import workload_pb2
from tests.fakes.grpc_fake import UnixGrpcFake
from tests.fakes.sink import wait_until

SERVICE = "SpiffeWorkloadAPI"
METHOD = "FetchJWTBundles"
HEADER = "workload.spiffe.io"


@dataclass(frozen=True)
class _Abort:
    code: grpc.StatusCode
    details: str


_END = object()


def _serialize(message: workload_pb2.JWTBundlesResponse | bytes) -> bytes:
    if isinstance(message, bytes):
        return message  # garbage on purpose
    return message.SerializeToString()


class FakeWorkloadAPI(UnixGrpcFake):
    """A controllable SPIRE agent Workload API (JWT bundles only)."""

    def __init__(self, socket_path: str | os.PathLike[str], *, check_header: bool = True) -> None:
        super().__init__(socket_path)
        self.check_header = check_header
        # When set, each stream is closed (status OK) right after its first message.
        self.close_after_first = False
        self._current: workload_pb2.JWTBundlesResponse | None = None
        self._error: _Abort | None = None
        self._streams: set[asyncio.Queue[object]] = set()
        self.calls = 0
        self.call_times: list[float] = []  # time.monotonic() of each call
        self.header_missing = 0
        self.messages_sent = 0

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def target(self) -> str:
        return "unix://" + self.socket_path

    def _methods(self) -> dict[str, grpc.RpcMethodHandler]:
        """The RPCs served (a subclass adds its own)."""
        return {
            METHOD: grpc.unary_stream_rpc_method_handler(
                self._fetch_jwt_bundles,
                request_deserializer=workload_pb2.JWTBundlesRequest.FromString,
                response_serializer=_serialize,
            )
        }

    def _handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(SERVICE, self._methods())

    async def _admit(self, context: grpc.aio.ServicerContext[object, object]) -> None:
        """What the agent checks first on every call: the security header, then a failure the
        test asked for (both abort the call)."""
        metadata = {k: v for k, v in context.invocation_metadata() or ()}
        if self.check_header and metadata.get(HEADER) != "true":
            self.header_missing += 1
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "security header missing from request"
            )
        if self._error is not None:
            await context.abort(self._error.code, self._error.details)

    async def stop(self, *, remove_socket: bool = True) -> None:
        """Kill the agent: every open stream is aborted. ``remove_socket=False`` leaves a stale
        socket file behind (nobody listening: connections are refused)."""
        await self._kill()
        if not remove_socket:
            _stale_socket(self.socket_path)

    # -- what it serves ---------------------------------------------------------------------------
    @property
    def current(self) -> workload_pb2.JWTBundlesResponse | None:
        return self._current

    def set_bundles(self, bundles: Mapping[str, bytes] | None, *, push: bool = True) -> int:
        """Serve ``{trust domain ID: JWKS bytes}`` (``None``: nothing yet; new streams wait).

        With ``push`` the new response goes out on every open stream; returns how many.
        """
        self._current = (
            None if bundles is None else workload_pb2.JWTBundlesResponse(bundles=bundles)
        )
        if push and self._current is not None:
            return self.push(self._current)
        return 0

    def set_jwks(
        self,
        trust_domain_id: str,
        jwks_bytes: bytes,
        *,
        federated: Mapping[str, bytes] | None = None,
        push: bool = True,
    ) -> int:
        """Serve one trust domain's JWKS (plus optional federated bundles)."""
        return self.set_bundles({trust_domain_id: jwks_bytes, **(federated or {})}, push=push)

    def push(
        self, response: workload_pb2.JWTBundlesResponse | Mapping[str, bytes] | None = None
    ) -> int:
        """Send ``response`` (default: the current one) on every open stream; returns how many."""
        if response is None:
            response = self._current
        if response is None:
            return 0
        if not isinstance(response, workload_pb2.JWTBundlesResponse):
            response = workload_pb2.JWTBundlesResponse(bundles=response)
        return self._broadcast(response)

    def push_garbage(self, data: bytes = b"\xff\xfe\x00 this is not a JWTBundlesResponse") -> int:
        """Send bytes that do not decode as a ``JWTBundlesResponse`` on every open stream."""
        return self._broadcast(data)

    # -- failures ---------------------------------------------------------------------------------
    def fail_with(self, code: grpc.StatusCode | None, details: str = "") -> None:
        """New streams fail with this status (``None``: serve normally again)."""
        self._error = None if code is None else _Abort(code, details)

    def deny(self, details: str = "no identity issued") -> None:
        """What the agent answers when no registration entry matches the caller."""
        self.fail_with(grpc.StatusCode.PERMISSION_DENIED, details)

    def allow(self) -> None:
        self.fail_with(None)

    def break_streams(
        self, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE, details: str = "broken by test"
    ) -> int:
        """Abort every open stream with ``code``; returns how many."""
        return self._broadcast(_Abort(code, details))

    def end_streams(self) -> int:
        """End every open stream normally (status OK); returns how many."""
        return self._broadcast(_END)

    # -- observation ------------------------------------------------------------------------------
    @property
    def open_streams(self) -> int:
        return len(self._streams)

    async def wait_for(
        self, predicate: Callable[[], bool], *, within: float = 5.0, what: str = ""
    ) -> None:
        await wait_until(predicate, within=within, what=what)

    async def wait_for_streams(self, n: int = 1, *, within: float = 5.0) -> None:
        await wait_until(lambda: self.open_streams >= n, within=within, what=f"{n} open stream(s)")

    async def wait_for_calls(self, n: int, *, within: float = 5.0) -> None:
        await wait_until(
            lambda: self.calls >= n, within=within, what=f"{n} FetchJWTBundles call(s)"
        )

    # -- the RPC ----------------------------------------------------------------------------------
    def _broadcast(self, item: object) -> int:
        for queue in list(self._streams):
            queue.put_nowait(item)
        return len(self._streams)

    async def _fetch_jwt_bundles(
        self,
        request: workload_pb2.JWTBundlesRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> None:
        self.calls += 1
        self.call_times.append(time.monotonic())
        await self._admit(context)
        queue: asyncio.Queue[object] = asyncio.Queue()
        if self._current is not None:
            queue.put_nowait(self._current)
        self._streams.add(queue)
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, _Abort):
                    await context.abort(item.code, item.details)
                await context.write(item)
                self.messages_sent += 1
                if self.close_after_first:
                    return
        finally:
            self._streams.discard(queue)


def _stale_socket(path: str) -> None:
    """Leave a unix socket file that nobody listens on (like a crashed agent)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
    finally:
        sock.close()

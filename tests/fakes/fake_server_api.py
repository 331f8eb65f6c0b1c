"""A fake SPIRE server: ``spire.api.server.bundle.v1.Bundle/GetBundle`` on a unix socket.

A real ``grpc.aio`` server using the project's generated stubs (``spire_oidc._proto``), with the
server-side semantics of SPIRE's bundle service (grpc-and-config.md §2.3): ``NOT_FOUND "bundle not
found"`` until a bundle is set, and the request's ``output_mask`` applied (every field whose mask
bit is false is cleared; ``trust_domain`` is always kept; no mask returns everything).

Driven from the test::

    server = FakeServerAPI(tmp / "api.sock")
    await server.start()
    server.set_bundle([authority("kid-1", pkix(key)), authority("old", der, expires_at=1)])
    server.fail_with(grpc.StatusCode.UNAVAILABLE, "down")   # every call fails until cleared
    server.fail_next(2, grpc.StatusCode.INTERNAL, "boom")   # the next two calls fail
    server.delay = 5.0                                      # every answer hangs 5 s
    server.garbage = True                                   # answer bytes that do not decode
    await server.restart()

Counters: ``calls``, ``call_times`` and ``requests`` (every ``GetBundleRequest`` received, mask
included). Drive it from the event loop that runs it (it is not thread-safe).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence

import grpc
import grpc.aio

from spire_oidc._proto.spire.api.server.bundle.v1 import bundle_pb2 as service_pb2
from spire_oidc._proto.spire.api.types import bundle_pb2 as types_pb2
from tests.fakes.grpc_fake import UnixGrpcFake
from tests.fakes.sink import wait_until

SERVICE = "spire.api.server.bundle.v1.Bundle"
METHOD = "GetBundle"


def authority(
    kid: str, public_key: bytes, *, expires_at: int = 0, tainted: bool = False
) -> types_pb2.JWTKey:
    """One JWT authority as the server sends it (PKIX DER public key)."""
    return types_pb2.JWTKey(
        public_key=public_key, key_id=kid, expires_at=expires_at, tainted=tainted
    )


def _serialize(message: types_pb2.Bundle | bytes) -> bytes:
    if isinstance(message, bytes):
        return message
    return message.SerializeToString()


def apply_mask(bundle: types_pb2.Bundle, request: service_pb2.GetBundleRequest) -> types_pb2.Bundle:
    """SPIRE's applyBundleMask: clear every field whose mask bit is false (no mask: keep all)."""
    out = types_pb2.Bundle()
    out.CopyFrom(bundle)
    if not request.HasField("output_mask"):
        return out
    mask = request.output_mask
    if not mask.x509_authorities:
        out.ClearField("x509_authorities")
    if not mask.jwt_authorities:
        out.ClearField("jwt_authorities")
    if not mask.refresh_hint:
        out.ClearField("refresh_hint")
    if not mask.sequence_number:
        out.ClearField("sequence_number")
    return out


class FakeServerAPI(UnixGrpcFake):
    """A controllable SPIRE server bundle API."""

    def __init__(
        self, socket_path: str | os.PathLike[str], *, trust_domain: str = "example.org"
    ) -> None:
        super().__init__(socket_path)
        self.trust_domain = trust_domain
        self._bundle: types_pb2.Bundle | None = None
        self._error: tuple[grpc.StatusCode, str] | None = None
        self._fail_next: list[tuple[grpc.StatusCode, str]] = []
        self.delay = 0.0  # seconds to wait before answering (a hung server)
        self.garbage = False  # answer bytes that are not a Bundle
        self.calls = 0
        self.call_times: list[float] = []  # time.monotonic() of each call
        self.requests: list[service_pb2.GetBundleRequest] = []

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def address(self) -> str:
        """The ``server_api.address`` to configure: ``unix:///abs/path``."""
        return "unix://" + self.socket_path

    def _handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                METHOD: grpc.unary_unary_rpc_method_handler(
                    self._get_bundle,
                    request_deserializer=service_pb2.GetBundleRequest.FromString,
                    response_serializer=_serialize,
                )
            },
        )

    # -- what it serves ---------------------------------------------------------------------------
    def set_bundle(
        self,
        jwt_authorities: Sequence[types_pb2.JWTKey] | None,
        *,
        x509_asn1: Sequence[bytes] = (),
        refresh_hint: int = 0,
        sequence_number: int = 0,
    ) -> None:
        """Serve a bundle with these JWT authorities, in this order (``None``: NOT_FOUND)."""
        if jwt_authorities is None:
            self._bundle = None
            return
        self._bundle = types_pb2.Bundle(
            trust_domain=self.trust_domain,
            x509_authorities=[types_pb2.X509Certificate(asn1=der) for der in x509_asn1],
            jwt_authorities=list(jwt_authorities),
            refresh_hint=refresh_hint,
            sequence_number=sequence_number,
        )

    @property
    def bundle(self) -> types_pb2.Bundle | None:
        return self._bundle

    def fail_with(self, code: grpc.StatusCode | None, details: str = "") -> None:
        """Every call fails with this status until cleared with ``None``."""
        self._error = None if code is None else (code, details)

    def fail_next(self, n: int, code: grpc.StatusCode, details: str = "") -> None:
        """The next ``n`` calls fail with this status."""
        self._fail_next.extend([(code, details)] * n)

    # -- observation ------------------------------------------------------------------------------
    async def wait_for_calls(self, n: int, *, within: float = 5.0) -> None:
        await wait_until(lambda: self.calls >= n, within=within, what=f"{n} GetBundle call(s)")

    async def wait_for(
        self, predicate: Callable[[], bool], *, within: float = 5.0, what: str = ""
    ) -> None:
        await wait_until(predicate, within=within, what=what)

    # -- the RPC ----------------------------------------------------------------------------------
    async def _get_bundle(
        self,
        request: service_pb2.GetBundleRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> types_pb2.Bundle | bytes:
        self.calls += 1
        self.call_times.append(time.monotonic())
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self._fail_next:
            code, details = self._fail_next.pop(0)
            await context.abort(code, details)
        if self._error is not None:
            await context.abort(*self._error)
        if self.garbage:
            return b"\xff\xfe\x00 this is not a Bundle"
        if self._bundle is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "bundle not found")
        assert self._bundle is not None
        return apply_mask(self._bundle, request)

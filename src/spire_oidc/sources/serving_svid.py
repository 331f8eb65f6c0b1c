"""The provider's own X.509-SVID, streamed from the SPIRE agent (``FetchX509SVID``).

Used by the ``serving_svid`` listener: the agent pushes a new SVID well before the old one
expires, and every push becomes a :class:`~spire_oidc.core.identity.ServingIdentity` offered to
the listener, which swaps it in for new connections. The stream is handled like the JWT bundle
stream (``workload_api.py``): it is kept open, every failure (socket absent at start, agent
restart, stream broken, ``PERMISSION_DENIED`` because no registration entry matches) is retried
forever with capped backoff and full jitter, and the last good SVID keeps being served for as
long as it is valid.

Which SVID: with ``spiffe_id`` configured, the one with that ID (an answer without it is an
error naming the IDs received); otherwise the first, the agent's default (SPIFFE Workload API
§5.3). Each is parsed and checked by the ``spiffe`` package's public ``X509Svid.parse_raw``
(leaf with a SPIFFE ID URI SAN, not a CA, digitalSignature; intermediates are CAs), and the key
must match the leaf. This module imports gRPC and ``spiffe``: import it only when configured.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence

import grpc
import grpc.aio
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from spiffe.errors import PySpiffeError
from spiffe.svid.x509_svid import X509Svid

from spire_oidc._compat import workload_pb2, workload_pb2_grpc
from spire_oidc.core.clock import Clock
from spire_oidc.core.identity import IdentitySink, ServingIdentity
from spire_oidc.errors import SourceError
from spire_oidc.sources.agent_channel import AgentChannel
from spire_oidc.sources.workload_api import (
    _PERMISSION_DENIED_HINT,
    INITIAL_BACKOFF,
    SECURITY_HEADER,
    reconnect_backoff,
)

log = structlog.get_logger(__name__)

FetchX509SVID = grpc.aio.UnaryStreamMultiCallable[
    workload_pb2.X509SVIDRequest, workload_pb2.X509SVIDResponse
]


class SvidError(SourceError):
    """An SVID from the agent that cannot be served (the message says why)."""


def to_identity(svid: workload_pb2.X509SVID) -> ServingIdentity:
    """Parse and check one SVID message; raises :class:`SvidError`."""
    try:
        parsed = X509Svid.parse_raw(svid.x509_svid, svid.x509_svid_key)
    except (PySpiffeError, ValueError) as exc:
        raise SvidError(f"SVID {svid.spiffe_id or '(no ID)'} is not usable: {exc}") from exc
    leaf = parsed.leaf
    public = parsed.private_key.public_key()
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if public.public_bytes(enc, fmt) != leaf.public_key().public_bytes(enc, fmt):
        raise SvidError(f"SVID {parsed.spiffe_id}: the private key does not match the certificate")
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in parsed.cert_chain)
    key = parsed.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns = ()
    return ServingIdentity(
        spiffe_id=str(parsed.spiffe_id),
        chain_pem=chain,
        key_pem=key,
        not_before=leaf.not_valid_before_utc.timestamp(),
        not_after=leaf.not_valid_after_utc.timestamp(),
        serial=leaf.serial_number,
        dns_names=dns,
    )


def choose(svids: Sequence[workload_pb2.X509SVID], spiffe_id: str) -> workload_pb2.X509SVID:
    """The SVID to serve from one response; raises :class:`SvidError` naming what was there."""
    if not svids:
        raise SvidError("the agent sent no X.509-SVID")
    if not spiffe_id:
        return svids[0]
    for svid in svids:
        if svid.spiffe_id == spiffe_id:
            return svid
    received = ", ".join(s.spiffe_id or "(no ID)" for s in svids)
    raise SvidError(f"the agent sent no X.509-SVID for {spiffe_id} (received: {received})")


class ServingSvidStream:
    """Streams ``FetchX509SVID`` and offers each usable SVID to an :class:`IdentitySink`."""

    def __init__(
        self,
        socket_path: str,
        *,
        spiffe_id: str,
        clock: Clock,
        max_retry_interval: float,
        rng: random.Random | None = None,
        initial_backoff: float = INITIAL_BACKOFF,
        channel: AgentChannel | None = None,
    ) -> None:
        self._socket_path = os.path.abspath(socket_path)
        # Shared with the JWT bundle source when both use this socket (one agent connection).
        self._channel = channel if channel is not None else AgentChannel(self._socket_path)
        self._spiffe_id = spiffe_id
        self._clock = clock
        self._backoff = reconnect_backoff(
            max_retry_interval, initial=initial_backoff, rng=rng or random.Random()
        )
        self._last_problem: str | None = None
        self.received = 0  # SVID messages received (tests read it)

    async def run(self, sink: IdentitySink) -> None:
        """Stream forever, reconnecting with backoff; returns only when cancelled."""
        log.info(
            "serving_svid_stream_started",
            socket_path=self._socket_path,
            spiffe_id=self._spiffe_id or "(the agent's default)",
        )
        async with self._channel.user():
            while True:
                try:
                    if await self._stream_once(sink):
                        self._backoff.reset()
                except Exception as exc:  # a bug must not end the loop: log, retry
                    log.exception("serving_svid_stream_crashed", socket_path=self._socket_path)
                    self._problem(sink, f"internal error: {exc}")
                await self._clock.sleep(self._backoff.next_delay())

    async def _stream_once(self, sink: IdentitySink) -> bool:
        if not os.path.exists(self._socket_path):  # noqa: ASYNC240 - a local stat(2)
            self._problem(
                sink,
                f"workload api socket {self._socket_path} does not exist (is the SPIRE agent "
                "running?)",
            )
            return False
        served = False
        channel = self._channel.get()
        code: grpc.StatusCode | None = grpc.StatusCode.OK
        try:
            stub = workload_pb2_grpc.SpiffeWorkloadAPIStub(channel)  # type: ignore[no-untyped-call]
            fetch: FetchX509SVID = stub.FetchX509SVID
            call = fetch(workload_pb2.X509SVIDRequest(), metadata=(SECURITY_HEADER,))
            try:
                async for response in call:
                    message: workload_pb2.X509SVIDResponse | None = response
                    if message is None:
                        self._problem(sink, "the agent sent a message that is not an SVID")
                        return served
                    served = self._handle(message, sink) or served
            except grpc.aio.AioRpcError as exc:
                code, details = exc.code(), exc.details() or ""
                if code == grpc.StatusCode.PERMISSION_DENIED:
                    self._problem(
                        sink,
                        f"workload api denied the X.509-SVID request (PERMISSION_DENIED: "
                        f"{details}): {_PERMISSION_DENIED_HINT}",
                    )
                else:
                    self._problem(sink, f"X.509-SVID stream failed ({code.name}: {details})")
                return served
            finally:
                call.cancel()
            self._problem(sink, "X.509-SVID stream ended by the agent")
            return served
        finally:
            await self._channel.failed(channel, code)

    def _handle(self, message: workload_pb2.X509SVIDResponse, sink: IdentitySink) -> bool:
        self.received += 1
        try:
            identity = to_identity(choose(message.svids, self._spiffe_id))
        except SvidError as exc:
            self._problem(sink, str(exc), level="error")
            return False
        if identity.expired(self._clock.now()):
            self._problem(
                sink,
                f"the agent sent an X.509-SVID for {identity.spiffe_id} outside its validity "
                f"(serial {identity.serial:x}): not served",
                level="error",
            )
            return False
        if not sink.offer_identity(identity):
            return False
        log.info(
            "serving_svid_received",
            spiffe_id=identity.spiffe_id,
            serial=f"{identity.serial:x}",
            not_after=int(identity.not_after),
            dns_names=list(identity.dns_names),
        )
        self._last_problem = None
        sink.identity_problem(None)
        return True

    def _problem(self, sink: IdentitySink, reason: str, *, level: str = "warning") -> None:
        sink.identity_problem(reason)
        if reason == self._last_problem:
            log.debug("serving_svid_problem", reason=reason, repeated=True)
            return
        self._last_problem = reason
        if level == "error":
            log.error("serving_svid_problem", reason=reason)
        else:
            log.warning("serving_svid_problem", reason=reason)

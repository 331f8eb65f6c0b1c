"""The ``workload_api`` source: JWT bundles streamed by the SPIRE agent (SPIFFE Workload API).

SPIRE's Go provider opens ``FetchJWTBundles``, reads one message and polls again 10 s later
(spire-behavior.md §4.1). We keep the server-streaming RPC open instead, so every bundle the agent
pushes is published as soon as it arrives (DESIGN decision 2):

* the configured trust domain (``example.org`` or ``spiffe://example.org``) is picked out of each
  response; only its JWKS is parsed, so a malformed *federated* bundle never stops updates for
  ours; a response without our trust domain is an error (logged, reported, nothing published);
* only JWT-SVID keys are published: an entry whose ``use`` is present must be ``jwt-svid`` or
  ``sig`` (WIT-SVID and X.509 entries are ignored); malformed keys are skipped and logged by kid;
  a bundle in which every JWT-SVID key is malformed is an error (the last good keys stay), while a
  bundle with no JWT-SVID key at all is published empty (a revocation of every key, as SPIRE);
* freshness: :meth:`KeySink.set_streaming` goes ``True`` once the first message for our trust
  domain has been published after each (re)connect, and ``False`` (with
  :meth:`KeySink.report_error`) when the stream breaks or a message is unusable. A connected
  stream with no error is fresh even when the agent sends nothing for hours (it sends on change);
* every failure (socket missing at start-up, agent restart, stream ended or broken,
  ``PERMISSION_DENIED`` because no registration entry matches this workload, garbage on the wire)
  is retried forever with capped exponential backoff and full jitter; the cap is
  ``poll_interval``. Every attempt uses a fresh channel, so gRPC's own reconnect backoff (up to
  two minutes) never delays recovery after the agent comes back;
* change detection is the sink's job: identical re-deliveries after a reconnect are published
  and do not move Last-Modified.

Why the ``spiffe`` package's generated stubs on a ``grpc.aio`` channel, not its public client
(``WorkloadApiClient`` / ``JwtSource``), measured in grpc-and-config.md §1.4-§1.5:

* the client is synchronous grpcio with a daemon thread per stream; callbacks would have to hop
  onto the event loop, and cancelling it cleanly from asyncio is awkward;
* its constructor raises ``ArgumentError`` when the socket file does not exist yet, so a provider
  started before the agent would crash instead of waiting;
* its stream watcher retries ``PERMISSION_DENIED`` silently (``on_error`` is never called), so the
  operator could not be told that a registration entry is missing;
* one unparseable JWKS for *any* trust domain (or a key without a kid) ends its watcher for good;
* it drops ``use`` and the raw JWKS, so WIT-SVID keys could not be told apart.

We still use the package for what it does well: its ``TrustDomain`` type (normalisation and
validation) and its generated ``workload_pb2`` / ``workload_pb2_grpc`` modules. The process never
holds a second compiled copy of ``workload.proto`` (it would collide in the protobuf descriptor
pool with the package's). The security header ``workload.spiffe.io: true`` is sent on every call
(the agent rejects calls without it with ``INVALID_ARGUMENT``).

This module imports gRPC and ``spiffe``: import it only when the config selects this source.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections.abc import Mapping

import grpc
import grpc.aio
import structlog
from spiffe import TrustDomain
from spiffe.errors import PySpiffeError

from spire_oidc._compat import workload_pb2, workload_pb2_grpc
from spire_oidc.config.model import DEFAULT_POLL_INTERVAL, WorkloadAPIConfig
from spire_oidc.core.backoff import Backoff
from spire_oidc.core.clock import Clock
from spire_oidc.core.keys import JWT_SVID_USES, KeySet, parse_jwks
from spire_oidc.core.limits import LIMITS, KeyLimits
from spire_oidc.errors import ConfigError, SourceError
from spire_oidc.sources.agent_channel import AgentChannel
from spire_oidc.sources.base import KeySink

log = structlog.get_logger(__name__)

SECURITY_HEADER = ("workload.spiffe.io", "true")
# First retry delay bound; doubles per consecutive failure up to the cap (poll_interval).
INITIAL_BACKOFF = 0.1
# An unchanged problem is logged at warning level again at most this often (debug in between).
REPEAT_WARNING_EVERY = 60.0

_PERMISSION_DENIED_HINT = (
    "the SPIRE agent issued no identity to this process: create a registration entry whose "
    "selectors match the oidc-discovery-provider workload (for example `spire-server entry "
    "create -parentID <agent SPIFFE ID> -spiffeID <provider SPIFFE ID> -selector "
    "unix:uid:<provider uid>`), or enable allow_unauthenticated_verifiers on the agent"
)

FetchJWTBundles = grpc.aio.UnaryStreamMultiCallable[
    workload_pb2.JWTBundlesRequest, workload_pb2.JWTBundlesResponse
]


def reconnect_backoff(
    poll_interval: float, *, initial: float = INITIAL_BACKOFF, rng: random.Random
) -> Backoff:
    """Full-jitter backoff from ``initial`` doubling up to ``poll_interval``.

    A cap <= 0 would retry in a busy loop: like SPIRE's poll_interval, it means the default.
    """
    cap = poll_interval if poll_interval > 0 else DEFAULT_POLL_INTERVAL
    first = min(initial, cap) if initial > 0 else cap
    return Backoff.of(first, cap, jitter=1.0, rng=rng)


class WorkloadAPISource:
    """Streams JWT bundles from the SPIRE agent's Workload API and publishes our trust domain's."""

    kind = "workload_api"
    # Bundle size and key count (core/limits.py); also the channel's receive limit.
    limits: KeyLimits = LIMITS

    def __init__(
        self,
        config: WorkloadAPIConfig,
        *,
        clock: Clock,
        rng: random.Random | None = None,
        initial_backoff: float = INITIAL_BACKOFF,
        channel: AgentChannel | None = None,
    ) -> None:
        try:
            self._trust_domain = TrustDomain(config.trust_domain)
        except (PySpiffeError, ValueError) as exc:
            raise ConfigError(
                f"invalid trust_domain {config.trust_domain!r}: {exc}",
                key="workload_api.trust_domain",
            ) from exc
        self._config = config
        self._clock = clock
        self._socket_path = os.path.abspath(config.socket_path)
        self._target = "unix://" + self._socket_path
        # Shared with the serving_svid listener when it uses the same agent socket; a channel of
        # its own otherwise, which is renewed after every failure (see the module docstring).
        self._shared = channel is not None
        self._channel = channel or AgentChannel(
            self._socket_path, options=self.limits.grpc_options()
        )
        self._backoff = reconnect_backoff(
            config.poll_interval, initial=initial_backoff, rng=rng or random.Random()
        )
        self._streaming = False
        self._last_problem: tuple[str, ...] | None = None
        self._last_warned_at = 0.0

    @property
    def poll_interval(self) -> float:
        """The cap of the reconnect backoff; also sets the health window."""
        return self._config.poll_interval

    @property
    def target(self) -> str:
        """The gRPC target, ``unix:///<absolute socket path>``."""
        return self._target

    @property
    def trust_domain(self) -> str:
        """The normalised trust domain name (``example.org``)."""
        return self._trust_domain.name

    async def run(self, sink: KeySink) -> None:
        """Stream forever, reconnecting with backoff; returns only when cancelled."""
        log.info(
            "workload_api_source_started",
            socket_path=self._socket_path,
            trust_domain=self._trust_domain.as_spiffe_id(),
            max_retry_interval=self.poll_interval,
        )
        try:
            async with self._channel.user():
                await self._stream_forever(sink)
        finally:
            self._set_streaming(sink, False)

    async def _stream_forever(self, sink: KeySink) -> None:
        while True:
            try:
                if await self._stream_once(sink):
                    self._backoff.reset()
            except Exception as exc:  # a bug must not end the stream loop: log, retry
                log.exception("workload_api_stream_crashed", socket_path=self._socket_path)
                self._set_streaming(sink, False)
                sink.report_error(f"workload api stream: internal error: {exc}")
            delay = self._backoff.next_delay()
            log.debug(
                "workload_api_retry_scheduled",
                delay=round(delay, 3),
                attempt=self._backoff.attempt,
            )
            await self._clock.sleep(delay)

    # -- one connection -----------------------------------------------------------------------
    async def _stream_once(self, sink: KeySink) -> bool:
        """Open one stream and consume it until it ends; True if it published anything."""
        # A stat(2) of a local path: no I/O wait worth a thread hop.
        if not os.path.exists(self._socket_path):  # noqa: ASYNC240
            self._fail(
                sink,
                "workload_api_socket_missing",
                f"workload api socket {self._socket_path} does not exist (is the SPIRE agent "
                "running?)",
                socket_path=self._socket_path,
            )
            return False
        published = False
        received = False
        channel = self._channel.get()
        code: grpc.StatusCode | None = None  # unless shared, the channel is renewed every time
        try:
            stub = workload_pb2_grpc.SpiffeWorkloadAPIStub(channel)  # type: ignore[no-untyped-call]
            fetch: FetchJWTBundles = stub.FetchJWTBundles
            call = fetch(workload_pb2.JWTBundlesRequest(), metadata=(SECURITY_HEADER,))
            try:
                async for response in call:
                    received = True
                    # Typed as a response, but grpc.aio yields None for an undecodable message.
                    message: workload_pb2.JWTBundlesResponse | None = response
                    if message is None:
                        # An update may be lost: start over on a fresh stream.
                        self._fail(
                            sink,
                            "workload_api_stream_broken",
                            "workload api sent a message that is not a JWTBundlesResponse",
                            code="DATA_LOSS",
                            details="undecodable message",
                        )
                        return published
                    if await self._handle(message, sink):
                        published = True
            except grpc.aio.AioRpcError as exc:
                if self._shared:
                    code = exc.code()
                self._rpc_failed(sink, exc, received=received)
                return published
            finally:
                call.cancel()
            if self._shared:
                code = grpc.StatusCode.OK
            self._fail(
                sink,
                "workload_api_stream_broken",
                "workload api stream ended by the agent",
                code=grpc.StatusCode.OK.name,
                details="stream closed",
            )
            return published
        finally:
            if self._shared and code is None:  # no status: cancelled (shutdown) or a bug
                code = grpc.StatusCode.OK
            await self._channel.failed(channel, code)

    def _rpc_failed(self, sink: KeySink, exc: grpc.aio.AioRpcError, *, received: bool) -> None:
        code = exc.code()
        details = exc.details() or ""
        if code == grpc.StatusCode.PERMISSION_DENIED:
            self._fail(
                sink,
                "workload_api_permission_denied",
                f"workload api denied the request (PERMISSION_DENIED: {details}): no registration "
                "entry matches this workload",
                code=code.name,
                details=details,
                hint=_PERMISSION_DENIED_HINT,
            )
            return
        event = "workload_api_stream_broken" if received else "workload_api_connect_failed"
        extra: dict[str, str] = {}
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            extra["hint"] = "the agent rejected the request; is this a SPIFFE Workload API socket?"
        elif code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            extra["hint"] = (
                f"a message exceeded the receive limit of {self.limits.max_grpc_message_bytes} "
                "bytes (core/limits.py); the last good keys stay in service"
            )
        self._fail(
            sink,
            event,
            f"workload api stream failed ({code.name}: {details})",
            code=code.name,
            details=details,
            **extra,
        )

    # -- one message ----------------------------------------------------------------------------
    async def _handle(self, response: workload_pb2.JWTBundlesResponse, sink: KeySink) -> bool:
        """Publish our trust domain's keys from one response; False if it was unusable."""
        td_id = self._trust_domain.as_spiffe_id()
        raw = self._select(response.bundles)
        if raw is None:
            self._fail(
                sink,
                "workload_api_bundle_missing",
                f"no bundle for trust domain {td_id} in workload api response",
                level="error",
                trust_domain_id=td_id,
                trust_domains=sorted(response.bundles.keys()),
            )
            return False
        try:
            if len(raw) > self.limits.inline_parse_bytes:
                keys = await asyncio.to_thread(self._parse, raw)  # never block the event loop
            else:
                keys = self._parse(raw)
        except SourceError as exc:
            self._fail(
                sink,
                "workload_api_bundle_malformed",
                f"bundle for trust domain {td_id} from the workload api: {exc}",
                level="error",
                trust_domain_id=td_id,
                error=str(exc),
            )
            return False
        changed = sink.publish(keys)
        log.debug("workload_api_bundle_received", kids=list(keys.kids), changed=changed)
        self._last_problem = None
        if not self._streaming:
            log.info(
                "workload_api_stream_connected",
                socket_path=self._socket_path,
                trust_domain_id=td_id,
                key_count=len(keys.keys),
            )
            self._set_streaming(sink, True)
        return True

    def _select(self, bundles: Mapping[str, bytes]) -> bytes | None:
        raw = bundles.get(self._trust_domain.as_spiffe_id())
        if raw is not None:
            return raw
        for name, value in bundles.items():
            try:
                if TrustDomain(name) == self._trust_domain:
                    return value
            except (PySpiffeError, ValueError):
                continue
        return None

    def _parse(self, raw: bytes) -> KeySet:
        too_big = self.limits.check_bundle_size(len(raw))
        if too_big is not None:
            raise SourceError(too_big)
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SourceError(f"bundle is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise SourceError("bundle is not a JSON object")
        entries = doc.get("keys")
        if not isinstance(entries, list):
            raise SourceError('bundle member "keys" is missing or not an array')
        # Entries without `use` count (the agent's JWT bundles carry none); any other use
        # (x509-svid, wit-svid, ...) is not a JWT-SVID signing key and is ignored.
        candidates = [
            e for e in entries if not isinstance(e, Mapping) or e.get("use", None) in _USES
        ]
        good, bad = parse_jwks(candidates, uses=None, max_keys=self.limits.max_keys)
        for err in bad:
            log.warning(
                "bundle_key_skipped",
                kid=err.kid,
                reason=err.reason,
                trust_domain_id=self._trust_domain.as_spiffe_id(),
            )
        if candidates and not good:
            raise SourceError(f"none of its {len(candidates)} JWT-SVID keys is usable")
        return KeySet(tuple(good))

    # -- state and logging ----------------------------------------------------------------------
    def _set_streaming(self, sink: KeySink, connected: bool) -> None:
        if self._streaming != connected:
            self._streaming = connected
            sink.set_streaming(connected)

    def _fail(
        self, sink: KeySink, event: str, message: str, *, level: str = "warning", **fields: object
    ) -> None:
        """Report one failure: not fresh any more, error to the sink, a (de-duplicated) log line."""
        self._set_streaming(sink, False)
        sink.report_error(message)
        problem = (event, str(fields.get("code", "")), str(fields.get("details", "")))
        now = self._clock.monotonic()
        repeat = problem == self._last_problem and now - self._last_warned_at < REPEAT_WARNING_EVERY
        if repeat:
            log.debug(event, repeated=True, **fields)
            return
        self._last_problem = problem
        self._last_warned_at = now
        if level == "error":
            log.error(event, **fields)
        else:
            log.warning(event, **fields)


_USES: frozenset[str | None] = frozenset({*JWT_SVID_USES, None})

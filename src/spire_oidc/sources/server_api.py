"""The ``server_api`` source: the SPIRE Server's own bundle, polled over its local API socket.

As SPIRE's Go provider does (spire-behavior.md §4.2, grpc-and-config.md §2.4): the unary
``/spire.api.server.bundle.v1.Bundle/GetBundle`` with ``output_mask.jwt_authorities = true`` on
the server's unix socket (``address`` starts with ``unix:``; no metadata, no authentication),
first immediately and then ``poll_interval`` after each poll completes (a fixed delay, no jitter).

* Keys keep the server's order. A malformed public key (PKIX DER) is skipped and logged with its
  kid, as SPIRE does.
* Unlike SPIRE, an authority whose ``expires_at`` (unix seconds, 0 = none) has passed is not
  published; a tainted one still is (it is being rotated out but still verifies tokens).
* Every successful call is published, changed or not: it is the freshness signal (the sink does
  the change detection). A failed call is reported and logged with its gRPC status code and
  details; the last good keys stay in service.
* Unlike SPIRE, every call has a deadline (``poll_interval`` clamped to 1-10 s), so a hung server
  cannot stall the poll loop; after a failed call the channel is rebuilt, so gRPC's own
  reconnect backoff (up to two minutes) never delays recovery once the server is back.

The legacy ``registration_api { socket_path }`` section is folded into a
:class:`~spire_oidc.config.model.ServerAPIConfig` by the config layer and works the same way.

This module imports gRPC and the generated stubs: import it only when the config selects it.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

import grpc
import grpc.aio
import structlog

from spire_oidc._proto.spire.api.server.bundle.v1 import bundle_pb2 as bundle_service_pb2
from spire_oidc._proto.spire.api.server.bundle.v1 import bundle_pb2_grpc
from spire_oidc._proto.spire.api.types import bundle_pb2 as types_pb2
from spire_oidc.config.model import ServerAPIConfig
from spire_oidc.core.clock import Clock
from spire_oidc.core.keys import JWTKey, KeySet, key_from_pkix
from spire_oidc.core.limits import LIMITS, KeyLimits
from spire_oidc.errors import KeyParseError, SourceError
from spire_oidc.sources.base import KeySink

log = structlog.get_logger(__name__)

GET_BUNDLE_METHOD = "/spire.api.server.bundle.v1.Bundle/GetBundle"
# Each call's deadline is poll_interval clamped to [MIN_CALL_TIMEOUT, MAX_CALL_TIMEOUT].
MIN_CALL_TIMEOUT = 1.0
MAX_CALL_TIMEOUT = 10.0


class SkippedKey(NamedTuple):
    """A JWT authority that is not published, and why."""

    kid: str
    reason: str
    expired: bool = False


def bundle_keys(
    bundle: types_pb2.Bundle, *, now: float, limits: KeyLimits = LIMITS
) -> tuple[KeySet, list[SkippedKey]]:
    """The publishable JWT authorities of a bundle, in the server's order, and the skipped ones.

    Skipped: authorities whose ``expires_at`` has passed (``expires_at <= now``; 0 means no
    expiry), malformed or unsupported public keys, and repeated kids (the first one is kept).
    Tainted authorities are kept. More than ``limits.max_keys`` authorities raise
    :class:`SourceError` (the bundle is refused; the last good keys stay).
    """
    count = len(bundle.jwt_authorities)
    if count > limits.max_keys:
        raise SourceError(
            f"bundle has {count} JWT authorities, more than the limit of {limits.max_keys}"
        )
    keys: list[JWTKey] = []
    skipped: list[SkippedKey] = []
    seen: set[str] = set()
    for authority in bundle.jwt_authorities:
        kid = authority.key_id
        if authority.expires_at and authority.expires_at <= now:
            reason = f"expired at {authority.expires_at} (unix seconds)"
            skipped.append(SkippedKey(kid, reason, expired=True))
            continue
        try:
            key = key_from_pkix(kid, authority.public_key)
        except KeyParseError as err:
            skipped.append(SkippedKey(err.kid or kid, err.reason))
            continue
        if key.kid in seen:
            skipped.append(SkippedKey(kid, "duplicate kid; the first key with it is kept"))
            continue
        seen.add(key.kid)
        keys.append(key)
    return KeySet(tuple(keys)), skipped


class ServerAPISource:
    """Polls ``Bundle/GetBundle`` on the SPIRE Server's local API socket."""

    kind = "server_api"

    def __init__(
        self,
        config: ServerAPIConfig,
        *,
        clock: Clock,
        call_timeout: float | None = None,
        limits: KeyLimits = LIMITS,
    ) -> None:
        self._config = config
        self._clock = clock
        self._limits = limits
        self._timeout = (
            call_timeout
            if call_timeout is not None
            else min(max(config.poll_interval, MIN_CALL_TIMEOUT), MAX_CALL_TIMEOUT)
        )
        self._channel: grpc.aio.Channel | None = None
        self._stub: bundle_pb2_grpc.BundleAsyncStub | None = None
        self._failing = False
        self._reported_skips: frozenset[tuple[str, str]] = frozenset()

    @property
    def poll_interval(self) -> float:
        return self._config.poll_interval

    @property
    def call_timeout(self) -> float:
        """The deadline of each GetBundle call, in seconds."""
        return self._timeout

    async def run(self, sink: KeySink) -> None:
        """Poll forever (first poll immediately); returns only when cancelled."""
        log.info(
            "server_api_polling_started",
            address=self._config.address,
            poll_interval=self.poll_interval,
            legacy_registration_api=self._config.legacy_registration_api,
        )
        try:
            while True:
                try:
                    await self.poll_once(sink)
                except Exception as exc:  # a bug must not end the poll loop: log, keep polling
                    log.exception("server_api_poll_crashed", address=self._config.address)
                    sink.report_error(f"GetBundle on {self._config.address}: internal error: {exc}")
                    await self._close_channel()
                await self._clock.sleep(self.poll_interval)
        finally:
            await self._close_channel()

    async def poll_once(self, sink: KeySink) -> bool:
        """Fetch and publish the bundle once; failures are reported and logged, never raised.

        Returns whether the call succeeded.
        """
        stub = self._get_stub()
        request = bundle_service_pb2.GetBundleRequest(
            output_mask=types_pb2.BundleMask(jwt_authorities=True)
        )
        try:
            # Typed as a Bundle, but grpc.aio returns None for an undecodable response.
            bundle: types_pb2.Bundle | None = await stub.GetBundle(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            await self._failed(sink, exc.code().name, exc.details() or "")
            return False
        if bundle is None:
            await self._failed(sink, "DATA_LOSS", "response is not a spire.api.types.Bundle")
            return False
        if not bundle.trust_domain:
            # A SPIRE server always names its trust domain (the mask keeps it). An empty message
            # decodes as a keyless Bundle: taken at face value it would revoke every key.
            await self._failed(sink, "DATA_LOSS", "response has no trust_domain (empty bundle)")
            return False
        try:
            # Up to max_keys DER keys: parsed in a worker thread, never on the event loop.
            keys, skipped = await asyncio.to_thread(
                bundle_keys, bundle, now=self._clock.now(), limits=self._limits
            )
        except SourceError as exc:
            await self._failed(sink, "RESOURCE_EXHAUSTED", str(exc))
            return False
        if self._failing:
            log.info("server_api_fetch_recovered", address=self._config.address)
            self._failing = False
        self._log_skipped(skipped)
        changed = sink.publish(keys)
        log.debug(
            "server_api_bundle_fetched",
            trust_domain=bundle.trust_domain,
            kids=list(keys.kids),
            changed=changed,
        )
        return True

    async def _failed(self, sink: KeySink, code: str, details: str) -> None:
        log.warning(
            "server_api_fetch_failed", address=self._config.address, code=code, details=details
        )
        sink.report_error(f"GetBundle on {self._config.address} failed: {code}: {details}")
        self._failing = True
        # A fresh channel next time: do not wait for gRPC's own reconnect backoff.
        await self._close_channel()

    def _log_skipped(self, skipped: list[SkippedKey]) -> None:
        # Once per (kid, reason) while it persists, like SPIRE which reconverts only on a change.
        current = frozenset((s.kid, s.reason) for s in skipped)
        for s in skipped:
            if (s.kid, s.reason) in self._reported_skips:
                continue
            if s.expired:
                log.info("bundle_key_expired", kid=s.kid, reason=s.reason)
            else:
                log.warning("bundle_key_skipped", kid=s.kid, reason=s.reason)
        self._reported_skips = current

    def _get_stub(self) -> bundle_pb2_grpc.BundleAsyncStub:
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(
                self._config.address, options=self._limits.grpc_options()
            )
            self._stub = bundle_pb2_grpc.BundleStub(self._channel)
        return self._stub

    async def _close_channel(self) -> None:
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            await channel.close()

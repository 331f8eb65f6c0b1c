"""TLS from the provider's own X.509-SVID: the ``serving_svid`` listener and its context.

The listener's context holds no certificate of its own. Its SNI callback (which OpenSSL calls
for every ClientHello, with or without a server name) hands each new connection the context of
the newest valid SVID, so a rotation pushed by the agent takes effect for the next handshake and
never touches connections already open. With no SVID yet, or only an expired one, the handshake
is refused: an expired SVID is never served.

Python's ``ssl`` loads keys only from files. The SVID's PEM is written to an anonymous in-memory
file (``memfd_create``: no name in any directory, gone when closed) and loaded from
``/proc/self/fd``; where that is not available, to a file in a fresh 0700 directory that is
removed at once.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence

import structlog
from aiohttp import web

from spire_oidc.core.identity import IdentitySink, ServingIdentity
from spire_oidc.core.state import ProcessState
from spire_oidc.http.connlimit import ConnectionCap
from spire_oidc.http.listener_kinds import Description, Work, _Served, start_tls
from spire_oidc.http.listeners import bind_tcp
from spire_oidc.http.timeouts import Timeouts
from spire_oidc.http.tls import server_context

log = structlog.get_logger(__name__)

WAITING_KEY = "serving_svid"


def context_from_pem(chain_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """A server context holding this chain and key (raises ``ssl.SSLError`` on a bad pair)."""
    ctx = server_context()
    pem = chain_pem + b"\n" + key_pem
    memfd = getattr(os, "memfd_create", None)
    if memfd is not None and os.path.isdir("/proc/self/fd"):
        fd = memfd("spire-oidc-svid", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(fd, pem)
            ctx.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return ctx
    with tempfile.TemporaryDirectory(prefix="spire-oidc-svid-") as directory:
        path = os.path.join(directory, "svid.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, pem)
        finally:
            os.close(fd)
        ctx.load_cert_chain(path)
    return ctx


class SvidContext:
    """Owns the ``serving_svid`` listener's context; an :class:`IdentitySink`."""

    def __init__(
        self,
        state: ProcessState,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self._now = now
        self._current: tuple[ServingIdentity, ssl.SSLContext] | None = None
        self._problem: str | None = None
        self.context = server_context()
        self.context.sni_callback = self._select
        self.swaps = 0  # SVIDs put in service (tests and metrics read it)
        state.blocking.add(WAITING_KEY)  # no valid SVID: not ready (nothing to serve TLS with)
        self._update_waiting()

    @property
    def identity(self) -> ServingIdentity | None:
        """The SVID new connections get, if it is still valid."""
        current = self._current
        if current is None or current[0].expired(self._now()):
            return None
        return current[0]

    def _select(self, sslobj: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> int | None:
        current = self._current
        if current is None or current[0].expired(self._now()):
            # No valid SVID: refuse the handshake rather than serve an expired certificate.
            return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
        sslobj.context = current[1]
        return None

    def offer_identity(self, identity: ServingIdentity) -> bool:
        if identity.expired(self._now()):
            self.identity_problem(f"refused an expired X.509-SVID (serial {identity.serial:x})")
            return False
        current = self._current
        if current is not None and current[0] == identity:
            return True  # a re-delivery after a reconnect: nothing to swap
        try:
            ctx = context_from_pem(identity.chain_pem, identity.key_pem)
        except (ssl.SSLError, OSError, ValueError) as exc:
            self.identity_problem(f"X.509-SVID {identity.spiffe_id} could not be loaded: {exc}")
            return False
        self._current = (identity, ctx)
        self.swaps += 1
        self._update_waiting()
        return True

    def identity_problem(self, reason: str | None) -> None:
        self._problem = reason
        self._update_waiting()

    def refresh(self) -> None:
        """Re-evaluate readiness (an SVID may have expired since the last event)."""
        self._update_waiting()

    def _update_waiting(self) -> None:
        waiting = self._state.waiting
        current = self._current
        now = self._now()
        if current is None:
            reason = "no X.509-SVID from the SPIRE agent yet"
        elif current[0].expired(now):
            reason = (
                f"the X.509-SVID (serial {current[0].serial:x}) expired "
                f"{now - current[0].not_after:.0f}s ago and the agent sent no new one"
            )
        else:
            waiting.pop(WAITING_KEY, None)
            return
        if self._problem:
            reason += f" ({self._problem})"
        waiting[WAITING_KEY] = reason

    async def watch_expiry(self, every: float = 1.0) -> None:
        """Keep readiness true to the clock: an SVID that expires unrenewed turns it false."""
        while True:
            await asyncio.sleep(every)
            self.refresh()


class SvidListener(_Served):
    """``serving_svid``: TLS with the provider's own X.509-SVID. Connections count against the
    cap from accept (:class:`CountedTlsSite`); the SVID stream itself is background work handed
    in by the composition root (gRPC stays out of the HTTP layer)."""

    def __init__(
        self,
        stream: Callable[[IdentitySink], Awaitable[None]],
        *,
        addr: str,
        host: str,
        port: int,
        socket_path: str,
        state: ProcessState,
        server: web.Server,
        timeouts: Timeouts,
        cap: ConnectionCap,
        now: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(server, timeouts=timeouts, cap=cap)
        self.svid = SvidContext(state, now=now)
        self._stream = stream
        self._addr, self._host, self._port = addr, host, port
        self._socket_path = socket_path

    def bind(self) -> None:
        self.socks = bind_tcp(self._addr, host=self._host or None, port=self._port)

    async def start(self) -> None:
        await start_tls(self, self.svid.context)

    def background(self) -> Sequence[Work]:
        svid = self.svid
        return (
            ("serving_svid_stream", lambda: self._stream(svid)),
            ("serving_svid_expiry", svid.watch_expiry),
        )

    def describe(self) -> Description:
        return Description(
            "serving_https_svid",
            {"address": self.addresses, "socket_path": self._socket_path},
        )

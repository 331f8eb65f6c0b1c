"""Which TLS context a connection gets, decided from its ClientHello before the handshake.

* ALPN exactly ``["acme-tls/1"]`` (Go autocert's ``wantsTokenCert``): the name's tls-alpn-01
  challenge certificate while an authorization is pending (held here, or with shared storage
  published by the replica that orders), else the handshake is refused. Any
  other client never gets a challenge certificate, even during a validation.
* An SNI name with a certificate: that certificate (the current one; a renewal swaps the
  context for new connections, open ones keep theirs).
* A configured name still waiting for its first certificate: the handshake waits for it up to
  ``wait_timeout`` seconds (the client sees a slow handshake, not a wrong certificate).
* No SNI (a client that dialled an IP): the first configured name's certificate.
* Any other SNI: refused with ``unrecognized_name``, like autocert's host whitelist.

Everything here runs on the event loop; the manager swaps contexts in the same thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ssl
from collections.abc import Awaitable, Callable, Sequence

from spire_oidc.acme.clienthello import ClientHello


class Refusal(enum.IntEnum):
    """The TLS alert sent instead of a handshake (RFC 8446 §6.2 codes)."""

    INTERNAL_ERROR = 80
    UNRECOGNIZED_NAME = 112


def normalize(server_name: str | None) -> str | None:
    if not server_name:
        return None
    return server_name.lower().rstrip(".") or None


class CertificateTable:
    """The serving and challenge contexts by name."""

    def __init__(self, names: Sequence[str], *, wait_timeout: float = 10.0) -> None:
        self.names = tuple(names)
        self.wait_timeout = wait_timeout
        self._serving: dict[str, ssl.SSLContext] = {}
        self._challenges: dict[str, ssl.SSLContext] = {}
        self._ready: dict[str, asyncio.Event] = {}
        self.refusals = 0
        # With shared storage: the challenge another replica published for a configured name.
        self.challenge_lookup: Callable[[str], Awaitable[ssl.SSLContext | None]] | None = None

    def _event(self, name: str) -> asyncio.Event:
        event = self._ready.get(name)
        if event is None:
            event = self._ready[name] = asyncio.Event()
        return event

    def install(self, name: str, ctx: ssl.SSLContext) -> None:
        """Serve ``ctx`` for ``name`` on new connections from now on."""
        self._serving[name] = ctx
        self._event(name).set()

    def has_certificate(self, name: str) -> bool:
        return name in self._serving

    def set_challenge(self, name: str, ctx: ssl.SSLContext) -> None:
        self._challenges[name] = ctx

    def clear_challenge(self, name: str) -> None:
        self._challenges.pop(name, None)

    def _default(self) -> ssl.SSLContext | None:
        for name in self.names:
            ctx = self._serving.get(name)
            if ctx is not None:
                return ctx
        return None

    async def choose(self, hello: ClientHello) -> ssl.SSLContext | Refusal:
        """The context for this ClientHello, or the alert to refuse it with."""
        name = normalize(hello.server_name)
        if hello.wants_acme_tls:
            challenge = self._challenges.get(name) if name else None
            if challenge is None and name in self.names and self.challenge_lookup is not None:
                challenge = await self.challenge_lookup(name)
            return challenge if challenge is not None else self._refuse(Refusal.UNRECOGNIZED_NAME)
        if name is None:
            default = self._default()
            if default is None and self.names:
                await self._wait(self.names[0])
                default = self._default()
            return default if default is not None else self._refuse(Refusal.INTERNAL_ERROR)
        if name not in self.names:
            return self._refuse(Refusal.UNRECOGNIZED_NAME)
        ctx = self._serving.get(name)
        if ctx is None:
            await self._wait(name)
            ctx = self._serving.get(name)
        return ctx if ctx is not None else self._refuse(Refusal.INTERNAL_ERROR)

    async def _wait(self, name: str) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event(name).wait(), self.wait_timeout)

    def _refuse(self, refusal: Refusal) -> Refusal:
        self.refusals += 1
        return refusal

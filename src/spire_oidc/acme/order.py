"""One certificate order, driven from the event loop, each ACME request run in the worker.

new order → for each pending authorization: install the challenge answer (tls-alpn-01
certificate or http-01 token, on the event loop), tell the CA → poll the authorizations →
finalize with the CSR → poll the order → download the chain. Polling starts at 25 ms and
doubles to 2 s, or follows the CA's ``Retry-After`` (the library's own helpers sleep a fixed
second: acme.md §2.3). Challenge answers are removed whatever happens, and after a failure the
authorizations still pending are deactivated (best effort), as autocert does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import structlog
from acme import challenges, messages

from spire_oidc.acme.certs import (
    CertEntry,
    EntryError,
    check_entry,
    context_from_pem,
    make_csr,
    new_key,
    parse_chain,
)
from spire_oidc.acme.http01 import Http01Handler
from spire_oidc.acme.selector import CertificateTable
from spire_oidc.acme.session import AcmeError, AcmeSession, problem_document
from spire_oidc.acme.tlsalpn import ACME_TLS_ALPN, challenge_certificate
from spire_oidc.acme.worker import Worker
from spire_oidc.core.backoff import Backoff, BackoffPolicy
from spire_oidc.core.clock import Clock
from spire_oidc.storage.base import StorageError

log = structlog.get_logger("spire_oidc.acme")

TLS_ALPN_01 = "tls-alpn-01"
HTTP_01 = "http-01"
ORDER_TIMEOUT = 300.0
# Polling starts at 25 ms and doubles to 2 s (no jitter); the CA's Retry-After, up to a minute,
# is a floor.
POLL_BACKOFF = BackoffPolicy(0.025, 2.0, jitter=0.0, max_retry_after=60.0)
WITHDRAW_TIMEOUT = 5.0


class ChallengePublisher(Protocol):
    """Where the lock holder shares challenge answers with the other replicas (the shared
    storage), so that any replica answers any validation."""

    async def publish(self, typ: str, ident: str, data: bytes) -> None: ...

    async def withdraw(self, typ: str, ident: str) -> None: ...


@dataclass
class Responders:
    """Where challenge answers are installed (the TLS table, the http-01 handler, and with
    shared storage the publisher: written *before* the CA is told to validate)."""

    table: CertificateTable
    http01: Http01Handler | None
    types: Sequence[str]  # preference order
    publisher: ChallengePublisher | None = None


class Order:
    """Obtains one certificate for one name."""

    def __init__(
        self,
        name: str,
        *,
        session: AcmeSession,
        worker: Worker,
        responders: Responders,
        clock: Clock,
    ) -> None:
        self.name = name
        self._session = session
        self._worker = worker
        self._responders = responders
        self._clock = clock
        self._installed: list[tuple[str, str]] = []  # (type, token)
        self._authzs: dict[str, messages.AuthorizationResource] = {}

    async def run(self) -> CertEntry:
        """The new certificate (checked: key, name, validity); raises :class:`AcmeError`."""
        try:
            async with asyncio.timeout(ORDER_TIMEOUT):
                return await self._run()
        except TimeoutError as exc:
            raise AcmeError(
                f"{self.name}: the order did not complete within {ORDER_TIMEOUT:.0f}s",
                transient=True,
            ) from exc
        except Exception:
            await self._deactivate_pending()
            raise
        finally:
            await self._remove_answers()

    async def _run(self) -> CertEntry:
        session, call = self._session, self._worker.call
        key = new_key()
        csr = make_csr(self.name, key)
        orderr = await call(partial(session.new_order, csr))
        self._authzs = {a.uri: a for a in orderr.authorizations}
        log.info("acme_order_created", name=self.name, order=orderr.uri)
        for authzr in orderr.authorizations:
            if authzr.body.status == messages.STATUS_VALID:
                continue  # the CA reused an earlier authorization
            challb = self._pick(authzr)
            await self._install(challb)
            await call(partial(session.answer, challb, challb.chall.response(session.jwk)))
        for authzr in orderr.authorizations:
            await self._await_valid(authzr)
        order = await self._finalize(orderr)
        chain_pem = await call(partial(session.download, str(order.certificate)))
        try:
            entry = CertEntry(key, parse_chain(chain_pem))
            check_entry(entry, self.name, self._clock.now())
        except EntryError as exc:
            raise AcmeError(f"{self.name}: the CA returned an unusable certificate: {exc}") from exc
        return entry

    def _pick(self, authzr: messages.AuthorizationResource) -> messages.ChallengeBody:
        offered = {c.chall.typ: c for c in authzr.body.challenges}
        for typ in self._responders.types:
            if typ == HTTP_01 and self._responders.http01 is None:
                continue
            if typ in offered:
                return offered[typ]
        raise AcmeError(
            f"{self.name}: the CA offers none of the configured challenge types "
            f"{list(self._responders.types)} (offered: {sorted(offered)})"
        )

    async def _install(self, challb: messages.ChallengeBody) -> None:
        chall = challb.chall
        if not isinstance(chall, challenges.KeyAuthorizationChallenge):
            raise AcmeError(f"{self.name}: the CA offered an unexpected {chall.typ} challenge")
        key_authorization = chall.key_authorization(self._session.jwk)
        if chall.typ == TLS_ALPN_01:
            chain, key_pem = challenge_certificate(self.name, key_authorization)
            ctx = context_from_pem(chain, key_pem, alpn=[ACME_TLS_ALPN])
            self._responders.table.set_challenge(self.name, ctx)
            self._installed.append((TLS_ALPN_01, self.name))
            await self._publish(TLS_ALPN_01, self.name, key_pem + chain)
        else:
            http01 = self._responders.http01
            if http01 is None:  # _pick() only chooses http-01 when there is a handler
                raise AcmeError(f"{self.name}: no http-01 listener to answer the challenge")
            token = chall.encode("token")
            http01.tokens[token] = key_authorization
            self._installed.append((HTTP_01, token))
            await self._publish(HTTP_01, token, key_authorization.encode("ascii"))
        log.info("acme_challenge_ready", name=self.name, challenge=chall.typ)

    async def _publish(self, typ: str, ident: str, data: bytes) -> None:
        publisher = self._responders.publisher
        if publisher is None:
            return
        try:
            await publisher.publish(typ, ident, data)
        except StorageError as exc:  # the CA is not told: other replicas could not answer
            raise AcmeError(
                f"{self.name}: the {typ} answer cannot be shared with the other replicas "
                f"(storage {exc.reason})",
                transient=True,
            ) from exc

    async def _remove_answers(self) -> None:
        installed, self._installed = list(self._installed), []
        for typ, ident in installed:
            if typ == TLS_ALPN_01:
                self._responders.table.clear_challenge(ident)
            elif self._responders.http01 is not None:
                self._responders.http01.tokens.pop(ident, None)
        publisher = self._responders.publisher
        if publisher is None:
            return
        for typ, ident in installed:
            try:
                await asyncio.wait_for(publisher.withdraw(typ, ident), WITHDRAW_TIMEOUT)
            except (StorageError, TimeoutError) as exc:
                log.warning(
                    "acme_challenge_withdraw_failed",
                    challenge=typ,
                    error=str(exc) or type(exc).__name__,
                )

    async def _await_valid(self, authzr: messages.AuthorizationResource) -> None:
        pause = Backoff(POLL_BACKOFF)
        while True:
            authzr, retry_after = await self._worker.call(
                partial(self._session.poll_authorization, authzr)
            )
            self._authzs[authzr.uri] = authzr
            status = authzr.body.status
            if status == messages.STATUS_VALID:
                return
            if status != messages.STATUS_PENDING:
                raise self._authz_failure(authzr)
            await self._clock.sleep(pause.next_delay(retry_after))

    def _authz_failure(self, authzr: messages.AuthorizationResource) -> AcmeError:
        for challb in authzr.body.challenges:
            if challb.error is not None:
                err = challb.error
                detail = f"{err.typ}: {err.detail}" if err.detail else str(err.typ)
                return AcmeError(
                    f"{self.name}: {challb.chall.typ} validation failed: {detail}",
                    problem=problem_document(err),
                )
        return AcmeError(f"{self.name}: the authorization is {authzr.body.status}")

    async def _try_finalize(self, orderr: messages.OrderResource) -> messages.Order | None:
        """Send the CSR; None when the CA says the order is not ready yet."""
        try:
            return await self._worker.call(partial(self._session.finalize, orderr))
        except AcmeError as exc:
            if exc.problem and str(exc.problem.get("type", "")).endswith(":orderNotReady"):
                return None
            raise

    async def _finalize(self, orderr: messages.OrderResource) -> messages.Order:
        order = await self._try_finalize(orderr)
        retry_after: float | None = None
        pause = Backoff(POLL_BACKOFF)
        while True:
            if order is not None:
                if order.status == messages.STATUS_VALID and order.certificate:
                    return order
                if order.status == messages.STATUS_INVALID:
                    err = order.error
                    raise AcmeError(
                        f"{self.name}: the order is invalid"
                        + (f": {err.typ}: {err.detail or ''}" if err is not None else ""),
                        problem=problem_document(err) if err is not None else None,
                    )
            await self._clock.sleep(pause.next_delay(retry_after))
            polled, retry_after = await self._worker.call(partial(self._session.poll_order, orderr))
            order = polled
            if polled.status == messages.STATUS_READY:  # the CA still waits for the CSR
                order = await self._try_finalize(orderr)

    async def _deactivate_pending(self) -> None:
        for authzr in self._authzs.values():
            if authzr.body.status != messages.STATUS_PENDING:
                continue
            with contextlib.suppress(AcmeError, TimeoutError, RuntimeError):
                await asyncio.wait_for(
                    self._worker.call(partial(self._session.deactivate, authzr)), 10.0
                )

"""The ACME manager: one loop per name that loads, orders, installs and renews its certificate.

* Start-up: each name's cache entry is read (in the worker); a valid one is served at once and
  never re-ordered (CA rate limits). The others are ordered right away, not on a first
  handshake; until then the name is listed in ``ProcessState.waiting`` (health ``?verbose``).
* Renewal: at Go autocert's time (:func:`~spire_oidc.acme.certs.renewal_time`). Just before it,
  the cache is read again: a certificate another instance already renewed there is adopted
  (shared ``cache_dir``). Each renewal has a new key. The new context serves new connections;
  open connections keep theirs, so nothing is dropped.
* Failures: logged with the CA's problem document, retried with exponential backoff
  (:mod:`spire_oidc.core.backoff`: 1 s to 5 min for transient failures, 1 min to 1 h when the CA
  refused), never sooner than the CA's ``Retry-After``; the delay logged is the delay slept.
  The current certificate keeps being served meanwhile.
* The account: the key comes from the cache (``acme_account+key``, created on the first order
  like autocert); the account is (re-)registered with it before the first order of a session,
  which returns the existing account when there is one. A session is dropped after a failure,
  so the next attempt starts from the directory again (a CA that lost its state is handled).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

import structlog

from spire_oidc.acme.cache import ACCOUNT_KEY, LEGACY_ACCOUNT_KEY, AsyncCache, CacheError
from spire_oidc.acme.certs import (
    CertEntry,
    EntryError,
    PrivateKey,
    context_from_pem,
    decode_entry,
    key_to_pem,
    new_key,
    parse_private_key,
    renewal_time,
    utc,
)
from spire_oidc.acme.order import Order, Responders
from spire_oidc.acme.session import AcmeError, AcmeSession, Eab
from spire_oidc.acme.worker import Worker
from spire_oidc.core.backoff import BackoffPolicy
from spire_oidc.core.clock import Clock
from spire_oidc.core.events import EventMetrics, NullMetrics
from spire_oidc.core.state import ProcessState

if TYPE_CHECKING:
    from spire_oidc.acme.replicas import Replicas

log = structlog.get_logger("spire_oidc.acme")

MAX_RETRY_AFTER = 24 * 3600.0
# 1 s to 5 min for transient failures, 1 min to 1 h when the CA refused; 10 % jitter below the
# bound; the CA's Retry-After (at most a day) is a floor.
TRANSIENT_BACKOFF = BackoffPolicy(1.0, 300.0, jitter=0.1, max_retry_after=MAX_RETRY_AFTER)
REFUSED_BACKOFF = BackoffPolicy(60.0, 3600.0, jitter=0.1, max_retry_after=MAX_RETRY_AFTER)
_MAX_SLEEP = 3600.0  # long waits are re-checked against the wall clock (suspend, clock jumps)


def backoff(failures: int, error: AcmeError, rng: random.Random | None = None) -> float:
    """Seconds before the next attempt after ``failures`` consecutive failures (≥ 1)."""
    policy = TRANSIENT_BACKOFF if error.transient else REFUSED_BACKOFF
    return policy.delay(max(1, failures) - 1, rng or random.Random(), retry_after=error.retry_after)


class AcmeManager:
    """Keeps a valid certificate installed for every name."""

    def __init__(
        self,
        names: Sequence[str],
        *,
        directory_url: str,
        email: str,
        eab: Eab | None,
        verify: str | bool,
        cache: AsyncCache,
        responders: Responders,
        state: ProcessState,
        clock: Clock,
        rng: random.Random | None = None,
        worker: Worker | None = None,
        replicas: Replicas | None = None,
    ) -> None:
        self.names = tuple(names)
        self._directory_url = directory_url
        self._email = email
        self._eab = eab
        self._verify = verify
        self._cache = cache
        self._responders = responders
        self._state = state
        self._clock = clock
        self._rng = rng or random.Random()
        self._worker = worker or Worker()
        self.replicas = replicas  # shared storage: the replicas' loop (acme/replicas.py)
        self._session: AcmeSession | None = None
        self._session_lock = asyncio.Lock()
        self._account_key: PrivateKey | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.entries: dict[str, CertEntry] = {}
        self.renew_at: dict[str, float] = {}
        self.metrics: EventMetrics = NullMetrics()  # the daemon plugs in Prometheus when enabled
        self.orders = 0  # orders created by this manager (tests, bench)
        self.failures = 0
        self.installed = 0

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Serve what the cache holds, then order the rest and keep everything renewed."""
        for name in self.names:
            entry = await self.read_entry(name)
            if entry is not None:
                self.install(name, entry, source="cache")
            else:
                self._state.waiting[f"acme {name}"] = "waiting for a certificate"
        waiting = [n for n in self.names if n not in self.entries]
        if waiting:
            log.info("acme_waiting_for_certificates", names=waiting)
        for name in self.names:
            loop = self._maintain(name) if self.replicas is None else self.replicas.maintain(name)
            self._tasks.append(asyncio.create_task(loop, name=f"acme:{name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._worker.stop()
        if self._session is not None:
            self._session.close()
            self._session = None

    # -- the per-name loop -------------------------------------------------------------------
    async def _maintain(self, name: str) -> None:
        failures = 0
        while True:
            if name in self.entries:
                await self._sleep_until(self.renew_at[name])
                adopted = await self.read_entry(name, newer_than=self.entries[name])
                if adopted is not None:
                    self.install(name, adopted, source="cache (renewed elsewhere)")
                    continue
            try:
                entry = await self.obtain(name)
            except AcmeError as exc:
                failures += 1
                delay = backoff(failures, exc, self._rng)
                self.failed(name, exc, failures, delay)
                await self._clock.sleep(delay)
                continue
            failures = 0
            await self.store_entry(name, entry)
            self.install(name, entry, source="renewed" if name in self.entries else "issued")

    async def _sleep_until(self, when: float) -> None:
        # A wall-clock deadline, not an event: re-read the clock at least hourly.
        while (left := when - self._clock.now()) > 0:
            await self._clock.sleep(min(left, _MAX_SLEEP))

    async def obtain(self, name: str) -> CertEntry:
        """Order a certificate for ``name`` now (raises :class:`AcmeError`)."""
        try:
            session = await self._ready_session()
            self.orders += 1
            self.metrics.acme_order(name)
            order = Order(
                name,
                session=session,
                worker=self._worker,
                responders=self._responders,
                clock=self._clock,
            )
            return await order.run()
        except AcmeError:
            self._session = None  # start again from the directory next time
            raise
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # a bug or an unexpected library error: logged, retried
            self._session = None
            log.exception("acme_unexpected_error", name=name)
            raise AcmeError(f"{name}: unexpected {type(exc).__name__}: {exc}") from exc

    def failed(self, name: str, exc: AcmeError, failures: int, delay: float) -> None:
        self.failures += 1
        self.metrics.acme_failure(name, "transient" if exc.transient else "refused")
        now = self._clock.now()
        entry = self.entries.get(name)
        log.error(
            "acme_certificate_failed",
            name=name,
            error=str(exc),
            problem=exc.problem,
            transient=exc.transient,
            retry_after=exc.retry_after,
            attempt=failures,
            next_attempt_in_seconds=round(delay, 1),
            serving=entry.serial if entry is not None else None,
            expires=utc(entry.not_after) if entry is not None else None,
        )
        if entry is None:
            self._state.waiting[f"acme {name}"] = (
                f"waiting for a certificate: attempt {failures} failed ({exc}); "
                f"next attempt in {delay:.0f}s"
            )
        elif now >= entry.not_after:
            self._state.waiting[f"acme {name}"] = (
                f"the certificate expired at {utc(entry.not_after)} and renewal fails ({exc})"
            )

    # -- the account -------------------------------------------------------------------------
    async def _ready_session(self) -> AcmeSession:
        async with self._session_lock:
            if self._session is not None:
                return self._session
            if self._account_key is None:
                self._account_key = await self._load_account_key()
            session = AcmeSession(self._directory_url, self._account_key, verify=self._verify)
            await self._worker.call(session.connect)
            if session.external_account_required() and self._eab is None:
                raise AcmeError(
                    "the ACME server requires external account binding: set "
                    "acme { eab { key_id, hmac_key } } to the credentials the CA issued"
                )
            url = await self._worker.call(partial(session.register, self._email, self._eab))
            log.info("acme_tos_accepted", url=session.terms_of_service)
            log.info("acme_account_ready", account=url, directory_url=self._directory_url)
            self._session = session
            return session

    async def _load_account_key(self) -> PrivateKey:
        """The cached account key, or a new one written to the cache (with shared storage:
        created once; a replica that loses the race uses the winner's)."""
        for name in (ACCOUNT_KEY, LEGACY_ACCOUNT_KEY):
            try:
                data = await self._cache.get(name)
            except CacheError as exc:
                log.error("acme_cache_read_failed", entry=name, error=str(exc))
                continue
            if data is None:
                continue
            try:
                return parse_private_key(data)
            except EntryError as exc:
                moved = None
                with contextlib.suppress(CacheError):
                    moved = await self._cache.set_aside(name)
                log.error(
                    "acme_account_key_invalid",
                    entry=name,
                    error=str(exc),
                    moved_to=moved,
                    detail="a new account key is created",
                )
        key = new_key()
        try:
            stored = await self._cache.put_new(ACCOUNT_KEY, key_to_pem(key))
        except CacheError as exc:
            if self.replicas is not None:  # an unsaved key would give each replica an account
                raise AcmeError(f"the account key cannot be stored: {exc}", transient=True) from exc
            log.error("acme_cache_write_failed", entry=ACCOUNT_KEY, error=str(exc))
            return key
        try:
            return parse_private_key(stored)
        except EntryError as exc:
            raise AcmeError(f"the stored account key is unusable: {exc}", transient=True) from exc

    # -- the cache and the table -------------------------------------------------------------
    async def read_entry(self, name: str, newer_than: CertEntry | None = None) -> CertEntry | None:
        """The cached entry for ``name`` if usable (and, with ``newer_than``, newer and not due)."""
        try:
            data = await self._cache.get(name)
        except CacheError as exc:
            log.error("acme_cache_read_failed", entry=name, error=str(exc))
            return None
        if data is None:
            return None
        try:
            entry = decode_entry(data, name, self._clock.now())
        except EntryError as exc:
            if newer_than is None:
                log.warning(
                    "acme_cache_entry_unusable",
                    name=name,
                    cache=self._cache.describe(),
                    reason=str(exc),
                    detail="a new certificate is ordered and replaces it",
                )
            return None
        if newer_than is not None:
            if entry.not_after <= newer_than.not_after:
                return None
            if renewal_time(entry.not_before, entry.not_after, self._rng) <= self._clock.now():
                return None
        return entry

    def decode(self, name: str, data: bytes) -> CertEntry | None:
        """A usable entry from stored bytes, or None (logged at debug: polls repeat it)."""
        try:
            return decode_entry(data, name, self._clock.now())
        except EntryError as exc:
            log.debug("acme_stored_entry_unusable", name=name, reason=str(exc))
            return None

    async def store_entry(self, name: str, entry: CertEntry) -> bool:
        """Write the entry to the cache; False (logged) when that failed."""
        try:
            await self._cache.put(name, entry.encode())
        except CacheError as exc:
            log.error("acme_cache_write_failed", entry=name, error=str(exc))
            return False
        return True

    def install(self, name: str, entry: CertEntry, *, source: str) -> None:
        """Serve ``entry`` for ``name`` on new connections and schedule its renewal."""
        ctx = context_from_pem(entry.chain_pem(), entry.key_pem())
        self._responders.table.install(name, ctx)
        first = name not in self.entries
        self.entries[name] = entry
        # Replicas draw the same jitter (seeded by the serial): they are due together.
        rng = self._rng if self.replicas is None else random.Random(entry.serial)
        self.renew_at[name] = renewal_time(entry.not_before, entry.not_after, rng)
        self.installed += 1
        self.metrics.certificate_loaded(name, entry.not_after, source="acme")
        self._state.waiting.pop(f"acme {name}", None)
        log.info(
            "acme_certificate_installed",
            name=name,
            source=source,
            serial=entry.serial,
            not_after=utc(entry.not_after),
            renew_at=utc(self.renew_at[name]),
        )
        if first and all(n in self.entries for n in self.names):
            log.info("acme_certificates_ready", names=list(self.names))

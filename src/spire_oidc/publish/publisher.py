"""The publisher: every key set the source delivers, written to object storage and verified.

Fed by the key store (:meth:`Publisher.offer`, called on every delivery from the source, never
awaited by anyone), it runs as its own task: the listener's ``/keys`` changes at once whatever
the storage does. One publication (:meth:`Publisher.publish`):

1. read the record (:data:`~spire_oidc.publish.render.STATE_KEY`), then both documents;
2. if the stored bytes (and headers) already match and the record lists our kids: **skip**;
3. apply the no-rollback rule (:mod:`spire_oidc.publish.rule`): if our set is older than the
   stored one, write nothing and report **behind**;
4. write the record (``IfMatch`` the ETag read, ``CREATE`` when absent): this conditional write
   is the commit point, so two replicas never both decide on the same stored state; then the
   **JWKS first, then the discovery document**, each ``IfMatch`` its ETag read in step 1 (or
   ``CREATE``), skipping one whose bytes already match;
5. read both back and compare bytes: a mismatch is a failure.

A lost condition (:class:`PreconditionFailed`) starts again at step 1 (a few rounds at most).
A failure retries with capped exponential backoff (:mod:`spire_oidc.core.backoff`) and shows in
the status (:class:`~spire_oidc.core.publication.PublishStatus`), the log and the metrics.

What is published: only key sets the source delivered in this process. Keys restored from
``state_dir`` at start-up are served by the listener but never published (they are not a fresh
delivery; the store's copy is at least as good). Nothing is published before the first
delivery; an empty key set is published (``{"keys": []}``) only when the source delivered one
(SPIRE's revocation case), and only as the rule allows.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Final, Literal

import structlog

from spire_oidc.core.backoff import Backoff, BackoffPolicy
from spire_oidc.core.clock import Clock
from spire_oidc.core.keys import KeySet
from spire_oidc.core.publication import PublishStatus
from spire_oidc.core.store import RenderedKeys
from spire_oidc.publish.render import CONTENT_TYPE, STATE_KEY, Document, PublishTarget
from spire_oidc.publish.rule import PublishState, decide
from spire_oidc.storage.base import (
    CREATE,
    IfMatch,
    ObjectStore,
    PreconditionFailed,
    PutMode,
    StorageError,
    StoredObject,
)

log = structlog.get_logger("spire_oidc.publish")

RETRY: Final = BackoffPolicy(initial=0.5, cap=15.0, jitter=0.5)
RECHECK_INTERVAL: Final = 300.0  # re-verify the stored objects this often without a change
MAX_ROUNDS: Final = 8  # conditional-write rounds per publication before it counts as a failure
STATE_CACHE_CONTROL: Final = "no-store"

Outcome = Literal["written", "in_sync", "behind"]


class MismatchError(StorageError):
    """The bytes read back differ from the bytes written."""

    def __init__(self, key: str) -> None:
        super().__init__(f"{key}: the object read back differs from the one written")


def failure_reason(exc: StorageError) -> str:
    """The bounded metrics label of a failure."""
    return "mismatch" if isinstance(exc, MismatchError) else exc.reason


@dataclass(frozen=True)
class Result:
    """How one publication ended."""

    outcome: Outcome
    writes: int = 0
    generation: int | None = None
    detail: str = ""


def _same(stored: StoredObject | None, doc: Document) -> bool:
    """The stored object is ``doc``: same bytes, and the same headers where the store says."""
    return (
        stored is not None
        and stored.data == doc.body
        and stored.content_type in (None, doc.content_type)
        and stored.cache_control in (None, doc.cache_control)
    )


def _mode(stored: StoredObject | None) -> PutMode:
    return CREATE if stored is None else IfMatch(stored.etag)


class Publisher:
    """Publishes the delivered key sets of one process to one object store."""

    def __init__(
        self,
        store: ObjectStore,
        target: PublishTarget,
        status: PublishStatus,
        *,
        clock: Clock,
        retry: BackoffPolicy = RETRY,
        recheck_interval: float = RECHECK_INTERVAL,
    ) -> None:
        target.check()
        self._store = store
        self._target = target
        self._status = status
        self._clock = clock
        self._backoff = Backoff(retry)
        self._recheck = recheck_interval
        self._offered: RenderedKeys | None = None
        self._done: RenderedKeys | None = None  # the last snapshot verified (or left, behind)
        self._pending_since: float | None = None  # monotonic time of the first unpublished change
        self._seen: set[str] = set()  # every kid the source delivered in this process
        self._wake = asyncio.Event()

    @property
    def status(self) -> PublishStatus:
        return self._status

    # -- the feed ---------------------------------------------------------------------------
    def offer(self, rendered: RenderedKeys) -> None:
        """A delivery from the source (changed or not); cheap, never blocks, never raises."""
        if rendered is self._offered:
            return
        self._offered = rendered
        self._seen.update(rendered.keys.kids)
        if self._pending_since is None:
            self._pending_since = self._clock.monotonic()
        self._status.pending = True
        self._wake.set()

    def seen_removed(self, keys: KeySet) -> set[str]:
        """Kids our source delivered earlier in this process and no longer delivers."""
        return self._seen - set(keys.kids)

    # -- the loop ---------------------------------------------------------------------------
    async def run(self) -> None:
        """Publish each new delivery; retry failures with backoff; re-verify now and then."""
        log.info(
            "publish_started",
            target=self._store.describe(),
            jwks_key=self._target.jwks_key,
            discovery_key=self._target.discovery_key,
        )
        while True:
            await self._wait()
            snapshot = self._offered
            if snapshot is None:
                continue
            try:
                result = await self.publish(snapshot.keys)
            except StorageError as exc:
                reason = failure_reason(exc)
                self._status.failed(reason)
                delay = self._backoff.next_delay()
                log.warning(
                    "publish_failed",
                    reason=reason,
                    error=exc.describe(),
                    retry_in_seconds=round(delay, 3),
                )
                await self._clock.sleep(delay)
                self._wake.set()  # try again (with the newest snapshot)
                continue
            self._backoff.reset()
            self._finished(snapshot, result)

    async def _wait(self) -> None:
        if self._wake.is_set():
            self._wake.clear()
            return
        waiter = asyncio.ensure_future(self._wake.wait())
        timer = asyncio.ensure_future(self._clock.sleep(self._recheck))
        try:
            await asyncio.wait((waiter, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, timer):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._wake.clear()

    def _finished(self, snapshot: RenderedKeys, result: Result) -> None:
        status = self._status
        status.last_error_reason = None
        if result.outcome == "behind":
            status.behind += 1
            status.phase = "behind"
            if self._done is not snapshot:
                log.warning("publish_behind", kids=list(snapshot.keys.kids), detail=result.detail)
            self._done = snapshot
            return
        status.phase = "in_sync"
        status.last_success = self._clock.now()
        latest = snapshot is self._offered
        lag = None
        if latest and self._pending_since is not None:
            lag = max(0.0, self._clock.monotonic() - self._pending_since)
            status.lag.observe(lag)
            self._pending_since = None
            status.pending = False
        if result.outcome == "written":
            log.info(
                "publish_written",
                kids=sorted(snapshot.keys.kids),
                generation=result.generation,
                objects_written=result.writes,
                lag_seconds=None if lag is None else round(lag, 3),
            )
        elif self._done is not snapshot:
            log.info("publish_in_sync", kids=sorted(snapshot.keys.kids))
        self._done = snapshot
        if not latest:
            self._wake.set()  # a newer delivery arrived during this publication

    # -- one publication --------------------------------------------------------------------
    async def publish(self, keys: KeySet) -> Result:
        """Publish ``keys`` once (steps 1-5 of the module docstring); StorageError on failure."""
        jwks, discovery = self._target.render(keys)
        kids = set(keys.kids)
        store, status = self._store, self._status
        status.phase = "publishing"
        for _ in range(MAX_ROUNDS):
            record = await store.get(STATE_KEY)
            state = self._decode(record)
            stored_jwks = await store.get(jwks.key)
            stored_discovery = await store.get(discovery.key)
            synced = _same(stored_jwks, jwks) and _same(stored_discovery, discovery)
            if synced and state is not None and set(state.published) == kids:
                status.skips += 1
                return Result("in_sync", generation=state.generation)
            verdict = decide(state, kids, self.seen_removed(keys))
            if not verdict.allowed:
                detail = (
                    f"the store has retired {list(verdict.retired_kids)}"
                    if verdict.retired_kids
                    else f"the store holds newer kids {list(verdict.newer_kids)}"
                )
                return Result(
                    "behind", generation=state.generation if state else None, detail=detail
                )
            successor = (state or PublishState()).successor(kids)
            writes = 0
            try:
                await store.put(
                    STATE_KEY,
                    successor.encode(),
                    mode=_mode(record),
                    content_type=CONTENT_TYPE,
                    cache_control=STATE_CACHE_CONTROL,
                )
                writes += 1
                for doc, stored in ((jwks, stored_jwks), (discovery, stored_discovery)):
                    if _same(stored, doc):
                        continue
                    await store.put(
                        doc.key,
                        doc.body,
                        mode=_mode(stored),
                        content_type=doc.content_type,
                        cache_control=doc.cache_control,
                    )
                    writes += 1
            except PreconditionFailed as exc:
                status.writes += writes
                log.info("publish_conflict", detail=exc.describe(), action="re-reading")
                continue
            status.writes += writes
            await self._verify(jwks, discovery)
            return Result("written", writes, successor.generation)
        raise StorageError(
            f"conditional writes lost {MAX_ROUNDS} times in a row", reason="precondition"
        )

    def _decode(self, record: StoredObject | None) -> PublishState | None:
        # A record we cannot read raises StorageError("invalid"): it is never overwritten.
        return None if record is None else PublishState.decode(record.data)

    async def _verify(self, *docs: Document) -> None:
        for doc in docs:
            stored = await self._store.get(doc.key)
            if not _same(stored, doc):
                raise MismatchError(doc.key)

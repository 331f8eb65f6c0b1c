"""Composition root for publication (``publish { url }``): the target from the config, the
store, the publisher wired to the key store, publish-only mode, and the one-shot command.

* The daemon (:mod:`spire_oidc.daemon`) calls :func:`start_publication` when ``publish`` is set:
  the publisher is fed by the key store's deliveries and runs as its own supervised task, so
  serving never waits on storage.
* Publish-only mode: with ``publish`` and no listener, :class:`NoListener` stands in for the
  main listener (it binds nothing); health checks and metrics are still served if configured.
* ``oidc-discovery-provider publish -config FILE`` (:func:`publish_once`): fetch the keys once
  from the configured source (waiting at most ``first_fetch_within``, 30 s by default), publish,
  verify by read-back (at most 120 s more; each storage request is bounded by the backend), and
  return; every failure is one :class:`~spire_oidc.errors.ProviderError` line.
"""

from __future__ import annotations

import asyncio
import contextlib
from asyncio import FIRST_COMPLETED
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import structlog
from aiohttp import web

from spire_oidc.assembly import Work, discovery_options, make_source
from spire_oidc.config.model import Config
from spire_oidc.config.storage_url import parse_storage_url
from spire_oidc.core.clock import Clock, SystemClock
from spire_oidc.core.publication import PublishStatus
from spire_oidc.core.store import KeyStore, RenderedKeys
from spire_oidc.errors import ProviderError, SourceError, StartupError
from spire_oidc.http.listener_kinds import Description
from spire_oidc.http.tls import CertFileReloader
from spire_oidc.http.urls import UrlPlan
from spire_oidc.publish.publisher import Publisher, Result
from spire_oidc.publish.render import DEFAULT_CACHE_CONTROL, PublishTarget
from spire_oidc.storage.base import ObjectStore, StorageError

log = structlog.get_logger("spire_oidc")

ONE_SHOT_TIMEOUT = 30.0  # seconds the one-shot command waits for the source's first key set
ONE_SHOT_STORAGE_WITHIN = 120.0  # and at most this long for the publication itself


def has_listener(config: Config) -> bool:
    """Whether the config names a main listener (without one, ``publish`` must be set)."""
    return bool(
        config.insecure_addr
        or config.listen_socket_path
        or config.serving_cert_file is not None
        or config.acme is not None
        or config.serving_svid is not None
    )


def publish_target(config: Config) -> PublishTarget:
    """Issuer, ``jwks_uri``, rendering and headers: what the listener serves for the issuer."""
    if not config.jwt_issuer:  # config/publish.py requires it; be safe anyway
        raise StartupError("publish requires jwt_issuer (the public URL of the documents)")
    plan = UrlPlan.from_config(
        prefix=config.server_path_prefix, jwt_issuer=config.jwt_issuer, jwks_uri=config.jwks_uri
    )
    cc = config.cache_control
    target = PublishTarget(
        issuer=plan.issuer("https", ""),  # fixed by jwt_issuer: the arguments are not used
        jwks_uri=plan.jwks_uri("https", ""),
        discovery=discovery_options(config),
        set_key_use=config.set_key_use,
        keys_cache_control=(cc.keys if cc and cc.keys else DEFAULT_CACHE_CONTROL),
        discovery_cache_control=(cc.discovery if cc and cc.discovery else DEFAULT_CACHE_CONTROL),
    )
    target.check()
    return target


def open_publish_store(config: Config, env: Mapping[str, str] | None = None) -> ObjectStore:
    """The configured store (obstore is imported only for cloud URLs)."""
    from spire_oidc.storage.open import open_store

    if config.publish is None:
        raise StartupError("publish is not configured")
    return open_store(parse_storage_url(config.publish.url), env)


@dataclass
class Publication:
    """The running publication: what the daemon registers and health/metrics read."""

    publisher: Publisher
    status: PublishStatus
    store: ObjectStore

    def work(self) -> list[Work]:
        return [("publisher", self.publisher.run)]


def start_publication(
    config: Config, keys: KeyStore, clock: Clock, env: Mapping[str, str] | None = None
) -> Publication:
    """Open the store and build the publisher, fed by every delivery to ``keys``."""
    target = publish_target(config)
    store = open_publish_store(config, env)
    location = parse_storage_url(config.publish.url) if config.publish else None
    status = PublishStatus(target=location.scheme if location else "")
    publisher = Publisher(store, target, status, clock=clock)
    keys.add_delivery_listener(publisher.offer)
    return Publication(publisher, status, store)


class NoListener:
    """Publish-only mode's main listener: binds and serves nothing (a null object)."""

    reloader: CertFileReloader | None = None

    def __init__(self, url: str) -> None:
        self._url = url
        self.runner = web.ServerRunner(web.Server(_not_served))

    @property
    def addresses(self) -> list[str]:
        return []

    def bind(self) -> None:
        return None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def describe(self) -> Description:
        return Description("publish_only", {"publish_url": self._url, "listener": None})

    def background(self) -> Sequence[Work]:
        return ()


async def _not_served(request: web.BaseRequest) -> web.StreamResponse:  # never bound
    return web.Response(status=404)


# -- the one-shot command ---------------------------------------------------------------------
async def publish_once(
    config: Config,
    *,
    first_fetch_within: float = ONE_SHOT_TIMEOUT,
    clock: Clock | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[Result, RenderedKeys]:
    """Fetch the keys once, publish and verify them; raise ProviderError with the reason.

    ``behind`` (the store holds a newer key set) is returned, not raised: the caller decides.
    """
    clock = clock or SystemClock()
    keys = KeyStore(set_key_use=config.set_key_use, clock=clock)
    target = publish_target(config)
    store = open_publish_store(config, env)
    try:
        publisher = Publisher(store, target, PublishStatus(target=""), clock=clock)
        first = await _first_delivery(config, keys, clock, first_fetch_within)
        publisher.offer(first)
        try:
            async with asyncio.timeout(ONE_SHOT_STORAGE_WITHIN):
                return await publisher.publish(first.keys), first
        except TimeoutError:
            raise StorageError(
                f"{store.describe()}: no answer within {ONE_SHOT_STORAGE_WITHIN:g}s",
                reason="unreachable",
            ) from None
    finally:
        await store.close()


async def _first_delivery(
    config: Config, keys: KeyStore, clock: Clock, within: float
) -> RenderedKeys:
    """Run the source until its first delivery (at most ``within`` seconds)."""
    delivered: asyncio.Future[RenderedKeys] = asyncio.get_running_loop().create_future()

    def on_delivery(rendered: RenderedKeys) -> None:
        if not delivered.done():
            delivered.set_result(rendered)

    keys.add_delivery_listener(on_delivery)
    source = make_source(config.source, clock)
    task: asyncio.Task[None] = asyncio.create_task(source.run(keys))
    try:
        await asyncio.wait((delivered, task), timeout=within, return_when=FIRST_COMPLETED)
        if delivered.done():
            return delivered.result()
        if task.done() and task.exception() is not None:
            raise SourceError(f"the {source.kind} source failed: {task.exception()}")
        last = keys.last_error or "no answer"
        raise SourceError(f"no key set from the {source.kind} source within {within:g}s: {last}")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def describe_result(result: Result, rendered: RenderedKeys, where: str) -> tuple[int, str]:
    """Exit code and the one line the one-shot command prints."""
    kids = ", ".join(sorted(rendered.keys.kids)) or "none (an empty key set)"
    if result.outcome == "behind":
        return 1, (
            f"publish: left {where} alone: it holds a newer key set than the source delivered "
            f"({result.detail}); our kids: {kids}"
        )
    verb = "published and verified" if result.outcome == "written" else "already up to date"
    return 0, f"publish: {where}: {verb} (kids: {kids})"


def store_error_line(exc: StorageError) -> str:
    return f"publish: storage error ({exc.reason}): {exc.describe()}"


def run_publish_once(
    config: Config, *, first_fetch_within: float = ONE_SHOT_TIMEOUT
) -> tuple[int, str]:
    """The ``publish`` command on its own event loop: exit code and one line to print."""
    where = config.publish.url if config.publish is not None else "?"

    async def once() -> tuple[int, str]:
        try:
            result, rendered = await publish_once(config, first_fetch_within=first_fetch_within)
        except StorageError as exc:
            return 1, store_error_line(exc)
        except ProviderError as exc:
            return 1, f"publish: {exc.describe()}"
        return describe_result(result, rendered, where)

    return asyncio.run(once())

"""The composition root: wires config -> source -> store -> handlers -> listeners, and owns
start-up order, signals and graceful shutdown.

Start-up: every listener is bound first (a bind failure stops start-up with one line, before any
upstream contact), then the listeners start serving, then the source and the background work
run. Everything opened is registered on one ``AsyncExitStack`` as it is opened, so a failure at
any step closes what was opened, and :meth:`Provider.stop` is that stack's unwinding.
Shutdown (SIGTERM/SIGINT): ``ready`` turns 500, the main listener stops accepting, in-flight
requests get up to ``Timeouts.shutdown_grace`` seconds, background work stops, the side
listeners close, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.handlers
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import structlog
from aiohttp import web

from spire_oidc._compat import reopen_file_handler
from spire_oidc.assembly import (
    Work,
    agent_channel,
    choose_listener,
    descriptor_budget,
    health_listener,
    make_source,
    provider_handler,
    provider_metrics,
    restore_state,
    state_work,
)
from spire_oidc.assembly import discovery_options as discovery_options  # re-exported
from spire_oidc.config.model import Config
from spire_oidc.core.backoff import Backoff
from spire_oidc.core.clock import Clock, SystemClock
from spire_oidc.core.events import EventMetrics, NullMetrics
from spire_oidc.core.state import ProcessState
from spire_oidc.core.store import KeyStore
from spire_oidc.errors import StartupError
from spire_oidc.http.adapter import FastServer
from spire_oidc.http.connlimit import ConnectionCap, raise_open_file_limit
from spire_oidc.http.listener_kinds import Description, Listener, MainListener, SideListener
from spire_oidc.http.memory import HeapTrimmer
from spire_oidc.http.metrics import CertificateFile, ProviderMetrics
from spire_oidc.http.server import build_main_server
from spire_oidc.http.timeouts import DEFAULT_TIMEOUTS, Timeouts
from spire_oidc.http.tls import CertFileReloader
from spire_oidc.publishing import NoListener, Publication, has_listener, start_publication
from spire_oidc.sources.base import Source

if TYPE_CHECKING:
    from spire_oidc.acme.service import AcmeService

log = structlog.get_logger("spire_oidc")

INSECURE_WARNING = (
    "allow_insecure_scheme is enabled. JWKS keys will be served over HTTP. Only enable this when "
    "the network path to the provider is trusted end-to-end (for example, when TLS is terminated "
    "at a trusted reverse proxy or load balancer on a private network)"
)


@dataclass
class Provider:
    """A running provider (what :func:`start` returns; tests drive it directly)."""

    config: Config
    store: KeyStore
    source: Source
    state: ProcessState
    main: MainListener
    health: SideListener | None
    stack: contextlib.AsyncExitStack
    timeouts: Timeouts = DEFAULT_TIMEOUTS
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    metrics: EventMetrics = field(default_factory=NullMetrics)
    publication: Publication | None = None
    sighup_reloads: int = 0
    stopped: bool = False

    @property
    def main_runner(self) -> web.ServerRunner:
        return self.main.runner

    @property
    def addresses(self) -> list[str]:
        return self.main.addresses

    @property
    def health_addresses(self) -> list[str]:
        return self.health.addresses if self.health is not None else []

    @property
    def reloader(self) -> CertFileReloader | None:
        return self.main.reloader

    @property
    def acme(self) -> AcmeService | None:
        """The ACME listener (``choose_listener`` builds one exactly when ``acme`` is set)."""
        return cast("AcmeService", self.main) if self.config.acme is not None else None

    def reload(self) -> None:
        """SIGHUP: reopen ``log_path`` (logrotate) and force a reload of the certificate files."""
        reopened = reopen_log_files()
        log.info("sighup_received", log_files_reopened=reopened)
        if self.reloader is None:
            return
        try:
            self.reloader.load_initial()  # validates the new pair before it goes live
        except StartupError as exc:
            log.error("certificate_reload_failed", error=str(exc), reason="sighup")
            return
        self.sighup_reloads += 1
        log.info("certificate_reloaded", reason="sighup")

    async def stop(self) -> None:
        """Graceful shutdown: not ready, then everything :func:`start` opened, in reverse."""
        if self.stopped:
            return
        self.stopped = True
        self.state.shutting_down = True
        log.info("shutdown_started", grace_seconds=self.timeouts.shutdown_grace)
        await self.stack.aclose()
        log.info("shutdown_complete")


def reopen_log_files() -> list[str]:
    """Reopen the root logger's files if they were moved away (logrotate); returns their paths."""
    paths = []
    for handler in logging.getLogger().handlers:
        if not isinstance(handler, logging.FileHandler):
            continue
        paths.append(handler.baseFilename)
        with contextlib.suppress(OSError):  # keep log_path's mode 0640 when the file is new
            os.close(os.open(handler.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640))
        if isinstance(handler, logging.handlers.WatchedFileHandler):
            handler.reopenIfNeeded()
        else:
            old = reopen_file_handler(handler)
            if old is not None:
                old.close()
    return paths


async def start(
    config: Config, *, clock: Clock | None = None, timeouts: Timeouts = DEFAULT_TIMEOUTS
) -> Provider:
    """Bind every listener, start serving, start the source; raise StartupError on failure
    (after closing whatever was opened up to that point)."""
    clock = clock or SystemClock()
    _log_config_warnings(config)
    state = ProcessState()
    store = KeyStore(set_key_use=config.set_key_use, clock=clock)
    restored_at = restore_state(config, store, clock)
    channel = agent_channel(config)  # one agent connection for keys and the serving SVID
    source = make_source(config.source, clock, channel)
    handler = provider_handler(config, store)
    prom = provider_metrics(config, store, clock, source, handler)
    events: EventMetrics = prom if prom is not None else NullMetrics()
    raise_open_file_limit(descriptor_budget(config))
    stack = contextlib.AsyncExitStack()
    try:
        publication = None
        if config.publish is not None:  # fed by the store; never awaited by the HTTP path
            publication = start_publication(config, store, clock)
            stack.push_async_callback(publication.store.close)  # after the publisher stopped
            state.reports["publish"] = publication.status.public  # /ready?verbose, informative
            if prom is not None:
                prom.watch_publication(publication.status)
        health = health_listener(config, store, source, clock, state, prom, timeouts)
        if health is not None:
            stack.push_async_callback(health.stop)  # closed last
        tasks: list[asyncio.Task[None]] = []
        stack.push_async_callback(_cancel, tasks)  # after the main listener drained

        def main_server(cap: ConnectionCap) -> web.Server:
            return build_main_server(
                handler, timeouts=timeouts, cap=cap, observer=prom, log_requests=config.log_requests
            )

        if has_listener(config) or config.publish is None:
            main = choose_listener(config, main_server, timeouts, state, clock, events, channel)
        else:  # publish-only mode: nothing serves the documents but the store
            main = NoListener(config.publish.url)
        stack.push_async_callback(main.stop)  # closed first: stop accepting, drain
        listeners: list[Listener] = [main] if health is None else [main, health]
        for listener in listeners:  # 1. bind everything; nothing is served yet
            listener.bind()
        if config.log_requests:
            log.info("request_logging_enabled")
        for listener in listeners:  # 2. serve
            await listener.start()
            _log_description(listener.describe())
        provider = Provider(
            config, store, source, state, main, health, stack, timeouts, tasks, events, publication
        )
        # 3. Upstream and background work.
        if prom is not None and main.reloader is not None:
            _watch_certificate(prom, main.reloader, provider)
        log.info("source_started", source=source.kind, poll_interval=source.poll_interval)
        work: list[Work] = [("source", _run_source(source, store))]
        work += state_work(config, store, clock, restored_at)
        work += main.background()
        if publication is not None:
            work += publication.work()
        server = main.runner.server
        if isinstance(server, FastServer):
            trimmer = HeapTrimmer(lambda: server.churn)  # peak RSS under connection bursts
            work.append(("heap_trim", trimmer.run))
        tasks.extend(asyncio.create_task(_supervise(factory, name)) for name, factory in work)
    except BaseException:
        await stack.aclose()
        raise
    return provider


def _watch_certificate(prom: ProviderMetrics, reloader: CertFileReloader, p: Provider) -> None:
    prom.watch_certificate_file(
        CertificateFile(reloader.cert_path, generation=lambda: reloader.reloads + p.sighup_reloads)
    )


def _run_source(source: Source, store: KeyStore) -> Callable[[], Awaitable[None]]:
    return lambda: source.run(store)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _log_config_warnings(config: Config) -> None:
    for warning in config.warnings:
        log.warning("config_warning", detail=warning)
    if config.allow_insecure_scheme:
        log.warning("insecure_scheme_allowed", detail=INSECURE_WARNING)


def _log_description(described: Description) -> None:
    (log.warning if described.warning else log.info)(described.event, **described.fields)


async def _supervise(factory: Callable[[], Awaitable[None]], name: str) -> None:
    """Run a background task; an unexpected crash is logged and the task restarted, never fatal."""
    backoff = Backoff.of(1.0, 30.0, jitter=0.0)
    while True:
        try:
            await factory()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            delay = backoff.next_delay()
            log.exception("background_task_crashed", task=name, restart_in_seconds=delay)
        await asyncio.sleep(delay)


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when uvloop is installed (a dependency on Linux and macOS), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_blocking(config: Config) -> int:
    """Run the provider to completion on the fastest available event loop (DESIGN decision 7)."""
    factory = event_loop_factory()
    with asyncio.Runner(loop_factory=factory) as runner:
        log.info("event_loop", implementation="uvloop" if factory else "asyncio")
        return runner.run(run(config))


async def run(
    config: Config, *, stop: asyncio.Event | None = None, timeouts: Timeouts = DEFAULT_TIMEOUTS
) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); returns the process exit code."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    provider = await start(config, timeouts=timeouts)
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, provider.reload)
    await stop.wait()
    await provider.stop()
    return 0

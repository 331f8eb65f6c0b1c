"""The composition root: wires config -> source -> store -> handlers -> listeners, and owns
start-up order, signals and graceful shutdown.

Start-up: every listener is bound first (a bind failure stops start-up with one line, before any
upstream contact), then the sites start serving, then the source and the certificate watcher run.
Shutdown (SIGTERM/SIGINT): ``ready`` turns 500, the listeners stop accepting, in-flight requests
get up to ``SHUTDOWN_GRACE`` seconds, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.handlers
import os
import signal
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog
from aiohttp import web

from spire_oidc._compat import reopen_file_handler
from spire_oidc.config.domains import DomainError
from spire_oidc.config.model import (
    METRICS_PATH,
    Config,
    FileConfig,
    ServerAPIConfig,
    SourceConfig,
    WorkloadAPIConfig,
)
from spire_oidc.core import persist
from spire_oidc.core.backoff import Backoff
from spire_oidc.core.clock import Clock, SystemClock
from spire_oidc.core.documents import DiscoveryOptions
from spire_oidc.core.events import EventMetrics, NullMetrics
from spire_oidc.core.state import ProcessState
from spire_oidc.core.store import KeyStore
from spire_oidc.errors import StartupError
from spire_oidc.http.adapter import FastServer
from spire_oidc.http.connlimit import ConnectionCap, raise_open_file_limit
from spire_oidc.http.health import HealthHandler
from spire_oidc.http.listeners import bind_tcp, bind_unix, start_sites
from spire_oidc.http.memory import HeapTrimmer
from spire_oidc.http.metrics import CertificateFile
from spire_oidc.http.server import build_main_server
from spire_oidc.http.timeouts import Timeouts
from spire_oidc.http.tls import CertFileReloader
from spire_oidc.http.web import ProviderHandler, WebSettings
from spire_oidc.sources.base import Source

if TYPE_CHECKING:
    from spire_oidc.acme.service import AcmeService

log = structlog.get_logger("spire_oidc")

SHUTDOWN_GRACE = 10.0
# How often, at most, the state file records that the source still confirms the keys.
STATE_REFRESH_MAX = 300.0
# SPIRE: ReadHeaderTimeout 10 s. aiohttp arms this timer when a connection opens and after each
# response, so it bounds both the wait for a (complete) request head and keep-alive idleness.
KEEPALIVE_TIMEOUT = 10.0

INSECURE_WARNING = (
    "allow_insecure_scheme is enabled. JWKS keys will be served over HTTP. Only enable this when "
    "the network path to the provider is trusted end-to-end (for example, when TLS is terminated "
    "at a trusted reverse proxy or load balancer on a private network)"
)


def discovery_options(config: Config) -> DiscoveryOptions:
    """The discovery document variant the config's ``discovery_document`` block asks for."""
    dd = config.discovery_document
    endpoint = None if dd.omit_authorization_endpoint else dd.authorization_endpoint
    return DiscoveryOptions(
        authorization_endpoint=endpoint,
        signing_algs_from_keys=dd.signing_algs_from_keys,
        claims_supported=dd.claims_supported,
    )


def make_source(cfg: SourceConfig, clock: Clock) -> Source:
    """Build the configured source; gRPC and SPIFFE are imported only when selected."""
    if isinstance(cfg, FileConfig):
        from spire_oidc.sources.file import FileSource

        return FileSource(cfg, clock=clock)
    if isinstance(cfg, ServerAPIConfig):
        from spire_oidc.sources.server_api import ServerAPISource

        return ServerAPISource(cfg, clock=clock)
    if isinstance(cfg, WorkloadAPIConfig):
        from spire_oidc.sources.workload_api import WorkloadAPISource

        return WorkloadAPISource(cfg, clock=clock)
    raise StartupError(f"unsupported source configuration {type(cfg).__name__}")


@dataclass
class Provider:
    """A running provider (what :func:`start` returns; tests drive it directly)."""

    config: Config
    store: KeyStore
    source: Source
    state: ProcessState
    main_runner: web.ServerRunner
    health_runner: web.ServerRunner | None
    addresses: list[str] = field(default_factory=list)
    health_addresses: list[str] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    reloader: CertFileReloader | None = None
    metrics: EventMetrics = field(default_factory=NullMetrics)
    sighup_reloads: int = 0
    acme: AcmeService | None = None
    stopped: bool = False

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
        """Graceful shutdown: not ready, stop accepting, drain in-flight requests, stop tasks."""
        if self.stopped:
            return
        self.stopped = True
        self.state.shutting_down = True
        log.info("shutdown_started", grace_seconds=SHUTDOWN_GRACE)
        await self.main_runner.cleanup()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.acme is not None:
            await self.acme.stop()
        if self.health_runner is not None:
            await self.health_runner.cleanup()
        if self.config.listen_socket_path:
            with contextlib.suppress(OSError):
                os.unlink(self.config.listen_socket_path)
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


def _health_bind(config: Config) -> list[socket.socket]:
    """Bind the health (and metrics) listener on ``bind_host`` (default: every interface)."""
    hc = config.health_checks
    assert hc is not None
    host = hc.bind_host
    shown = f"[{host}]" if ":" in host else host
    return bind_tcp(f"{shown}:{hc.bind_port}", host=host or None, port=hc.bind_port)


def _sock_name(sock: socket.socket) -> str:
    name = sock.getsockname()
    if isinstance(name, tuple):
        host = name[0]
        return f"[{host}]:{name[1]}" if ":" in host else f"{host}:{name[1]}"
    return str(name)


async def start(config: Config, *, clock: Clock | None = None) -> Provider:
    """Bind every listener, start serving, start the source; raise StartupError on failure."""
    clock = clock or SystemClock()
    for warning in config.warnings:
        log.warning("config_warning", detail=warning)
    if config.allow_insecure_scheme:
        log.warning("insecure_scheme_allowed", detail=INSECURE_WARNING)
    state = ProcessState()
    acme_service: AcmeService | None = None
    if config.acme is not None:  # the acme library is imported only in this mode
        from spire_oidc.acme.service import AcmeService

        acme_service = AcmeService(config.acme, config.domains, state=state, clock=clock)
    store = KeyStore(set_key_use=config.set_key_use, clock=clock)
    restored_at = _restore_state(config, store, clock)
    source = make_source(config.source, clock)
    try:
        handler = ProviderHandler(
            WebSettings(
                domains=config.domains,
                allow_insecure_scheme=config.allow_insecure_scheme,
                server_path_prefix=config.server_path_prefix,
                jwt_issuer=config.jwt_issuer,
                jwks_uri=config.jwks_uri,
                trusted_proxies=config.trusted_proxies,
                discovery=discovery_options(config),
            ),
            store,
        )
    except DomainError as exc:  # config.py checks domains first; this is a safety net
        raise StartupError(str(exc)) from exc
    prom: ProviderMetrics | None = None
    if config.health_checks is not None and config.health_checks.metrics:
        from spire_oidc.http.metrics import ROUTE_DISCOVERY, ROUTE_KEYS, ProviderMetrics

        prom = ProviderMetrics(
            store=store,
            clock=clock,
            source_kind=source.kind,
            poll_interval=source.poll_interval,
            routes={
                handler.plan.discovery_route: ROUTE_DISCOVERY,
                handler.plan.keys_route: ROUTE_KEYS,
            },
        )
    event_metrics: EventMetrics = prom if prom is not None else NullMetrics()
    if acme_service is not None:
        acme_service.manager.metrics = event_metrics

    # 1. Bind everything (nothing is served yet; a failure leaves nothing behind).
    main_socks: list[socket.socket] = []
    health_socks: list[socket.socket] = []
    ssl_ctx: ssl.SSLContext | None = None
    reloader: CertFileReloader | None = None
    try:
        if config.insecure_addr:
            main_socks = bind_tcp(config.insecure_addr)
        elif config.listen_socket_path:
            main_socks = [bind_unix(config.listen_socket_path)]
        elif config.serving_cert_file is not None:
            scf = config.serving_cert_file
            reloader = CertFileReloader(
                scf.cert_file_path, scf.key_file_path, scf.file_sync_interval
            )
            reloader.load_initial()
            ssl_ctx = reloader.context
            main_socks = bind_tcp(scf.addr, host=scf.host or None, port=scf.port)
        elif acme_service is not None:
            main_socks = acme_service.bind()
        if config.health_checks is not None:
            health_socks = _health_bind(config)
    except BaseException:
        for s in main_socks + health_socks:
            s.close()
        if acme_service is not None:
            acme_service.close_unused()
        raise

    # 2. Serve.
    if config.log_requests:
        log.info("request_logging_enabled")
    raise_open_file_limit(config.max_connections)
    main_server = build_main_server(
        handler,
        timeouts=Timeouts(
            header=KEEPALIVE_TIMEOUT, idle=KEEPALIVE_TIMEOUT, handshake=KEEPALIVE_TIMEOUT
        ),
        cap=ConnectionCap(config.max_connections),
        observer=prom,
        log_requests=config.log_requests,
    )
    main_runner = web.ServerRunner(main_server, shutdown_timeout=SHUTDOWN_GRACE)
    await main_runner.setup()
    if acme_service is not None:
        await acme_service.serve(main_runner, main_socks)
    else:
        await start_sites(main_runner, main_socks, ssl_ctx, handshake_timeout=KEEPALIVE_TIMEOUT)
    addresses = [_sock_name(s) for s in main_socks]
    if config.insecure_addr:
        log.warning("serving_http_insecure", address=config.insecure_addr, bound=addresses)
    elif config.listen_socket_path:
        log.info("serving_http", network="unix", address=config.listen_socket_path)
    elif config.serving_cert_file is not None:
        log.info(
            "serving_https_certificate_files",
            address=addresses,
            cert_file_path=config.serving_cert_file.cert_file_path,
            key_file_path=config.serving_cert_file.key_file_path,
        )
    elif acme_service is not None:
        log.info("serving_https_acme", address=addresses, names=list(acme_service.names))

    health_runner: web.ServerRunner | None = None
    health_addresses: list[str] = []
    if config.health_checks is not None:
        health = HealthHandler(
            config.health_checks,
            store=store,
            poll_interval=source.poll_interval,
            source_kind=source.kind,
            clock=clock,
            state=state,
            metrics=prom,
        )
        health_runner = web.ServerRunner(web.Server(health, access_log=None), shutdown_timeout=1.0)
        await health_runner.setup()
        await start_sites(health_runner, health_socks)
        health_addresses = [_sock_name(s) for s in health_socks]
        log.info(
            "serving_health_checks",
            address=health_addresses,
            ready_path=config.health_checks.ready_path,
            live_path=config.health_checks.live_path,
            metrics_path=METRICS_PATH if prom is not None else None,
        )

    # 3. Upstream and background work.
    provider = Provider(
        config=config,
        store=store,
        source=source,
        state=state,
        main_runner=main_runner,
        health_runner=health_runner,
        addresses=addresses,
        health_addresses=health_addresses,
        reloader=reloader,
        metrics=event_metrics,
        acme=acme_service,
    )
    if prom is not None and reloader is not None and config.serving_cert_file is not None:
        watched = reloader
        prom.watch_certificate_file(
            CertificateFile(
                config.serving_cert_file.cert_file_path,
                generation=lambda: watched.reloads + provider.sighup_reloads,
            )
        )
    log.info("source_started", source=source.kind, poll_interval=source.poll_interval)
    provider.tasks.append(asyncio.create_task(_supervise(lambda: source.run(store), "source")))
    if config.state_dir:
        writer = persist.StateWriter(config.state_dir, now=clock.now)
        store.add_listener(lambda r: writer.offer(r.keys, r.mod_time))
        provider.tasks.append(asyncio.create_task(_supervise(writer.run, "state_writer")))
        refresh = min(config.state_max_age / 10, STATE_REFRESH_MAX)
        provider.tasks.append(asyncio.create_task(_confirm_state(store, writer, refresh)))
    if restored_at is not None:
        delay = max(0.0, restored_at + config.state_max_age - clock.now())
        provider.tasks.append(asyncio.create_task(_expire_restored(store, delay)))
    if reloader is not None:
        cert_watch = reloader
        provider.tasks.append(asyncio.create_task(_supervise(cert_watch.run, "certificate_watch")))
    if isinstance(main_server, FastServer):
        fast = main_server
        trimmer = HeapTrimmer(lambda: fast.churn)  # peak RSS under connection bursts
        provider.tasks.append(asyncio.create_task(_supervise(trimmer.run, "heap_trim")))
    if acme_service is not None:
        await acme_service.start()
    return provider


def _restore_state(config: Config, store: KeyStore, clock: Clock) -> float | None:
    """Serve the last good keys of an earlier run, if any; returns when they were saved."""
    if not config.state_dir:
        return None
    saved = persist.load(config.state_dir, now=clock.now(), max_age=config.state_max_age)
    if saved is None:
        return None
    store.restore(saved.keys, saved.mod_time)
    log.warning(
        "keys_restored_from_state",
        kids=list(saved.keys.kids),
        age_seconds=round(clock.now() - saved.saved_at),
        detail="served until the source confirms or replaces them",
    )
    return saved.saved_at


async def _confirm_state(store: KeyStore, writer: persist.StateWriter, every: float) -> None:
    """Re-save the served keys with the time the source last confirmed them, so that
    ``state_max_age`` counts from the last confirmation, not from the last change."""
    while True:
        await asyncio.sleep(every)
        current, confirmed = store.current, store.last_success
        if current is not None and confirmed is not None and not store.restored:
            writer.offer(current.keys, current.mod_time, confirmed_at=confirmed)


async def _expire_restored(store: KeyStore, delay: float) -> None:
    await asyncio.sleep(delay)
    store.expire_restored()


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


async def run(config: Config, *, stop: asyncio.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); returns the process exit code."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    provider = await start(config)
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, provider.reload)
    await stop.wait()
    await provider.stop()
    return 0

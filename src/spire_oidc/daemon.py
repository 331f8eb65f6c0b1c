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
import os
import signal
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from aiohttp import web

from spire_oidc.clock import Clock, SystemClock
from spire_oidc.config import (
    Config,
    FileConfig,
    ServerAPIConfig,
    SourceConfig,
    WorkloadAPIConfig,
)
from spire_oidc.domains import DomainError
from spire_oidc.errors import StartupError
from spire_oidc.health import HealthHandler, ProcessState
from spire_oidc.listeners import bind_tcp, bind_unix, start_sites
from spire_oidc.logs import AccessLogger
from spire_oidc.sources.base import Source
from spire_oidc.store import KeyStore
from spire_oidc.tls import CertFileReloader
from spire_oidc.web import ProviderHandler, WebSettings

log = structlog.get_logger("spire_oidc")

SHUTDOWN_GRACE = 10.0
# SPIRE: ReadHeaderTimeout 10 s. aiohttp arms this timer when a connection opens and after each
# response, so it bounds both the wait for a (complete) request head and keep-alive idleness.
KEEPALIVE_TIMEOUT = 10.0

INSECURE_WARNING = (
    "allow_insecure_scheme is enabled. JWKS keys will be served over HTTP. Only enable this when "
    "the network path to the provider is trusted end-to-end (for example, when TLS is terminated "
    "at a trusted reverse proxy or load balancer on a private network)"
)


def make_source(cfg: SourceConfig, clock: Clock) -> Source:
    """Build the configured source; gRPC and SPIFFE are imported only when selected."""
    # gRPC's C core otherwise prints its own info lines (e.g. on GOAWAY) to stderr.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
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
    stopped: bool = False

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
        if self.health_runner is not None:
            await self.health_runner.cleanup()
        if self.config.listen_socket_path:
            with contextlib.suppress(OSError):
                os.unlink(self.config.listen_socket_path)
        log.info("shutdown_complete")


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
    if config.acme is not None:
        raise StartupError(
            "the acme section is not supported by this build yet: use serving_cert_file, "
            "insecure_addr or listen_socket_path"
        )

    state = ProcessState()
    store = KeyStore(set_key_use=config.set_key_use, clock=clock)
    source = make_source(config.source, clock)
    try:
        handler = ProviderHandler(
            WebSettings(
                domains=config.domains,
                allow_insecure_scheme=config.allow_insecure_scheme,
                server_path_prefix=config.server_path_prefix,
                jwt_issuer=config.jwt_issuer,
                jwks_uri=config.jwks_uri,
            ),
            store,
        )
    except DomainError as exc:  # config.py checks domains first; this is a safety net
        raise StartupError(str(exc)) from exc

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
        if config.health_checks is not None:
            health_socks = bind_tcp(
                f":{config.health_checks.bind_port}", host=None, port=config.health_checks.bind_port
            )
    except BaseException:
        for s in main_socks + health_socks:
            s.close()
        raise

    # 2. Serve.
    access: dict[str, object] = {"access_log": None}
    if config.log_requests:
        log.info("request_logging_enabled")
        access = {
            "access_log_class": AccessLogger,
            "access_log": logging.getLogger("spire_oidc.access"),
        }
    main_server = web.Server(handler, keepalive_timeout=KEEPALIVE_TIMEOUT, **access)  # type: ignore[arg-type]
    main_runner = web.ServerRunner(main_server, shutdown_timeout=SHUTDOWN_GRACE)
    await main_runner.setup()
    await start_sites(main_runner, main_socks, ssl_ctx)
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
    )
    log.info("source_started", source=source.kind, poll_interval=source.poll_interval)
    provider.tasks.append(asyncio.create_task(_supervise(lambda: source.run(store), "source")))
    if reloader is not None:
        cert_watch = reloader
        provider.tasks.append(asyncio.create_task(_supervise(cert_watch.run, "certificate_watch")))
    return provider


async def _supervise(factory: Callable[[], Awaitable[None]], name: str) -> None:
    """Run a background task; an unexpected crash is logged and the task restarted, never fatal."""
    delay = 1.0
    while True:
        try:
            await factory()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background_task_crashed", task=name, restart_in_seconds=delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)


async def run(config: Config, *, stop: asyncio.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); returns the process exit code."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    provider = await start(config)
    await stop.wait()
    await provider.stop()
    return 0

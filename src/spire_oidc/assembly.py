"""The parts the composition root (:mod:`spire_oidc.daemon`) assembles, each built from the
config with everything it needs: the source, the request handler, the metrics, the main listener
(:func:`choose_listener`, the one place that maps the config to a listener kind), the health
listener, and the state file's background work.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog
from aiohttp import web

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
from spire_oidc.core.clock import Clock
from spire_oidc.core.documents import DiscoveryOptions
from spire_oidc.core.events import EventMetrics
from spire_oidc.core.state import ProcessState
from spire_oidc.core.store import KeyStore
from spire_oidc.errors import StartupError
from spire_oidc.http.connlimit import ConnectionCap, side_share
from spire_oidc.http.health import HealthHandler
from spire_oidc.http.listener_kinds import (
    CertFileListener,
    InsecureTcpListener,
    MainListener,
    SideListener,
    UnixListener,
)
from spire_oidc.http.metrics import ProviderMetrics
from spire_oidc.http.timeouts import Timeouts
from spire_oidc.http.web import ProviderHandler, WebSettings
from spire_oidc.sources.base import Source

if TYPE_CHECKING:
    from spire_oidc.sources.agent_channel import AgentChannel
    from spire_oidc.storage.base import ObjectStore

log = structlog.get_logger("spire_oidc")

# How often, at most, the state file records that the source still confirms the keys.
STATE_REFRESH_MAX = 300.0

Work = tuple[str, Callable[[], Awaitable[None]]]


def discovery_options(config: Config) -> DiscoveryOptions:
    """The discovery document variant the config's ``discovery_document`` block asks for."""
    dd = config.discovery_document
    endpoint = None if dd.omit_authorization_endpoint else dd.authorization_endpoint
    return DiscoveryOptions(
        authorization_endpoint=endpoint,
        signing_algs_from_keys=dd.signing_algs_from_keys,
        claims_supported=dd.claims_supported,
    )


def agent_channel(config: Config) -> AgentChannel | None:
    """One channel to the SPIRE agent when the Workload API source and the ``serving_svid``
    listener use the same socket (DESIGN: one connection per agent); else None."""
    svid, source = config.serving_svid, config.source
    if svid is None or not isinstance(source, WorkloadAPIConfig):
        return None
    if os.path.abspath(svid.socket_path) != os.path.abspath(source.socket_path):
        return None
    from spire_oidc.core.limits import LIMITS
    from spire_oidc.sources.agent_channel import AgentChannel

    return AgentChannel(source.socket_path, options=LIMITS.grpc_options())


def make_source(cfg: SourceConfig, clock: Clock, channel: AgentChannel | None = None) -> Source:
    """Build the configured source; gRPC and SPIFFE are imported only when selected."""
    if isinstance(cfg, FileConfig):
        from spire_oidc.sources.file import FileSource

        return FileSource(cfg, clock=clock)
    if isinstance(cfg, ServerAPIConfig):
        from spire_oidc.sources.server_api import ServerAPISource

        return ServerAPISource(cfg, clock=clock)
    if isinstance(cfg, WorkloadAPIConfig):
        from spire_oidc.sources.workload_api import WorkloadAPISource

        return WorkloadAPISource(cfg, clock=clock, channel=channel)
    raise StartupError(f"unsupported source configuration {type(cfg).__name__}")


def choose_listener(
    config: Config,
    main_server: Callable[[ConnectionCap], web.Server],
    timeouts: Timeouts,
    state: ProcessState,
    clock: Clock,
    metrics: EventMetrics,
    channel: AgentChannel | None = None,
) -> MainListener:
    """The one place that maps the config to the main listener's kind (config.py guarantees
    exactly one is configured). TLS kinds count connections from accept."""
    limit = config.max_connections
    if config.insecure_addr:
        cap = ConnectionCap(limit)
        return InsecureTcpListener(
            config.insecure_addr, main_server(cap), timeouts=timeouts, cap=cap
        )
    if config.listen_socket_path:
        cap = ConnectionCap(limit)
        return UnixListener(config.listen_socket_path, main_server(cap), timeouts=timeouts, cap=cap)
    cap = ConnectionCap(limit, from_accept=True)
    if config.serving_cert_file is not None:
        scf = config.serving_cert_file
        return CertFileListener(
            scf.cert_file_path,
            scf.key_file_path,
            addr=scf.addr,
            host=scf.host,
            port=scf.port,
            file_sync_interval=scf.file_sync_interval,
            server=main_server(cap),
            timeouts=timeouts,
            cap=cap,
        )
    if config.acme is not None:  # the acme library is imported only in this mode
        from spire_oidc.acme.service import AcmeService

        return AcmeService(
            config.acme,
            config.domains,
            store=acme_store(config.acme.storage),
            state=state,
            clock=clock,
            server=main_server(cap),
            cap=cap,
            http01_cap=ConnectionCap(side_share(limit), listener="acme_http01"),
            timeouts=timeouts,
            metrics=metrics,
        )
    if config.serving_svid is not None:  # gRPC and spiffe are imported only in this mode
        return svid_listener(config, main_server(cap), timeouts, state, clock, cap, channel)
    raise StartupError("no listener configured")


def acme_store(storage: str) -> ObjectStore | None:
    """The replicas' shared store for ``acme.storage`` (None: the local ``cache_dir``).

    Opening makes no request; the cloud client (obstore) is imported only for cloud URLs. An
    environment that cannot work (half a key pair, a bad endpoint) stops start-up.
    """
    if not storage:
        return None
    from spire_oidc.config.storage_url import parse_storage_url
    from spire_oidc.storage.base import StorageError
    from spire_oidc.storage.open import open_store

    try:
        return open_store(parse_storage_url(storage))
    except (StorageError, ValueError) as exc:
        raise StartupError(f"acme.storage {storage}: {exc}") from exc


def svid_listener(
    config: Config,
    server: web.Server,
    timeouts: Timeouts,
    state: ProcessState,
    clock: Clock,
    cap: ConnectionCap,
    channel: AgentChannel | None,
) -> MainListener:
    """``serving_svid``: the X.509-SVID stream (on the shared agent channel when there is one)
    feeding the TLS listener's context."""
    from spire_oidc.http.svid_tls import SvidListener
    from spire_oidc.sources.serving_svid import ServingSvidStream

    svid = config.serving_svid
    if svid is None:
        raise StartupError("serving_svid is not configured")
    source = config.source
    retry = source.poll_interval if isinstance(source, WorkloadAPIConfig) else 10.0
    stream = ServingSvidStream(
        svid.socket_path,
        spiffe_id=svid.spiffe_id,
        clock=clock,
        max_retry_interval=retry,
        channel=channel,
    )
    return SvidListener(
        stream.run,
        addr=svid.addr,
        host=svid.host,
        port=svid.port,
        socket_path=svid.socket_path,
        state=state,
        server=server,
        timeouts=timeouts,
        cap=cap,
        now=clock.now,
    )


def descriptor_budget(config: Config) -> int:
    """Connections all listeners may hold: the main cap plus each side listener's share."""
    sides = (config.health_checks is not None) + (
        config.acme is not None and "http-01" in config.acme.challenges
    )
    return config.max_connections + sides * side_share(config.max_connections)


def health_listener(
    config: Config,
    store: KeyStore,
    source: Source,
    clock: Clock,
    state: ProcessState,
    prom: ProviderMetrics | None,
    timeouts: Timeouts,
) -> SideListener | None:
    """The health (and metrics) listener on ``bind_host`` (default: every interface, as SPIRE)."""
    hc = config.health_checks
    if hc is None:
        return None
    health = HealthHandler(
        hc,
        store=store,
        poll_interval=source.poll_interval,
        source_kind=source.kind,
        clock=clock,
        state=state,
        metrics=prom,
    )
    shown = f"[{hc.bind_host}]" if ":" in hc.bind_host else hc.bind_host
    return SideListener(
        health,
        addr=f"{shown}:{hc.bind_port}",
        host=hc.bind_host,
        port=hc.bind_port,
        timeouts=timeouts,
        cap=ConnectionCap(side_share(config.max_connections), listener="health"),
        event="serving_health_checks",
        fields={
            "ready_path": hc.ready_path,
            "live_path": hc.live_path,
            "metrics_path": METRICS_PATH if prom is not None else None,
        },
    )


def provider_handler(config: Config, store: KeyStore) -> ProviderHandler:
    try:
        return ProviderHandler(
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


def provider_metrics(
    config: Config, store: KeyStore, clock: Clock, source: Source, handler: ProviderHandler
) -> ProviderMetrics | None:
    if config.health_checks is None or not config.health_checks.metrics:
        return None
    from spire_oidc.http.metrics import ROUTE_DISCOVERY, ROUTE_KEYS

    return ProviderMetrics(
        store=store,
        clock=clock,
        source_kind=source.kind,
        poll_interval=source.poll_interval,
        routes={
            handler.plan.discovery_route: ROUTE_DISCOVERY,
            handler.plan.keys_route: ROUTE_KEYS,
        },
    )


def state_work(
    config: Config, store: KeyStore, clock: Clock, restored_at: float | None
) -> list[Work]:
    """The state file's writer and confirmer, and the expiry of restored keys."""
    work: list[Work] = []
    if config.state_dir:
        writer = persist.StateWriter(config.state_dir, now=clock.now)
        store.add_listener(lambda r: writer.offer(r.keys, r.mod_time))
        work.append(("state_writer", writer.run))
        refresh = min(config.state_max_age / 10, STATE_REFRESH_MAX)
        work.append(("state_confirm", lambda: _confirm_state(store, writer, refresh)))
    if restored_at is not None:
        delay = max(0.0, restored_at + config.state_max_age - clock.now())
        work.append(("state_expiry", lambda: _expire_restored(store, delay)))
    return work


def restore_state(config: Config, store: KeyStore, clock: Clock) -> float | None:
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

"""The ACME serving mode as the daemon sees it: a main listener (bind, start, stop, describe).

Names a public CA cannot issue for (single-label names such as ``localhost``, IP literals) are
skipped with one log line, as Go autocert refuses them; if no name is left, start-up fails.
The TLS listener counts connections against ``max_connections`` from accept, through the
ClientHello peek and the handshake; the http-01 listener is a side listener with its own share.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

import structlog
from aiohttp import web

from spire_oidc.acme.cache import AsyncCache, WorkerCache, open_cache
from spire_oidc.acme.certs import eligible
from spire_oidc.acme.http01 import Http01Handler
from spire_oidc.acme.listener import PeekSite
from spire_oidc.acme.manager import AcmeManager
from spire_oidc.acme.order import HTTP_01, ChallengePublisher, Responders
from spire_oidc.acme.replicas import PollIntervals, Replicas
from spire_oidc.acme.selector import CertificateTable
from spire_oidc.acme.session import Eab
from spire_oidc.acme.shared import SharedChallenges, SharedStorage, StoreCache
from spire_oidc.acme.trust import TrustBundle
from spire_oidc.acme.worker import Worker
from spire_oidc.config.model import AcmeConfig
from spire_oidc.core.clock import Clock
from spire_oidc.core.events import EventMetrics, NullMetrics
from spire_oidc.core.state import ProcessState
from spire_oidc.errors import StartupError
from spire_oidc.http.connlimit import ConnectionCap
from spire_oidc.http.listener_kinds import Description, SideListener, Work, sock_name
from spire_oidc.http.listeners import bind_tcp
from spire_oidc.http.timeouts import DEFAULT_TIMEOUTS, Timeouts
from spire_oidc.http.tls import CertFileReloader
from spire_oidc.storage.base import ObjectStore

log = structlog.get_logger("spire_oidc.acme")


class AcmeService:
    """Everything the ``acme`` block adds to the provider, as the main listener.

    Built with its server (contract C1), its cap (counted from accept), the http-01 listener's
    cap, the timeouts and the metrics; nothing is patched in afterwards. Constructing it creates
    the CA-bundle temp directory, which :meth:`stop` removes (also when start-up failed).
    """

    reloader: CertFileReloader | None = None

    def __init__(
        self,
        config: AcmeConfig,
        domains: tuple[str, ...],
        *,
        state: ProcessState,
        clock: Clock,
        server: web.Server | None = None,
        cap: ConnectionCap | None = None,
        http01_cap: ConnectionCap | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        metrics: EventMetrics | None = None,
        store: ObjectStore | None = None,
        polls: PollIntervals | None = None,
    ) -> None:
        """``store`` is the opened ``acme.storage`` (replicas); None: the local cache."""
        self.config = config
        names = [d.lower().rstrip(".") for d in domains if eligible(d)]
        skipped = [d for d in domains if not eligible(d)]
        if skipped:
            log.warning(
                "acme_names_skipped",
                names=skipped,
                reason="an ACME CA issues no certificate for single-label names or IP addresses",
            )
        if not names:
            raise StartupError(
                "acme: none of the configured domains can get a certificate from an ACME CA "
                f"(single-label names and IP addresses are skipped): {', '.join(domains)}"
            )
        self.names = tuple(dict.fromkeys(names))
        self.timeouts = timeouts
        self.cap = cap
        self.runner = web.ServerRunner(
            server if server is not None else web.Server(_not_served),
            shutdown_timeout=timeouts.shutdown_grace,
        )
        self.table = CertificateTable(self.names, wait_timeout=timeouts.handshake)
        self.http01 = (
            Http01Handler(self.names, https_port=config.port)
            if HTTP_01 in config.challenges
            else None
        )
        self.http01_listener = (
            SideListener(
                self.http01,
                addr=config.http_addr,
                host=config.http_host,
                port=config.http_port,
                timeouts=timeouts,
                cap=http01_cap or ConnectionCap(1024, listener="acme_http01"),
                event="serving_acme_http01",
            )
            if self.http01 is not None
            else None
        )
        self.metrics: EventMetrics = metrics if metrics is not None else NullMetrics()
        self.shared = (
            SharedStorage(store, clock=clock, metrics=self.metrics) if store is not None else None
        )
        self.challenges: SharedChallenges | None = None
        self.trust = TrustBundle(config.ca_bundle_path)  # a temp directory: see stop()
        try:
            self.manager = self._manager(config, state, clock, polls or PollIntervals())
        except BaseException:
            self.trust.close()
            raise
        self.manager.metrics = self.metrics
        self.socks: list[socket.socket] = []
        self.sites: list[PeekSite] = []
        self._serving = False
        self._managing = False

    def _manager(
        self, config: AcmeConfig, state: ProcessState, clock: Clock, polls: PollIntervals
    ) -> AcmeManager:
        worker = Worker()
        cache: AsyncCache
        publisher: ChallengePublisher | None = None
        replicas: Replicas | None = None
        if self.shared is None:
            cache = WorkerCache(open_cache(config.cache_dir), worker.call)
        else:
            shared = self.shared
            cache = StoreCache(shared)
            publisher = self.challenges = SharedChallenges(shared, self.names)
            self.table.challenge_lookup = self.challenges.tls_alpn
            if self.http01 is not None:
                self.http01.lookup = self.challenges.http01
            replicas = Replicas(shared, lease=config.lock_lease, polls=polls)
            state.reports["acme_storage"] = shared.status.report
        manager = AcmeManager(
            self.names,
            directory_url=config.directory_url,
            email=config.email,
            eab=Eab(config.eab_key_id, config.eab_hmac_key) if config.eab_key_id else None,
            verify=self.trust.verify,
            cache=cache,
            responders=Responders(self.table, self.http01, config.challenges, publisher),
            state=state,
            clock=clock,
            worker=worker,
            replicas=replicas,
        )
        if replicas is not None:
            replicas.attach(manager)
        return manager

    @property
    def addresses(self) -> list[str]:
        return [sock_name(s) for s in self.socks]

    @property
    def http_addresses(self) -> list[str]:
        return self.http01_listener.addresses if self.http01_listener is not None else []

    def bind(self) -> None:
        """Bind the TLS listener (and the http-01 one); nothing is served yet."""
        cfg = self.config
        self.socks = bind_tcp(cfg.addr, host=cfg.host or None, port=cfg.port)
        if self.http01_listener is not None:
            self.http01_listener.bind()

    async def start(self) -> None:
        """Serve on the TLS sockets (certificate chosen per ClientHello) and the http-01 one,
        install cached certificates, then order the missing ones in the background."""
        self._serving = True
        await self.runner.setup()
        for sock in self.socks:
            site = PeekSite(
                self.runner,
                sock,
                self.table.choose,
                handshake_timeout=self.timeouts.handshake,
                cap=self.cap,
            )
            await site.start()
            self.sites.append(site)
        if self.http01_listener is not None:
            await self.http01_listener.start()
            described = self.http01_listener.describe()
            log.info(described.event, **described.fields)
        log.info(
            "acme_started",
            names=list(self.names),
            directory_url=self.config.directory_url,
            challenges=list(self.config.challenges),
            cache_dir=self.config.cache_dir or None if self.shared is None else None,
            storage=self.shared.status.location if self.shared is not None else None,
            lock_lease_seconds=self.config.lock_lease if self.shared is not None else None,
            ca_trust=self.trust.base_source or "default",
            extra_ca_bundle=self.config.ca_bundle_path or None,
            eab_key_id=self.config.eab_key_id or None,
        )
        self._managing = True
        await self.manager.start()

    def background(self) -> Sequence[Work]:
        return ()

    def describe(self) -> Description:
        return Description(
            "serving_https_acme", {"address": self.addresses, "names": list(self.names)}
        )

    async def stop(self) -> None:
        """Stop accepting and drain, stop ordering, close the http-01 listener, remove the
        CA-bundle temp directory. Safe at any point of start-up, and more than once."""
        if self._serving:
            self._serving = False
            await self.runner.cleanup()
        for s in self.socks:
            s.close()
        if self._managing:
            self._managing = False
            await self.manager.stop()
        if self.http01_listener is not None:
            await self.http01_listener.stop()
        if self.shared is not None:
            await self.shared.close()
        self.trust.close()


async def _not_served(request: web.BaseRequest) -> web.StreamResponse:
    raise web.HTTPNotFound()

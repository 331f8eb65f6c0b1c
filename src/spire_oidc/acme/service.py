"""The ACME serving mode as the daemon sees it: bind, serve, start, stop.

Names a public CA cannot issue for (single-label names such as ``localhost``, IP literals) are
skipped with one log line, as Go autocert refuses them; if no name is left, start-up fails.
"""

from __future__ import annotations

import socket

import structlog
from aiohttp import web

from spire_oidc.acme.cache import open_cache
from spire_oidc.acme.certs import eligible
from spire_oidc.acme.http01 import Http01Handler
from spire_oidc.acme.listener import PeekSite
from spire_oidc.acme.manager import AcmeManager
from spire_oidc.acme.order import HTTP_01, Responders
from spire_oidc.acme.selector import CertificateTable
from spire_oidc.acme.session import Eab
from spire_oidc.acme.trust import TrustBundle
from spire_oidc.config.model import AcmeConfig
from spire_oidc.core.clock import Clock
from spire_oidc.core.state import ProcessState
from spire_oidc.errors import StartupError
from spire_oidc.http.listeners import bind_tcp, start_sites

log = structlog.get_logger("spire_oidc.acme")


class AcmeService:
    """Everything the ``acme`` block adds to the provider."""

    def __init__(
        self,
        config: AcmeConfig,
        domains: tuple[str, ...],
        *,
        state: ProcessState,
        clock: Clock,
        handshake_timeout: float = 10.0,
    ) -> None:
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
        self.trust = TrustBundle(config.ca_bundle_path)
        self.table = CertificateTable(self.names, wait_timeout=handshake_timeout)
        self.http01 = (
            Http01Handler(self.names, https_port=config.port)
            if HTTP_01 in config.challenges
            else None
        )
        self._handshake_timeout = handshake_timeout
        self.manager = AcmeManager(
            self.names,
            directory_url=config.directory_url,
            email=config.email,
            eab=Eab(config.eab_key_id, config.eab_hmac_key) if config.eab_key_id else None,
            verify=self.trust.verify,
            cache=open_cache(config.cache_dir),
            responders=Responders(self.table, self.http01, config.challenges),
            state=state,
            clock=clock,
        )
        self._http_socks: list[socket.socket] = []
        self._http_runner: web.ServerRunner | None = None
        self.sites: list[PeekSite] = []
        self.http_addresses: list[str] = []

    def bind(self) -> list[socket.socket]:
        """Bind the TLS listener (and the http-01 one); returns the TLS sockets."""
        cfg = self.config
        tls = bind_tcp(cfg.addr, host=cfg.host or None, port=cfg.port)
        if self.http01 is not None:
            try:
                self._http_socks = bind_tcp(
                    cfg.http_addr, host=cfg.http_host or None, port=cfg.http_port
                )
            except BaseException:
                for s in tls:
                    s.close()
                raise
        return tls

    def close_unused(self) -> None:
        """Start-up failed after :meth:`bind`: release what was bound."""
        for s in self._http_socks:
            s.close()
        self.trust.close()

    async def serve(self, runner: web.BaseRunner, socks: list[socket.socket]) -> None:
        """Serve the provider on the TLS sockets (certificate chosen per ClientHello)."""
        for sock in socks:
            site = PeekSite(
                runner, sock, self.table.choose, handshake_timeout=self._handshake_timeout
            )
            await site.start()
            self.sites.append(site)
        if self.http01 is not None:
            self._http_runner = web.ServerRunner(
                web.Server(self.http01, access_log=None), shutdown_timeout=1.0
            )
            await self._http_runner.setup()
            await start_sites(self._http_runner, self._http_socks)
            self.http_addresses = [_name(s) for s in self._http_socks]
            log.info("serving_acme_http01", address=self.http_addresses)

    async def start(self) -> None:
        """Install cached certificates, then order the missing ones in the background."""
        log.info(
            "acme_started",
            names=list(self.names),
            directory_url=self.config.directory_url,
            challenges=list(self.config.challenges),
            cache_dir=self.config.cache_dir or None,
            ca_trust=self.trust.base_source or "default",
            extra_ca_bundle=self.config.ca_bundle_path or None,
            eab_key_id=self.config.eab_key_id or None,
        )
        await self.manager.start()

    async def stop(self) -> None:
        await self.manager.stop()
        if self._http_runner is not None:
            await self._http_runner.cleanup()
        self.trust.close()


def _name(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

"""The building blocks of validation, and the checks of the keys SPIRE does not have.

:class:`Checks` holds the decoded document and makes errors that name the file, the position
and the dotted key; :class:`~spire_oidc.config.validate._Validator` runs SPIRE's checks in
SPIRE's order on top of it. The methods here check our keys (docs/configuration.md, ``ours``)
and the listen addresses, each raising :class:`ConfigError` with the key it is about.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import replace
from typing import Any, TypeVar

from spire_oidc.config.acme_replicas import replica_keys
from spire_oidc.config.domains import go_quote
from spire_oidc.config.gocompat import (
    DurationError,
    GoAddrError,
    GoURLError,
    parse_duration,
    parse_url,
    resolve_tcp_addr,
    split_listen_addr,
)
from spire_oidc.config.gonet import listen_overlap
from spire_oidc.config.hcl import Kind, Section
from spire_oidc.config.model import (
    ACME_CHALLENGE_TYPES,
    DEFAULT_ACME_ADDR,
    DEFAULT_ACME_HTTP_ADDR,
    DEFAULT_FILE_SYNC_INTERVAL,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_SERVING_ADDR,
    DEFAULT_STATE_MAX_AGE,
    METRICS_PATH,
    AcmeConfig,
    Config,
    DiscoveryDocumentConfig,
    HealthChecksConfig,
    ServingCertFileConfig,
)
from spire_oidc.config.schema import fields_of
from spire_oidc.errors import ConfigError

T = TypeVar("T")
_SUN_PATH = 108  # sizeof(sockaddr_un.sun_path) on Linux

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def is_base64url(value: str) -> bool:
    """Whether ``value`` is base64url (RFC 4648 §5; padding optional), as EAB keys are."""
    return bool(_BASE64URL.fullmatch(value)) and len(value.rstrip("=")) % 4 != 1


def child(section: Section | None, name: str) -> Section | None:
    """Block ``name`` of ``section``, None when either is absent."""
    return None if section is None else section.block(name)


def plain_values(section: Section, cls: type) -> dict[str, Any]:
    """The values of ``cls``'s plain keys given in ``section`` (strings, bools, ints, lists).

    A key without a rule of its own needs no code: it is read here by its declared kind.
    Absent keys are left out, so the dataclass default applies.
    """
    out: dict[str, Any] = {}
    for field_name, name, spec in fields_of(cls):
        if spec.duration or "." in name or not section.has(name):
            continue
        if spec.kind is Kind.STRING:
            out[field_name] = section.text(name)
        elif spec.kind is Kind.BOOL:
            out[field_name] = section.flag(name)
        elif spec.kind is Kind.INT:
            out[field_name] = section.integer(name)
        elif spec.kind is Kind.STRING_LIST:
            out[field_name] = tuple(section.strings(name))
    return out


class Checks:
    """The decoded document, its warnings so far, and error construction."""

    def __init__(
        self, text: str, path: str, is_json: bool, root: Section, warnings: list[str]
    ) -> None:
        self.text = text
        self.path = path
        self.is_json = is_json
        self.root = root
        self.warnings = list(warnings)
        self.domains_key = "domains"  # "domain" when the legacy key supplied them

    def error(self, message: str, section: Section | None = None, name: str = "") -> ConfigError:
        """A ConfigError about key ``name`` of ``section`` (positioned when known)."""
        err = ConfigError(message, path=self.path or None)
        if section is not None:
            err.key = section.key(name) if name else section.name
            pos = section.position(name) if name else None
            if pos is None and section is not self.root and section.name:
                pos = self.root.position(section.name.split(".")[0])
            if pos is not None:
                err.line, err.column = pos
        return err

    def build(self, cls: type[T], section: Section, **overrides: Any) -> T:
        """A ``cls`` from ``section``'s plain keys, then ``overrides`` (the checked ones)."""
        values = plain_values(section, cls)
        values.update(overrides)
        return cls(**values)

    def require(self, section: Section, name: str, block: str) -> str:
        """SPIRE's "<name> must be configured in the <block> configuration section" check."""
        value = section.text(name)
        if not value:
            message = f"{name} must be configured in the {block} configuration section"
            raise self.error(message, section, name)
        return value

    def duration(self, section: Section, name: str, default: float, block: str) -> float:
        raw = section.text(name)
        try:
            ns = parse_duration(raw) if raw else 0
        except DurationError as exc:
            raise self.error(
                f"invalid {name} in the {block} configuration section: {exc}", section, name
            ) from None
        return default if ns <= 0 else ns / 1e9

    def state_max_age(self) -> float:
        raw = self.root.text("state_max_age")
        try:
            ns = parse_duration(raw) if raw else 0
        except DurationError as exc:
            raise self.error(f"invalid state_max_age: {exc}", self.root, "state_max_age") from None
        return DEFAULT_STATE_MAX_AGE if ns <= 0 else ns / 1e9

    def discovery_document(self) -> DiscoveryDocumentConfig:
        block = self.root.block("discovery_document")
        if block is None:
            return DiscoveryDocumentConfig()
        where = "in the discovery_document configuration section"
        endpoint = block.text("authorization_endpoint")
        omit = block.flag("omit_authorization_endpoint")
        if endpoint and omit:
            raise self.error(
                f"authorization_endpoint and omit_authorization_endpoint are mutually exclusive "
                f"{where}",
                block,
                "authorization_endpoint",
            )
        if endpoint:
            try:
                scheme, host = parse_url(endpoint)
            except GoURLError as exc:
                scheme, host = "", str(exc)
            if scheme != "https" or not host or " " in host:
                raise self.error(
                    f"authorization_endpoint must be an https URL {where}: {go_quote(endpoint)}",
                    block,
                    "authorization_endpoint",
                )
        claims: tuple[str, ...] | None = None
        if block.has("claims_supported"):
            claims = tuple(block.strings("claims_supported"))
            if any(not c or c != c.strip() for c in claims):
                raise self.error(
                    f"claims_supported entries must be non-empty claim names {where}",
                    block,
                    "claims_supported",
                )
        return self.build(DiscoveryDocumentConfig, block, claims_supported=claims)

    def max_connections(self) -> int:
        if not self.root.has("max_connections"):
            return DEFAULT_MAX_CONNECTIONS
        value = self.root.integer("max_connections")
        if value < 1:
            raise self.error(
                f"max_connections must be at least 1 (got {value})", self.root, "max_connections"
            )
        return value

    def trusted_proxies(self) -> tuple[str, ...] | None:
        if not self.root.has("trusted_proxies"):
            return None
        entries = self.root.strings("trusted_proxies")
        for entry in entries:
            if entry == "unix":
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise self.error(
                    f'trusted_proxies entry {go_quote(entry)} is not "unix", an IP address '
                    "or a CIDR range",
                    self.root,
                    "trusted_proxies",
                ) from None
        return tuple(entries)

    def _acme_addr(self, acme: Section, name: str, default: str) -> tuple[str, str, int]:
        addr = acme.text(name) or default
        try:
            host, port = resolve_tcp_addr(addr)
        except GoAddrError as exc:
            message = f"invalid {name} in the acme configuration section: {exc}"
            raise self.error(message, acme, name) from None
        return addr, host, port

    def acme_extensions(self, acme: Section, base: AcmeConfig) -> AcmeConfig:
        """The acme keys beyond SPIRE's (docs/acme.md), checked after SPIRE's own."""
        addr, host, port = self._acme_addr(acme, "addr", DEFAULT_ACME_ADDR)
        challenges: tuple[str, ...] = ("tls-alpn-01",)
        if acme.has("challenges"):
            challenges = tuple(dict.fromkeys(acme.strings("challenges")))
            if not challenges:
                raise self.error(
                    "challenges must name at least one challenge type in the acme "
                    "configuration section",
                    acme,
                    "challenges",
                )
            for typ in challenges:
                if typ not in ACME_CHALLENGE_TYPES:
                    raise self.error(
                        f"unsupported challenge type {go_quote(typ)} in the acme configuration "
                        f"section (supported: {', '.join(ACME_CHALLENGE_TYPES)})",
                        acme,
                        "challenges",
                    )
        http_addr, http_host, http_port = self._acme_addr(acme, "http_addr", DEFAULT_ACME_HTTP_ADDR)
        key_id = hmac_key = ""
        eab = acme.block("eab")
        if eab is not None:
            key_id = self.require(eab, "key_id", "acme.eab")
            hmac_key = self.require(eab, "hmac_key", "acme.eab")
            if not is_base64url(hmac_key):
                raise self.error(
                    "hmac_key must be base64url-encoded in the acme.eab configuration section",
                    eab,
                    "hmac_key",
                )
        storage, lock_lease = replica_keys(self, acme)
        return replace(
            base,
            storage=storage,
            lock_lease=lock_lease,
            cache_dir="" if storage else base.cache_dir,  # storage replaces the cache
            addr=addr,
            host=host,
            port=port,
            challenges=challenges,
            http_addr=http_addr,
            http_host=http_host,
            http_port=http_port,
            eab_key_id=key_id,
            eab_hmac_key=hmac_key,
        )

    def serving_cert_file(self) -> ServingCertFileConfig | None:
        scf = self.root.block("serving_cert_file")
        if scf is None:
            return None
        cert = self.require(scf, "cert_file_path", "serving_cert_file")
        key = self.require(scf, "key_file_path", "serving_cert_file")
        addr = scf.text("addr") or DEFAULT_SERVING_ADDR
        try:
            host, port = resolve_tcp_addr(addr)
        except GoAddrError as exc:
            message = f"invalid addr in the serving_cert_file configuration section: {exc}"
            raise self.error(message, scf, "addr") from None
        sync = self.duration(
            scf, "file_sync_interval", DEFAULT_FILE_SYNC_INTERVAL, "serving_cert_file"
        )
        return ServingCertFileConfig(
            cert_file_path=cert,
            key_file_path=key,
            addr=addr,
            host=host,
            port=port,
            file_sync_interval=sync,
        )

    def health(self, health: Section, cfg: HealthChecksConfig) -> None:
        block = "in the health_checks configuration section"
        for name, value in (("ready_path", cfg.ready_path), ("live_path", cfg.live_path)):
            if not value.startswith("/") or any(c.isspace() for c in value):
                raise self.error(
                    f'{name} must be a path starting with "/" and without spaces {block}: '
                    f"{go_quote(value)}",
                    health,
                    name,
                )
        if cfg.ready_path == cfg.live_path:
            raise self.error(
                f"ready_path and live_path must be different {block}: both are "
                f"{go_quote(cfg.ready_path)}",
                health,
                "live_path",
            )
        if cfg.bind_port > 65535:
            raise self.error(
                f"bind_port must be between 1 and 65535 {block}: {cfg.bind_port}",
                health,
                "bind_port",
            )
        if cfg.bind_host and cfg.bind_host != "localhost":
            try:
                ipaddress.ip_address(cfg.bind_host)
            except ValueError:
                raise self.error(
                    f'bind_host must be an IP address or "localhost" {block}: '
                    f"{go_quote(cfg.bind_host)}",
                    health,
                    "bind_host",
                ) from None
        if cfg.metrics:
            for name, value in (("ready_path", cfg.ready_path), ("live_path", cfg.live_path)):
                if value == METRICS_PATH:
                    raise self.error(
                        f"{name} must not be {go_quote(METRICS_PATH)} when metrics is enabled "
                        f"{block}",
                        health,
                        name,
                    )

    def main_listener(self) -> None:
        """The listen address SPIRE only rejects when it binds (``net.Listen``), checked now.

        ``insecure_addr`` gets Go's ``listen tcp: ...`` text; ``listen_socket_path`` Go's
        ``listen unix ...: bind: invalid argument`` when it cannot fit in ``sun_path`` (107
        bytes, 108 for an abstract ``@name``), with the limit added.
        """
        root = self.root
        addr = root.text("insecure_addr")
        if addr:
            try:
                split_listen_addr(addr)
            except GoAddrError as exc:
                raise self.error(f"listen tcp: {exc}", root, "insecure_addr") from None
        path = root.text("listen_socket_path")
        size = len(os.fsencode(path))
        limit = _SUN_PATH if path.startswith("@") else _SUN_PATH - 1
        if size > limit:
            raise self.error(
                f"listen unix {path}: bind: invalid argument (a unix socket path is at most "
                f"{limit} bytes; this one is {size})",
                root,
                "listen_socket_path",
            )

    def shared_ports(self, cfg: Config) -> None:
        """Two of our listeners on one TCP port can never both bind: say so now, not at start.

        Go's text for the second bind comes first (``listen tcp :8008: bind: address already
        in use``), then which keys collide. Port 0 (any free port) never collides.
        """
        listeners: list[tuple[str, str, int, Section | None, str]] = []  # key, host, port, ...
        if cfg.insecure_addr:
            host, port = split_listen_addr(cfg.insecure_addr)
            listeners.append(("insecure_addr", host, port, self.root, "insecure_addr"))
        scf = cfg.serving_cert_file
        if scf is not None:
            block = self.root.block("serving_cert_file")
            listeners.append(("serving_cert_file.addr", scf.host, scf.port, block, "addr"))
        svid = cfg.serving_svid
        if svid is not None:
            block = self.root.block("serving_svid")
            listeners.append(("serving_svid.addr", svid.host, svid.port, block, "addr"))
        acme = cfg.acme
        if acme is not None:
            block = self.root.block("acme")
            listeners.append(("acme.addr", acme.host, acme.port, block, "addr"))
            if "http-01" in acme.challenges:
                listeners.append(
                    ("acme.http_addr", acme.http_host, acme.http_port, block, "http_addr")
                )
        hc = cfg.health_checks
        if hc is not None:
            block = self.root.block("health_checks")
            listeners.append(
                ("health_checks.bind_port", hc.bind_host, hc.bind_port, block, "bind_port")
            )
        for i, (key_b, host_b, port_b, section, name) in enumerate(listeners):
            for key_a, host_a, port_a, _, _ in listeners[:i]:
                if port_a == port_b != 0 and listen_overlap(host_a, host_b):
                    shown = f"[{host_b}]" if ":" in host_b else host_b
                    raise self.error(
                        f"listen tcp {shown}:{port_b}: bind: address already in use ({key_a} "
                        f"and {key_b} both listen on port {port_b})",
                        section,
                        name,
                    )

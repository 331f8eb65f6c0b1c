"""Configuration: SPIRE's HCL v1 / JSON text -> frozen, validated dataclasses.

Every default, coercion and cross-field rule lives here; nothing downstream sees a raw string.
Errors are :class:`~spire_oidc.errors.ConfigError` with SPIRE's wording (spire-behavior.md §2),
checked in SPIRE's order (§2.4: the first failing check wins), followed by the checks SPIRE only
makes at start-up (log level and format, the IDNA form of each domain, the workload trust
domain, the health-check paths and port), so a config that passes here starts.

Beyond SPIRE (DESIGN.md decisions 4 and 10, compatibility table):

* unknown keys are accepted but warned about by dotted name, with a did-you-mean;
* the removed ``domain`` key (string or list) is used as ``domains`` only when ``domains`` is
  absent or empty, and the removed ``registration_api { socket_path, poll_interval }`` block
  becomes the Server API on ``unix:<socket_path>`` only when no other source is configured;
  otherwise both are ignored, as SPIRE ignores them - with a warning either way;
* a ``server_path_prefix`` without a leading ``/`` is normalised to ``/<prefix>``;
* Windows-only keys (``experimental.*named_pipe_name``) are accepted and ignored, with a warning.

Warnings are returned in :attr:`Config.warnings`; this module never prints. HCL decoding
details (and the few places where pyhcl cannot match hcl v1) are in :mod:`spire_oidc.config.hcl`.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from spire_oidc.config.domains import DomainError, go_quote, to_domain_key, trust_domain_error
from spire_oidc.config.gocompat import (
    DurationError,
    GoAddrError,
    GoURLError,
    go_expand,
    parse_duration,
    parse_url,
    resolve_tcp_addr,
)
from spire_oidc.config.hcl import (
    Field,
    Kind,
    Section,
    decode,
    decode_block,
    decode_strings,
    parse_document,
)
from spire_oidc.errors import ConfigError

__all__ = [
    "AcmeConfig",
    "Config",
    "DiscoveryDocumentConfig",
    "FileConfig",
    "HealthChecksConfig",
    "ServerAPIConfig",
    "ServingCertFileConfig",
    "SourceConfig",
    "WorkloadAPIConfig",
    "effective_config",
    "expand_env",
    "load_config",
    "parse_config",
]

DEFAULT_POLL_INTERVAL = 10.0
DEFAULT_FILE_SYNC_INTERVAL = 60.0
DEFAULT_ACME_DIRECTORY_URL = "https://acme-v02.api.letsencrypt.org/directory"
DEFAULT_ACME_CACHE_DIR = "./.acme-cache"
DEFAULT_ACME_ADDR = ":443"  # SPIRE's fixed ACME port
DEFAULT_ACME_HTTP_ADDR = ":80"
ACME_CHALLENGE_TYPES = ("tls-alpn-01", "http-01")
DEFAULT_HEALTH_PORT = 8008
METRICS_PATH = "/metrics"  # health_checks.metrics serves here
DEFAULT_STATE_MAX_AGE = 24 * 3600.0
DEFAULT_MAX_CONNECTIONS = 10000
DEFAULT_SERVING_ADDR = ":443"

JWT_ISSUER_WARNING = (
    "The jwt_issuer configuration will also affect the jwks_uri behavior when jwks_url is not "
    "set. This behaviour will be changed in 1.13.0."
)


@dataclass(frozen=True)
class AcmeConfig:
    directory_url: str = DEFAULT_ACME_DIRECTORY_URL
    email: str = ""
    tos_accepted: bool = False
    cache_dir: str = DEFAULT_ACME_CACHE_DIR  # "" disables the cache (SPIRE)
    # Beyond SPIRE (docs/acme.md); SPIRE ignores these keys.
    addr: str = DEFAULT_ACME_ADDR  # the TLS listener (tls-alpn-01 too), as written
    host: str = ""  # "" = all interfaces
    port: int = 443
    challenges: tuple[str, ...] = ("tls-alpn-01",)  # preference order
    http_addr: str = DEFAULT_ACME_HTTP_ADDR  # the http-01 listener, bound only for http-01
    http_host: str = ""
    http_port: int = 80
    ca_bundle_path: str = ""  # extra roots trusted for the ACME server's HTTPS
    eab_key_id: str = ""
    eab_hmac_key: str = field(default="", repr=False)  # base64url; a secret


@dataclass(frozen=True)
class ServingCertFileConfig:
    cert_file_path: str
    key_file_path: str
    addr: str = ":443"  # as written, validated host:port
    host: str = ""  # "" = all interfaces
    port: int = 443
    file_sync_interval: float = DEFAULT_FILE_SYNC_INTERVAL


@dataclass(frozen=True)
class ServerAPIConfig:
    address: str  # "unix:..." gRPC target
    poll_interval: float = DEFAULT_POLL_INTERVAL
    legacy_registration_api: bool = False  # came from registration_api { socket_path }


@dataclass(frozen=True)
class WorkloadAPIConfig:
    socket_path: str  # as written
    trust_domain: str  # as written
    poll_interval: float = DEFAULT_POLL_INTERVAL


@dataclass(frozen=True)
class FileConfig:
    path: str
    poll_interval: float = DEFAULT_POLL_INTERVAL


@dataclass(frozen=True)
class HealthChecksConfig:
    bind_port: int = DEFAULT_HEALTH_PORT
    ready_path: str = "/ready"
    live_path: str = "/live"
    # Ours (docs/configuration.md). Not "bind_address": SPIRE ignores that key here, and configs
    # copied from SPIRE's server/agent carry it, so honouring it would change their meaning.
    bind_host: str = ""  # "" = every interface, IPv4 and IPv6 (SPIRE)
    metrics: bool = False  # Prometheus exposition at /metrics on this listener


@dataclass(frozen=True)
class DiscoveryDocumentConfig:
    """Ours: spec-clean discovery document variants (docs/relying-parties.md). Defaults = SPIRE."""

    authorization_endpoint: str = ""  # "" = SPIRE's empty string
    omit_authorization_endpoint: bool = False
    signing_algs_from_keys: bool = False
    claims_supported: tuple[str, ...] | None = None  # None = not emitted


SourceConfig = ServerAPIConfig | WorkloadAPIConfig | FileConfig


@dataclass(frozen=True)
class Config:
    domains: tuple[str, ...]
    source: SourceConfig
    log_format: str = ""
    log_level: str = "info"
    log_path: str = ""
    log_requests: bool = False
    set_key_use: bool = False
    allow_insecure_scheme: bool = False
    insecure_addr: str = ""
    listen_socket_path: str = ""
    acme: AcmeConfig | None = None
    serving_cert_file: ServingCertFileConfig | None = None
    health_checks: HealthChecksConfig | None = None
    jwt_issuer: str = ""
    jwks_uri: str = ""
    server_path_prefix: str = ""
    # Ours (SPIRE ignores unknown keys): persisted last good keys, and proxy-header trust.
    state_dir: str = ""  # "" = no persistence
    state_max_age: float = DEFAULT_STATE_MAX_AGE
    trusted_proxies: tuple[str, ...] | None = None  # None = trust every client (SPIRE)
    max_connections: int = DEFAULT_MAX_CONNECTIONS  # concurrent connections on the main listener
    discovery_document: DiscoveryDocumentConfig = field(default_factory=DiscoveryDocumentConfig)
    path: str = ""  # the file it was read from
    warnings: tuple[str, ...] = field(default=(), compare=False)


# ---------------------------------------------------------------------------------------------
# The schema: SPIRE's Config struct (config.go), fields in Go declaration order, since hcl
# decodes (and reports type errors) field by field in that order.

_S, _I, _B, _L, _BLK, _RAW = (
    Kind.STRING,
    Kind.INT,
    Kind.BOOL,
    Kind.STRING_LIST,
    Kind.BLOCK,
    Kind.RAW,
)
_PIPE = (Field("named_pipe_name", _S),)
_POLL = Field("poll_interval", _S)
_REGISTRATION_API = (Field("socket_path", _S), _POLL)
_SCHEMA = (
    Field("log_format", _S),
    Field("log_level", _S),
    Field("log_path", _S),
    Field("log_requests", _B),
    Field("domains", _L),
    Field("set_key_use", _B),
    Field("allow_insecure_scheme", _B),
    Field("insecure_addr", _S),
    Field("listen_socket_path", _S),
    Field(
        "acme",
        _BLK,
        (
            Field("directory_url", _S),
            Field("email", _S),
            Field("tos_accepted", _B),
            Field("cache_dir", _S),
            Field("addr", _S),
            Field("challenges", _L),
            Field("http_addr", _S),
            Field("ca_bundle_path", _S),
            Field("eab", _BLK, (Field("key_id", _S), Field("hmac_key", _S))),
        ),
    ),
    Field(
        "serving_cert_file",
        _BLK,
        (
            Field("cert_file_path", _S),
            Field("key_file_path", _S),
            Field("addr", _S),
            Field("file_sync_interval", _S),
        ),
    ),
    Field("server_api", _BLK, (Field("address", _S), _POLL, Field("experimental", _BLK, _PIPE))),
    Field(
        "workload_api",
        _BLK,
        (
            Field("socket_path", _S),
            Field("trust_domain", _S),
            _POLL,
            Field("experimental", _BLK, _PIPE),
        ),
    ),
    Field("file", _BLK, (Field("path", _S), _POLL)),
    Field(
        "health_checks",
        _BLK,
        (
            Field("bind_port", _I),
            Field("live_path", _S),
            Field("ready_path", _S),
            Field("bind_host", _S),
            Field("metrics", _B),
        ),
    ),
    Field("experimental", _BLK, (Field("listen_named_pipe_name", _S),)),
    Field("jwt_issuer", _S),
    Field("jwks_uri", _S),
    Field("server_path_prefix", _S),
    Field("state_dir", _S),
    Field("state_max_age", _S),
    Field("trusted_proxies", _L),
    Field("max_connections", _I),
    Field(
        "discovery_document",
        _BLK,
        (
            Field("authorization_endpoint", _S),
            Field("omit_authorization_endpoint", _B),
            Field("signing_algs_from_keys", _B),
            Field("claims_supported", _L),
        ),
    ),
    # Removed from SPIRE, still found in real configs; decoded only when used.
    Field("domain", _RAW),
    Field("registration_api", _RAW),
)

_LOG_LEVELS = {
    "panic": "panic",
    "fatal": "fatal",
    "error": "error",
    "warn": "warn",
    "warning": "warn",
    "info": "info",
    "debug": "debug",
    "trace": "trace",
}
_LOG_FORMATS = {"": "", "TEXT": "text", "JSON": "json"}

# Dotted effective_config keys whose values must never be shown.
_SECRET_FIELDS: frozenset[str] = frozenset({"acme.eab.hmac_key"})


# ---------------------------------------------------------------------------------------------
# Public API


def expand_env(text: str, environ: Mapping[str, str]) -> str:
    """Expand ``$VAR`` / ``${VAR}`` like SPIRE's ``-expandEnv`` (Go ``os.Expand``).

    Unset variables become empty, ``$$`` becomes ``$``, ``${VAR:-x}`` looks up the name
    ``VAR:-x``, the shell's special names (``$1``, ``$*``, ``$#`` ...) are single characters,
    ``${}`` and an unterminated ``${`` are dropped, and a ``$`` followed by nothing nameable
    (or at the very end) stays.
    """
    return go_expand(text, lambda name: "$" if name == "$" else environ.get(name, ""))


def load_config(
    path: str, *, expand_env: bool = False, environ: Mapping[str, str] | None = None
) -> Config:
    """Read, optionally env-expand (``-expandEnv``), parse and validate the file at ``path``."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError(
            f"unable to load configuration: {_go_os_error(path, exc)}", path=path
        ) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = data[: exc.start].decode("utf-8", errors="replace")
        line = prefix.count("\n") + 1
        column = len(prefix) - (prefix.rfind("\n") + 1) + 1
        raise ConfigError(
            f"unable to decode configuration: At {line}:{column}: illegal UTF-8 encoding",
            path=path,
            line=line,
            column=column,
        ) from exc
    if expand_env:
        text = _expand(text, os.environ if environ is None else environ)
    return parse_config(text, path=path)


_expand = expand_env


def _go_os_error(path: str, exc: OSError) -> str:
    """Go's ``*PathError`` text for a failed ``os.ReadFile`` (``open x: no such file ...``)."""
    reason = (exc.strerror or str(exc)).lower()
    op = "read" if isinstance(exc, IsADirectoryError) else "open"
    return f"{op} {path}: {reason}"


def parse_config(text: str, *, path: str = "") -> Config:
    """Parse and validate configuration ``text`` (HCL v1 or JSON); ``path`` names it in errors.

    Raises :class:`ConfigError` with SPIRE's message for the first failing check.
    """
    try:
        root, is_json = parse_document(text, path or None)
        section, warnings = decode(text, root, _SCHEMA, path=path or None, is_json=is_json)
    except RecursionError as exc:
        raise ConfigError(
            "unable to decode configuration: document nested too deeply", path=path or None
        ) from exc
    return _Validator(text, path, is_json, section, warnings).run()


def effective_config(cfg: Config) -> dict[str, object]:
    """The configuration as it takes effect, for ``validate -json``.

    SPIRE's key names, every key present with its default applied, legacy keys folded into
    their modern form, absent optional blocks ``None``, durations in seconds, the source under
    its block name (the other two ``None``), secrets (``_SECRET_FIELDS``) redacted.
    """
    src = cfg.source
    out: dict[str, object] = {
        "log_format": cfg.log_format,
        "log_level": cfg.log_level,
        "log_path": cfg.log_path,
        "log_requests": cfg.log_requests,
        "domains": list(cfg.domains),
        "set_key_use": cfg.set_key_use,
        "allow_insecure_scheme": cfg.allow_insecure_scheme,
        "insecure_addr": cfg.insecure_addr,
        "listen_socket_path": cfg.listen_socket_path,
        "acme": None,
        "serving_cert_file": None,
        "server_api": None,
        "workload_api": None,
        "file": None,
        "health_checks": None,
        "jwt_issuer": cfg.jwt_issuer,
        "jwks_uri": cfg.jwks_uri,
        "server_path_prefix": cfg.server_path_prefix,
        "state_dir": cfg.state_dir,
        "state_max_age": _seconds(cfg.state_max_age),
        "trusted_proxies": None if cfg.trusted_proxies is None else list(cfg.trusted_proxies),
        "max_connections": cfg.max_connections,
        "discovery_document": {
            "authorization_endpoint": cfg.discovery_document.authorization_endpoint,
            "omit_authorization_endpoint": cfg.discovery_document.omit_authorization_endpoint,
            "signing_algs_from_keys": cfg.discovery_document.signing_algs_from_keys,
            "claims_supported": (
                None
                if cfg.discovery_document.claims_supported is None
                else list(cfg.discovery_document.claims_supported)
            ),
        },
    }
    if cfg.acme is not None:
        out["acme"] = {
            "directory_url": cfg.acme.directory_url,
            "email": cfg.acme.email,
            "tos_accepted": cfg.acme.tos_accepted,
            "cache_dir": cfg.acme.cache_dir,
            "addr": cfg.acme.addr,
            "challenges": list(cfg.acme.challenges),
            "http_addr": cfg.acme.http_addr,
            "ca_bundle_path": cfg.acme.ca_bundle_path,
            "eab": (
                {"key_id": cfg.acme.eab_key_id, "hmac_key": cfg.acme.eab_hmac_key}
                if cfg.acme.eab_key_id
                else None
            ),
        }
    if cfg.serving_cert_file is not None:
        scf = cfg.serving_cert_file
        out["serving_cert_file"] = {
            "cert_file_path": scf.cert_file_path,
            "key_file_path": scf.key_file_path,
            "addr": scf.addr,
            "file_sync_interval": _seconds(scf.file_sync_interval),
        }
    if isinstance(src, ServerAPIConfig):
        out["server_api"] = {"address": src.address, "poll_interval": _seconds(src.poll_interval)}
    elif isinstance(src, WorkloadAPIConfig):
        out["workload_api"] = {
            "socket_path": src.socket_path,
            "trust_domain": src.trust_domain,
            "poll_interval": _seconds(src.poll_interval),
        }
    else:
        out["file"] = {"path": src.path, "poll_interval": _seconds(src.poll_interval)}
    if cfg.health_checks is not None:
        out["health_checks"] = {
            "bind_port": cfg.health_checks.bind_port,
            "ready_path": cfg.health_checks.ready_path,
            "live_path": cfg.health_checks.live_path,
            "bind_host": cfg.health_checks.bind_host,
            "metrics": cfg.health_checks.metrics,
        }
    return _redact(out, "")


_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def _is_base64url(value: str) -> bool:
    """Whether ``value`` is base64url (RFC 4648 §5; padding optional), as EAB keys are."""
    return bool(_BASE64URL.fullmatch(value)) and len(value.rstrip("=")) % 4 != 1


def _seconds(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _redact(tree: dict[str, object], prefix: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in tree.items():
        dotted = prefix + key
        if isinstance(value, dict):
            out[key] = _redact(value, dotted + ".")
        elif dotted in _SECRET_FIELDS and value not in (None, ""):
            out[key] = "<redacted>"
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------------------------------------
# Validation, in SPIRE's order (config.go ParseConfig, main_posix.go validateOS), then the
# start-up checks (main.go run).


class _Validator:
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

    def run(self) -> Config:
        root = self.root
        domains = self._domains()
        # 3. acme
        acme_cfg: AcmeConfig | None = None
        acme = root.block("acme")
        if acme is not None:
            if root.text("insecure_addr"):
                raise self.error(
                    "insecure_addr and the acme section are mutually exclusive", root, "acme"
                )
            if not acme.flag("tos_accepted"):
                raise self.error(
                    "tos_accepted must be set to true in the acme configuration section",
                    acme,
                    "tos_accepted",
                )
            acme_cfg = self._acme_extensions(
                acme,
                AcmeConfig(
                    directory_url=acme.text("directory_url") or DEFAULT_ACME_DIRECTORY_URL,
                    email=self.require(acme, "email", "acme"),
                    tos_accepted=True,
                    cache_dir=acme.text("cache_dir", DEFAULT_ACME_CACHE_DIR),
                ),
            )
        # 4. serving_cert_file
        serving = self._serving_cert_file()
        # 5-7. sources
        server_api, legacy = root.block("server_api"), False
        workload, file_ = root.block("workload_api"), root.block("file")
        if "registration_api" in root.raw:
            if server_api is None and workload is None and file_ is None:
                server_api, legacy = self._registration_api(), True
            else:
                self.warnings.append(
                    "the removed registration_api section is ignored because another source "
                    "section is configured"
                )
        server_poll = workload_poll = file_poll = DEFAULT_POLL_INTERVAL
        if server_api is not None:
            block = "registration_api" if legacy else "server_api"
            server_poll = self.duration(server_api, "poll_interval", DEFAULT_POLL_INTERVAL, block)
        if workload is not None:
            self.require(workload, "trust_domain", "workload_api")
            workload_poll = self.duration(
                workload, "poll_interval", DEFAULT_POLL_INTERVAL, "workload_api"
            )
        if file_ is not None:
            file_poll = self.duration(file_, "poll_interval", DEFAULT_POLL_INTERVAL, "file")
        # 8. health_checks defaults
        health = root.block("health_checks")
        health_cfg: HealthChecksConfig | None = None
        if health is not None:
            port = health.integer("bind_port")
            health_cfg = HealthChecksConfig(
                bind_port=port if port > 0 else DEFAULT_HEALTH_PORT,
                ready_path=health.text("ready_path") or "/ready",
                live_path=health.text("live_path") or "/live",
                bind_host=health.text("bind_host"),
                metrics=health.flag("metrics"),
            )
        # 9. validateOS
        self._listeners(acme is not None, serving is not None)
        if server_api is not None:
            if legacy:
                self.require(server_api, "socket_path", "registration_api")
            elif not self.require(server_api, "address", "server_api").startswith("unix:"):
                raise self.error(
                    "address must use the unix name system in the server_api configuration section",
                    server_api,
                    "address",
                )
        if workload is not None:
            self.require(workload, "socket_path", "workload_api")
        # 10. exactly one source
        count = sum(s is not None for s in (server_api, workload, file_))
        if count == 0:
            raise self.error(
                "exactly one of the server_api, workload_api, or file sections must be configured"
            )
        if count > 1:
            raise self.error(
                "the server_api, workload_api, and file sections are mutually exclusive"
            )
        source: SourceConfig
        if server_api is not None:
            address = (
                "unix:" + server_api.text("socket_path") if legacy else server_api.text("address")
            )
            source = ServerAPIConfig(address, server_poll, legacy_registration_api=legacy)
        elif workload is not None:
            source = WorkloadAPIConfig(
                workload.text("socket_path"), workload.text("trust_domain"), workload_poll
            )
        else:
            assert file_ is not None
            source = FileConfig(file_.text("path"), file_poll)
        # 11-13. jwt_issuer, jwks_uri, the warning
        self._urls()
        # Start-up checks (SPIRE: logger, source, allowlist, health mux).
        log_level, log_format = self._logging()
        if isinstance(source, WorkloadAPIConfig):
            problem = trust_domain_error(source.trust_domain)
            if problem:
                assert workload is not None
                raise self.error(problem, workload, "trust_domain")
        for domain in domains:
            try:
                to_domain_key(domain)
            except DomainError as exc:
                raise self.error(str(exc), root, self.domains_key) from None
        if health_cfg is not None:
            assert health is not None
            self._health(health, health_cfg)
        self._windows_only(workload)
        return Config(
            domains=domains,
            source=source,
            log_format=log_format,
            log_level=log_level,
            log_path=root.text("log_path"),
            log_requests=root.flag("log_requests"),
            set_key_use=root.flag("set_key_use"),
            allow_insecure_scheme=root.flag("allow_insecure_scheme"),
            insecure_addr=root.text("insecure_addr"),
            listen_socket_path=root.text("listen_socket_path"),
            acme=acme_cfg,
            serving_cert_file=serving,
            health_checks=health_cfg,
            jwt_issuer=root.text("jwt_issuer"),
            jwks_uri=root.text("jwks_uri"),
            server_path_prefix=self._prefix(),
            state_dir=root.text("state_dir"),
            state_max_age=self._state_max_age(),
            trusted_proxies=self._trusted_proxies(),
            max_connections=self._max_connections(),
            discovery_document=self._discovery_document(),
            path=self.path,
            warnings=tuple(self.warnings),
        )

    def _state_max_age(self) -> float:
        raw = self.root.text("state_max_age")
        try:
            ns = parse_duration(raw) if raw else 0
        except DurationError as exc:
            raise self.error(f"invalid state_max_age: {exc}", self.root, "state_max_age") from None
        return DEFAULT_STATE_MAX_AGE if ns <= 0 else ns / 1e9

    def _discovery_document(self) -> DiscoveryDocumentConfig:
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
        return DiscoveryDocumentConfig(
            authorization_endpoint=endpoint,
            omit_authorization_endpoint=omit,
            signing_algs_from_keys=block.flag("signing_algs_from_keys"),
            claims_supported=claims,
        )

    def _max_connections(self) -> int:
        if not self.root.has("max_connections"):
            return DEFAULT_MAX_CONNECTIONS
        value = self.root.integer("max_connections")
        if value < 1:
            raise self.error(
                f"max_connections must be at least 1 (got {value})", self.root, "max_connections"
            )
        return value

    def _trusted_proxies(self) -> tuple[str, ...] | None:
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

    def _domains(self) -> tuple[str, ...]:
        root = self.root
        domains = root.strings("domains")
        if "domain" in root.raw:
            if domains:
                self.warnings.append(
                    "the removed domain key is ignored because domains is set (SPIRE removed "
                    "domain in v1.2.0)"
                )
            else:
                try:
                    legacy = decode_strings(
                        self.text,
                        root.raw["domain"],
                        path=self.path or None,
                        is_json=self.is_json,
                        key="domain",
                    )
                except ConfigError as exc:
                    self.warnings.append(
                        f"the removed domain key is ignored: it is not a string or a list of "
                        f"strings ({exc.message.removeprefix('unable to decode configuration: ')})"
                    )
                    legacy = []
                domains = [d for d in legacy if d]
                if domains:
                    self.warnings.append(
                        "domain is deprecated (removed in SPIRE v1.2.0, which ignores it): used as "
                        f"domains = [{', '.join(go_quote(d) for d in domains)}]; rename it to "
                        "domains"
                    )
                    self.domains_key = "domain"
        if not domains:
            raise self.error("at least one domain must be configured", root, "domains")
        return tuple(dict.fromkeys(domains))

    def _registration_api(self) -> Section:
        section, warnings = decode_block(
            self.text,
            self.root.raw["registration_api"],
            _REGISTRATION_API,
            path=self.path or None,
            is_json=self.is_json,
            key="registration_api",
        )
        self.warnings.extend(warnings)
        socket_path = section.text("socket_path")
        self.warnings.append(
            "registration_api is deprecated (removed in SPIRE v1.1.0, which ignores it): used "
            f"as server_api {{ address = {go_quote('unix:' + socket_path)} }}; rename it"
        )
        return section

    def _acme_addr(self, acme: Section, name: str, default: str) -> tuple[str, str, int]:
        addr = acme.text(name) or default
        try:
            host, port = resolve_tcp_addr(addr)
        except GoAddrError as exc:
            message = f"invalid {name} in the acme configuration section: {exc}"
            raise self.error(message, acme, name) from None
        return addr, host, port

    def _acme_extensions(self, acme: Section, base: AcmeConfig) -> AcmeConfig:
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
            if not _is_base64url(hmac_key):
                raise self.error(
                    "hmac_key must be base64url-encoded in the acme.eab configuration section",
                    eab,
                    "hmac_key",
                )
        return replace(
            base,
            addr=addr,
            host=host,
            port=port,
            challenges=challenges,
            http_addr=http_addr,
            http_host=http_host,
            http_port=http_port,
            ca_bundle_path=acme.text("ca_bundle_path"),
            eab_key_id=key_id,
            eab_hmac_key=hmac_key,
        )

    def _serving_cert_file(self) -> ServingCertFileConfig | None:
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

    def _listeners(self, acme: bool, serving: bool) -> None:
        root = self.root
        insecure = bool(root.text("insecure_addr"))
        socket_ = bool(root.text("listen_socket_path"))
        checks = (
            (
                not (acme or serving or insecure or socket_),
                "either acme, serving_cert_file, insecure_addr or listen_socket_path must be "
                "configured",
            ),
            (acme and serving, "acme and serving_cert_file are mutually exclusive"),
            (acme and socket_, "listen_socket_path and the acme section are mutually exclusive"),
            (serving and insecure, "serving_cert_file and insecure_addr are mutually exclusive"),
            (
                serving and socket_,
                "serving_cert_file and listen_socket_path are mutually exclusive",
            ),
            (acme and insecure, "acme and insecure_addr are mutually exclusive"),
            (insecure and socket_, "insecure_addr and listen_socket_path are mutually exclusive"),
        )
        for failed, message in checks:
            if failed:
                raise self.error(message)

    def _urls(self) -> None:
        root = self.root
        issuer = root.text("jwt_issuer")
        if issuer:
            try:
                scheme, host = parse_url(issuer)
            except GoURLError as exc:
                raise self.error(
                    f"the jwt_issuer url could not be parsed: {exc}", root, "jwt_issuer"
                ) from None
            if not scheme:
                raise self.error("the jwt_issuer url must contain a scheme", root, "jwt_issuer")
            if not host:
                raise self.error("the jwt_issuer url must contain a host", root, "jwt_issuer")
        jwks_uri = root.text("jwks_uri")
        if jwks_uri:
            try:
                scheme, host = parse_url(jwks_uri)
                cause = "%!w(<nil>)"  # SPIRE wraps a nil error when scheme or host is missing
            except GoURLError as exc:
                scheme, host, cause = "", "", str(exc)
            if not scheme or not host:
                raise self.error(
                    f"the jwks_uri setting could not be parsed: {cause}", root, "jwks_uri"
                )
        if issuer and not jwks_uri:
            self.warnings.append(JWT_ISSUER_WARNING)

    def _logging(self) -> tuple[str, str]:
        root = self.root
        raw_level = root.text("log_level") or "info"
        level = _LOG_LEVELS.get(raw_level.lower())
        if level is None:
            raise self.error(f"not a valid logrus Level: {go_quote(raw_level)}", root, "log_level")
        raw_format = root.text("log_format")
        log_format = _LOG_FORMATS.get(raw_format.upper())
        if log_format is None:
            raise self.error(f"unknown logger format: {go_quote(raw_format)}", root, "log_format")
        return level, log_format

    def _health(self, health: Section, cfg: HealthChecksConfig) -> None:
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

    def _prefix(self) -> str:
        prefix = self.root.text("server_path_prefix")
        if prefix and not prefix.startswith("/"):
            self.warnings.append(
                f"server_path_prefix {go_quote(prefix)} has no leading slash; using "
                f"{go_quote('/' + prefix)} (SPIRE would treat it as a host name pattern)"
            )
            return "/" + prefix
        return prefix

    def _windows_only(self, workload: Section | None) -> None:
        blocks = (
            (self.root.block("experimental"), "listen_named_pipe_name"),
            (_child(self.root.block("server_api"), "experimental"), "named_pipe_name"),
            (_child(workload, "experimental"), "named_pipe_name"),
        )
        for section, name in blocks:
            if section is not None and section.text(name):
                self.warnings.append(
                    f"{section.key(name)} is only used on Windows and is ignored here"
                )


def _child(section: Section | None, name: str) -> Section | None:
    return None if section is None else section.block(name)

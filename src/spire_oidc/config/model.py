"""The configuration model: frozen dataclasses whose fields declare the keys of the file.

Each key field carries a :class:`~spire_oidc.config.spec.KeySpec` (HCL kind, whose key it is,
a doc line, hints); fields without one are derived (``host``/``port`` from an address, the
file's ``path``, the ``warnings``). Fields are in the order of SPIRE's Go ``Config`` struct
(config.go), since hcl decodes, and reports type errors, field by field in that order; our keys
follow SPIRE's. From this one model :mod:`spire_oidc.config.schema` derives the decoder's schema,
the type hints of decode errors and the key list the docs contract test checks;
:mod:`spire_oidc.config.effective` derives ``validate -json``'s output.

The entry points (:func:`parse_config`, :func:`load_config`, :func:`effective_config`,
:func:`expand_env`) live in :mod:`spire_oidc.config.load` and
:mod:`spire_oidc.config.effective`; they stay importable from here, where callers import them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from spire_oidc.config.hcl import Kind
from spire_oidc.config.spec import KeySpec, Origin, key

if TYPE_CHECKING:
    from spire_oidc.config.effective import effective_config
    from spire_oidc.config.load import expand_env, load_config, parse_config

__all__ = [
    "AcmeConfig",
    "CacheControlConfig",
    "Config",
    "DiscoveryDocumentConfig",
    "FileConfig",
    "HealthChecksConfig",
    "PublishConfig",
    "ServerAPIConfig",
    "ServingCertFileConfig",
    "ServingSvidConfig",
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
DEFAULT_ACME_LOCK_LEASE = 120.0
MIN_ACME_LOCK_LEASE = 1.0
DEFAULT_HEALTH_PORT = 8008
METRICS_PATH = "/metrics"  # health_checks.metrics serves here
DEFAULT_STATE_MAX_AGE = 24 * 3600.0
DEFAULT_MAX_CONNECTIONS = 10000
DEFAULT_SERVING_ADDR = ":443"
# logrus.ParseLevel's names (case-insensitive) -> the level; "warning" is "warn".
_LEVELS = ("panic", "fatal", "error", "warn", "info", "debug", "trace")
LOG_LEVELS = {**{name: name for name in _LEVELS}, "warning": "warn"}
LOG_FORMATS = {"": "", "TEXT": "text", "JSON": "json"}

S, INT, B, L, BLK, RAW = Kind.STRING, Kind.INT, Kind.BOOL, Kind.STRING_LIST, Kind.BLOCK, Kind.RAW
SPIRE, OURS = Origin.SPIRE, Origin.OURS
_POLL_DOC = "how often the keys are fetched (Go duration; <= 0 means 10s)"


@dataclass(frozen=True)
class PipeConfig:
    """Windows-only ``experimental`` block of a source: accepted and ignored here."""

    named_pipe_name: str = key("", kind=S, origin=SPIRE, doc="Windows named pipe (ignored)")


@dataclass(frozen=True)
class ExperimentalConfig:
    """Windows-only top-level ``experimental`` block: accepted and ignored here."""

    listen_named_pipe_name: str = key(
        "", kind=S, origin=SPIRE, doc="Windows named pipe to listen on (ignored)"
    )


@dataclass(frozen=True)
class AcmeConfig:
    directory_url: str = key(
        DEFAULT_ACME_DIRECTORY_URL, kind=S, origin=SPIRE, doc="ACME directory URL"
    )
    email: str = key("", kind=S, origin=SPIRE, doc="ACME account e-mail (required)")
    tos_accepted: bool = key(False, kind=B, origin=SPIRE, doc="must be true")
    cache_dir: str = key(  # "" disables the cache (SPIRE)
        DEFAULT_ACME_CACHE_DIR, kind=S, origin=SPIRE, doc="certificate cache directory"
    )
    # Beyond SPIRE (docs/acme.md); SPIRE ignores these keys.
    addr: str = key(  # the TLS listener (tls-alpn-01 too), as written
        DEFAULT_ACME_ADDR, kind=S, origin=OURS, doc="TLS listen address", example=":8443"
    )
    host: str = ""  # "" = all interfaces
    port: int = 443
    challenges: tuple[str, ...] = key(  # preference order
        ("tls-alpn-01",),
        kind=L,
        origin=OURS,
        doc="challenge types in preference order",
        example='"tls-alpn-01", "http-01"',
    )
    http_addr: str = key(  # the http-01 listener, bound only for http-01
        DEFAULT_ACME_HTTP_ADDR, kind=S, origin=OURS, doc="http-01 listen address", example=":80"
    )
    http_host: str = ""
    http_port: int = 80
    ca_bundle_path: str = key(
        "", kind=S, origin=OURS, doc="extra roots trusted for the ACME server's HTTPS"
    )
    eab_key_id: str = key("", kind=S, origin=OURS, name="eab.key_id", doc="EAB key id")
    eab_hmac_key: str = key(  # base64url; a secret
        "", kind=S, origin=OURS, name="eab.hmac_key", doc="EAB HMAC key (base64url)", secret=True
    )
    storage: str = key(  # replicas: one shared store, one order (docs/acme.md)
        "",
        kind=S,
        origin=OURS,
        doc="storage shared by the replicas (s3://, az://, gs://, file:///)",
        example="s3://bucket/oidc-acme",
    )
    lock_lease: float = key(
        DEFAULT_ACME_LOCK_LEASE,
        kind=S,
        origin=OURS,
        duration=True,
        example="2m",
        doc="lease of the replicas' order lock (at least 1s)",
    )


@dataclass(frozen=True)
class ServingCertFileConfig:
    cert_file_path: str = key(kind=S, origin=SPIRE, doc="PEM certificate chain (required)")
    key_file_path: str = key(kind=S, origin=SPIRE, doc="PEM private key (required)")
    addr: str = key(  # as written, validated host:port
        ":443", kind=S, origin=SPIRE, doc="listen address", example=":8443"
    )
    host: str = ""  # "" = all interfaces
    port: int = 443
    file_sync_interval: float = key(
        DEFAULT_FILE_SYNC_INTERVAL,
        kind=S,
        origin=SPIRE,
        duration=True,
        example="1m",
        doc="how often the files are re-read",
    )


@dataclass(frozen=True)
class ServingSvidConfig:
    """Ours: TLS with the provider's own X.509-SVID from the SPIRE agent (docs/deployment.md)."""

    addr: str = key(  # as written, validated host:port
        DEFAULT_SERVING_ADDR, kind=S, origin=OURS, doc="TLS listen address", example=":8443"
    )
    host: str = ""  # "" = all interfaces
    port: int = 443
    socket_path: str = key(  # resolved at load: workload_api.socket_path, SPIFFE_ENDPOINT_SOCKET
        "",
        kind=S,
        origin=OURS,
        doc="Workload API socket (default: workload_api.socket_path, else SPIFFE_ENDPOINT_SOCKET)",
        example="/run/spire/agent-sockets/spire-agent.sock",
    )
    spiffe_id: str = key(  # "" = the agent's first (default) SVID
        "",
        kind=S,
        origin=OURS,
        doc="which SVID to serve when the agent returns several",
        example="spiffe://example.org/oidc-provider",
    )


@dataclass(frozen=True)
class ServerAPIConfig:
    address: str = key(  # "unix:..." gRPC target
        kind=S, origin=SPIRE, doc="SPIRE Server API target", example="unix:/tmp/spire-server.sock"
    )
    poll_interval: float = key(
        DEFAULT_POLL_INTERVAL, kind=S, origin=SPIRE, duration=True, doc=_POLL_DOC
    )
    legacy_registration_api: bool = False  # came from registration_api { socket_path }
    experimental: PipeConfig | None = key(
        None, kind=BLK, origin=SPIRE, block=PipeConfig, effective=False, doc="Windows only"
    )


@dataclass(frozen=True)
class WorkloadAPIConfig:
    socket_path: str = key(kind=S, origin=SPIRE, doc="SPIRE Agent Workload API socket")
    trust_domain: str = key(kind=S, origin=SPIRE, doc="trust domain", example="example.org")
    poll_interval: float = key(
        DEFAULT_POLL_INTERVAL, kind=S, origin=SPIRE, duration=True, doc=_POLL_DOC
    )
    experimental: PipeConfig | None = key(
        None, kind=BLK, origin=SPIRE, block=PipeConfig, effective=False, doc="Windows only"
    )


@dataclass(frozen=True)
class FileConfig:
    path: str = key(kind=S, origin=SPIRE, doc="SPIFFE bundle file")
    poll_interval: float = key(
        DEFAULT_POLL_INTERVAL, kind=S, origin=SPIRE, duration=True, doc=_POLL_DOC
    )


@dataclass(frozen=True)
class HealthChecksConfig:
    bind_port: int = key(DEFAULT_HEALTH_PORT, kind=INT, origin=SPIRE, doc="port", example="8008")
    live_path: str = key("/live", kind=S, origin=SPIRE, doc="liveness path", example="/live")
    ready_path: str = key("/ready", kind=S, origin=SPIRE, doc="readiness path", example="/ready")
    # Ours (docs/configuration.md). Not "bind_address": SPIRE ignores that key here, and configs
    # copied from SPIRE's server/agent carry it, so honouring it would change their meaning.
    bind_host: str = key(  # "" = every interface, IPv4 and IPv6 (SPIRE)
        "", kind=S, origin=OURS, doc="IP address or localhost to bind", example="127.0.0.1"
    )
    metrics: bool = key(  # Prometheus exposition at /metrics on this listener
        False, kind=B, origin=OURS, doc="serve Prometheus metrics at /metrics"
    )


@dataclass(frozen=True)
class DiscoveryDocumentConfig:
    """Ours: spec-clean discovery document variants (docs/relying-parties.md). Defaults = SPIRE."""

    authorization_endpoint: str = key(  # "" = SPIRE's empty string
        "", kind=S, origin=OURS, doc="https URL to advertise", example="https://example.org/auth"
    )
    omit_authorization_endpoint: bool = key(False, kind=B, origin=OURS, doc="leave it out")
    signing_algs_from_keys: bool = key(False, kind=B, origin=OURS, doc="algs from the keys")
    claims_supported: tuple[str, ...] | None = key(  # None = not emitted
        None, kind=L, origin=OURS, doc="claims to advertise", example='"sub", "aud"'
    )


@dataclass(frozen=True)
class PublishConfig:
    """Ours: publish the documents to object storage on every key change (docs/deployment.md)."""

    url: str = key(  # required
        kind=S, origin=OURS, doc="s3://, az://, gs:// or file:// URL", example="s3://bucket/prefix"
    )


@dataclass(frozen=True)
class CacheControlConfig:
    """Ours: Cache-Control of both documents; an unset key keeps the default (SPIRE's headers
    on the listener, ``public, max-age=300`` on published objects)."""

    keys: str | None = key(  # None = not set
        None, kind=S, origin=OURS, doc="Cache-Control of the JWKS", example="public, max-age=300"
    )
    discovery: str | None = key(
        None,
        kind=S,
        origin=OURS,
        doc="Cache-Control of the discovery document",
        example="public, max-age=3600",
    )


@dataclass(frozen=True)
class RegistrationAPIConfig:
    """The removed ``registration_api`` block (SPIRE v1.1.0): read only as a legacy source."""

    socket_path: str = key("", kind=S, origin=SPIRE, doc="SPIRE Server API socket path")
    poll_interval: str = key("", kind=S, origin=SPIRE, duration=True, doc=_POLL_DOC)


SourceConfig = ServerAPIConfig | WorkloadAPIConfig | FileConfig
SOURCES: tuple[tuple[str, type], ...] = (
    ("server_api", ServerAPIConfig),
    ("workload_api", WorkloadAPIConfig),
    ("file", FileConfig),
)


@dataclass(frozen=True, kw_only=True)
class Config:
    log_format: str = key(
        "", kind=S, origin=SPIRE, doc="log format", choices=("text", "json"), example="json"
    )
    log_level: str = key(
        "info",
        kind=S,
        origin=SPIRE,
        doc="log level",
        choices=("debug", "info", "warn", "error", "panic", "fatal", "trace", "warning"),
    )
    log_path: str = key("", kind=S, origin=SPIRE, doc="log file; empty = stderr")
    log_requests: bool = key(False, kind=B, origin=SPIRE, doc="log each request")
    domains: tuple[str, ...] = key(
        kind=L, origin=SPIRE, doc="allowed host names (required)", example='"oidc.example.org"'
    )
    set_key_use: bool = key(False, kind=B, origin=SPIRE, doc='add "use": "sig" to each key')
    allow_insecure_scheme: bool = key(False, kind=B, origin=SPIRE, doc="http issuer on http")
    insecure_addr: str = key(
        "", kind=S, origin=SPIRE, doc="plain HTTP listen address", example=":8080"
    )
    listen_socket_path: str = key("", kind=S, origin=SPIRE, doc="unix socket to serve on")
    acme: AcmeConfig | None = key(None, kind=BLK, origin=SPIRE, block=AcmeConfig, doc="ACME TLS")
    serving_cert_file: ServingCertFileConfig | None = key(
        None, kind=BLK, origin=SPIRE, block=ServingCertFileConfig, doc="TLS from files"
    )
    source: SourceConfig = key(
        kind=BLK, origin=SPIRE, alternatives=SOURCES, doc="where the keys come from"
    )
    health_checks: HealthChecksConfig | None = key(
        None, kind=BLK, origin=SPIRE, block=HealthChecksConfig, doc="health listener"
    )
    experimental: ExperimentalConfig | None = key(
        None, kind=BLK, origin=SPIRE, block=ExperimentalConfig, effective=False, doc="Windows"
    )
    jwt_issuer: str = key(
        "", kind=S, origin=SPIRE, doc="issuer URL", example="https://oidc.example.org"
    )
    jwks_uri: str = key(
        "",
        kind=S,
        origin=SPIRE,
        doc="jwks_uri to advertise",
        example="https://oidc.example.org/keys",
    )
    server_path_prefix: str = key("", kind=S, origin=SPIRE, doc="path prefix", example="/oidc")
    # Ours (SPIRE ignores unknown keys): persisted last good keys, and proxy-header trust.
    state_dir: str = key("", kind=S, origin=OURS, doc="persist the last good keys here")
    state_max_age: float = key(
        DEFAULT_STATE_MAX_AGE,
        kind=S,
        origin=OURS,
        duration=True,
        example="24h",
        doc="oldest persisted keys served at start-up",
    )
    trusted_proxies: tuple[str, ...] | None = key(  # None = trust every client (SPIRE)
        None, kind=L, origin=OURS, doc="proxies whose headers count", example='"10.0.0.0/8"'
    )
    max_connections: int = key(  # concurrent connections on the main listener
        DEFAULT_MAX_CONNECTIONS, kind=INT, origin=OURS, doc="connection cap", example="10000"
    )
    discovery_document: DiscoveryDocumentConfig = key(
        kind=BLK,
        origin=OURS,
        block=DiscoveryDocumentConfig,
        factory=DiscoveryDocumentConfig,
        doc="discovery document variants",
    )
    serving_svid: ServingSvidConfig | None = key(
        None, kind=BLK, origin=OURS, block=ServingSvidConfig, doc="TLS from the provider's SVID"
    )
    publish: PublishConfig | None = key(
        None, kind=BLK, origin=OURS, block=PublishConfig, doc="publish to object storage"
    )
    cache_control: CacheControlConfig | None = key(
        None, kind=BLK, origin=OURS, block=CacheControlConfig, doc="Cache-Control headers"
    )
    path: str = ""  # the file it was read from
    warnings: tuple[str, ...] = field(default=(), compare=False)


# Removed from SPIRE, still found in real configs: decoded only when used (Kind.RAW), after
# every key of Config, as SPIRE no longer has them.
LEGACY_KEYS: tuple[tuple[str, KeySpec], ...] = (
    ("domain", KeySpec(kind=RAW, origin=SPIRE, doc="removed in v1.2.0; read as domains")),
    (
        "registration_api",
        KeySpec(
            kind=RAW,
            origin=SPIRE,
            block=RegistrationAPIConfig,
            doc="removed in v1.1.0; read as server_api",
        ),
    ),
)


def __getattr__(name: str) -> object:
    """The entry points, importable from here as before the model was split out (PEP 562)."""
    if name in ("load_config", "parse_config", "expand_env"):
        from spire_oidc.config import load

        return getattr(load, name)
    if name == "effective_config":
        from spire_oidc.config import effective

        return effective.effective_config
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

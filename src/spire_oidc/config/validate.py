"""Validation: the decoded sections -> a :class:`~spire_oidc.config.model.Config`.

SPIRE's checks in SPIRE's order (config.go ParseConfig, main_posix.go validateOS; the first
failing check wins), then the checks SPIRE only makes at start-up (log level and format, the
IDNA form of each domain, the workload trust domain, the health-check paths and port) and the
listen addresses SPIRE would only reject when binding, so a config that passes here starts.
Our keys' checks are in :mod:`spire_oidc.config.checks`.

Beyond SPIRE (DESIGN.md decisions 4 and 10, compatibility table):

* the removed ``domain`` key (string or list) is used as ``domains`` only when ``domains`` is
  absent or empty, and the removed ``registration_api { socket_path, poll_interval }`` block
  becomes the Server API on ``unix:<socket_path>`` only when no other source is configured;
  otherwise both are ignored, as SPIRE ignores them - with a warning either way;
* a ``server_path_prefix`` without a leading ``/`` is normalised to ``/<prefix>``;
* Windows-only keys (``experimental.*named_pipe_name``) are accepted and ignored, with a warning.
"""

from __future__ import annotations

from spire_oidc.config.checks import Checks, child
from spire_oidc.config.domains import DomainError, go_quote, to_domain_key, trust_domain_error
from spire_oidc.config.gocompat import GoURLError, parse_url
from spire_oidc.config.hcl import Section, decode_block, decode_strings
from spire_oidc.config.model import (
    DEFAULT_ACME_DIRECTORY_URL,
    DEFAULT_HEALTH_PORT,
    DEFAULT_POLL_INTERVAL,
    LOG_FORMATS,
    LOG_LEVELS,
    AcmeConfig,
    Config,
    ExperimentalConfig,
    FileConfig,
    HealthChecksConfig,
    PipeConfig,
    ServerAPIConfig,
    SourceConfig,
    WorkloadAPIConfig,
)
from spire_oidc.config.publish import publish_only, read_cache_control, read_publish
from spire_oidc.config.schema import REGISTRATION_API, hint_for
from spire_oidc.config.serving_svid import read_serving_svid
from spire_oidc.errors import ConfigError

# SPIRE's text (config.go, a past version: it says jwks_url and "will be changed in 1.13.0"),
# kept first so operators and SPIRE's tests recognise it, then what is true here.
SPIRE_JWT_ISSUER_WARNING = (
    "The jwt_issuer configuration will also affect the jwks_uri behavior when jwks_url is not "
    "set. This behaviour will be changed in 1.13.0."
)
JWT_ISSUER_WARNING = (
    f"{SPIRE_JWT_ISSUER_WARNING} Here, as in SPIRE today: with jwt_issuer set and jwks_uri "
    "unset, the discovery document's jwks_uri is the issuer's scheme, host and path followed "
    "by /keys; set jwks_uri to publish a different URL (and to silence this warning)."
)

# ---------------------------------------------------------------------------------------------
# Validation, in SPIRE's order (config.go ParseConfig, main_posix.go validateOS), then the
# start-up checks (main.go run).


class _Validator(Checks):
    """Builds a Config from decoded sections, in SPIRE's check order."""

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
            acme_cfg = self.acme_extensions(
                acme,
                self.build(
                    AcmeConfig,
                    acme,
                    directory_url=acme.text("directory_url") or DEFAULT_ACME_DIRECTORY_URL,
                    email=self.require(acme, "email", "acme"),
                ),
            )
        # 4. serving_cert_file (and ours: serving_svid)
        serving = self.serving_cert_file()
        svid = read_serving_svid(self)
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
            health_cfg = self.build(
                HealthChecksConfig,
                health,
                bind_port=port if port > 0 else DEFAULT_HEALTH_PORT,
                ready_path=health.text("ready_path") or "/ready",
                live_path=health.text("live_path") or "/live",
            )
        # 9. validateOS
        self._listeners(acme is not None, serving is not None, svid is not None)
        self._svid_listener(svid is not None, acme is not None, serving is not None)
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
            source = ServerAPIConfig(
                address,
                server_poll,
                legacy_registration_api=legacy,
                experimental=self._pipe(None if legacy else server_api),
            )
        elif workload is not None:
            source = WorkloadAPIConfig(
                workload.text("socket_path"),
                workload.text("trust_domain"),
                workload_poll,
                experimental=self._pipe(workload),
            )
        elif file_ is not None:
            source = FileConfig(file_.text("path"), file_poll)
        # 11-13. jwt_issuer, jwks_uri, the warning
        self._urls()
        # Ours: publication to object storage, and Cache-Control.
        publish = read_publish(self)
        cache_control = read_cache_control(self)
        # Start-up checks (SPIRE: logger, source, allowlist, health mux, listeners).
        log_level, log_format = self._logging()
        if workload is not None:
            problem = trust_domain_error(workload.text("trust_domain"))
            if problem:
                raise self.error(problem, workload, "trust_domain")
        for domain in domains:
            try:
                to_domain_key(domain)
            except DomainError as exc:
                raise self.error(str(exc), root, self.domains_key) from None
        if health is not None and health_cfg is not None:
            self.health(health, health_cfg)
        self.main_listener()
        self._windows_only(workload)
        experimental = root.block("experimental")
        cfg = self.build(
            Config,
            root,
            domains=domains,
            source=source,
            log_format=log_format,
            log_level=log_level,
            acme=acme_cfg,
            serving_cert_file=serving,
            health_checks=health_cfg,
            experimental=None
            if experimental is None
            else self.build(ExperimentalConfig, experimental),
            server_path_prefix=self._prefix(),
            state_max_age=self.state_max_age(),
            trusted_proxies=self.trusted_proxies(),
            max_connections=self.max_connections(),
            discovery_document=self.discovery_document(),
            serving_svid=svid,
            publish=publish,
            cache_control=cache_control,
            path=self.path,
            warnings=tuple(self.warnings),
        )
        self.shared_ports(cfg)
        return cfg

    def _pipe(self, section: Section | None) -> PipeConfig | None:
        block = child(section, "experimental")
        return None if block is None else self.build(PipeConfig, block)

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
            REGISTRATION_API,
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

    def _listeners(self, acme: bool, serving: bool, svid: bool = False) -> None:
        root = self.root
        insecure = bool(root.text("insecure_addr"))
        socket_ = bool(root.text("listen_socket_path"))
        checks = (
            (
                not (acme or serving or insecure or socket_ or svid or publish_only(self)),
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

    def _svid_listener(self, svid: bool, acme: bool, serving: bool) -> None:
        """Ours: ``serving_svid`` is one more listener kind, exclusive with SPIRE's, worded as
        SPIRE words its own listener conflicts. SPIRE's "must be configured" check above only
        runs when none of the listeners is set: with serving_svid alone it passes here."""
        root = self.root
        others = (
            ("acme", acme),
            ("serving_cert_file", serving),
            ("insecure_addr", bool(root.text("insecure_addr"))),
            ("listen_socket_path", bool(root.text("listen_socket_path"))),
        )
        for name, present in others:
            if svid and present:
                raise self.error(
                    f"serving_svid and {name} are mutually exclusive", root, "serving_svid"
                )

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
        level = LOG_LEVELS.get(raw_level.lower())
        if level is None:
            message = f"not a valid logrus Level: {go_quote(raw_level)} ({hint_for('log_level')})"
            raise self.error(message, root, "log_level")
        raw_format = root.text("log_format")
        log_format = LOG_FORMATS.get(raw_format.upper())
        if log_format is None:
            message = f"unknown logger format: {go_quote(raw_format)} ({hint_for('log_format')})"
            raise self.error(message, root, "log_format")
        return level, log_format

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
            (child(self.root.block("server_api"), "experimental"), "named_pipe_name"),
            (child(workload, "experimental"), "named_pipe_name"),
        )
        for section, name in blocks:
            if section is not None and section.text(name):
                self.warnings.append(
                    f"{section.key(name)} is only used on Windows and is ignored here"
                )

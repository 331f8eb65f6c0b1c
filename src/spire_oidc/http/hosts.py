"""Host validation for the discovery document: one pure function (contract C2)."""

from __future__ import annotations

from spire_oidc.config.domains import DomainAllowlist, DomainError, go_quote
from spire_oidc.http.urls import split_host_port


def check_host(host: str, allow: DomainAllowlist) -> str | None:
    """None when ``host`` (``host[:port]``) may become the issuer; otherwise the 400 body text."""
    try:
        allow.check(split_host_port(host))
    except DomainError as err:
        return str(err)
    if not _port_ok(host):
        # SPIRE would put any "port" text into the issuer (e.g. "localhost:1/evil").
        return f"invalid port in host {go_quote(host)}"
    return None


def _port_ok(hostport: str) -> bool:
    """The port after an allowed host must be decimal digits (or empty, as SPIRE allows)."""
    if hostport.startswith("["):
        return True  # IPv6 literals never pass the domain check
    _, sep, port = hostport.rpartition(":")
    return not sep or port == "" or (port.isascii() and port.isdigit())

"""Which request host may name the issuer: the one host check of the discovery document.

SPIRE splits the Host (or X-Forwarded-Host) with Go's ``net.SplitHostPort`` and checks the name
against the domain allow-list (spire-behavior.md §3.3 step 5); whatever followed the name is copied
into the issuer. That lets ``[oidc.example.org]:@evil.com`` through (the brackets are stripped by
SplitHostPort, and ``@evil.com`` is the "port"), and URL parsers then read ``evil.com`` as the
issuer's host. Here the request host must be exactly an allowed name, optionally followed by
``:`` and a port:

- brackets are valid only around an IPv6 literal, and an IPv6 literal is never an allowed domain
  (SPIRE refuses it with ``disallowed rune U+003A``, and so do we);
- the port, when present, is 1-5 ASCII digits with a value in 1-65535; an empty port after the
  colon stays accepted, as SPIRE accepts it (``Host: localhost:`` gives ``https://localhost:``);
- a host longer than a DNS name plus a port is refused before any IDNA work (issue 12.5);
- an empty name is refused even when ``""`` is listed (SPIRE would advertise ``https://``).

Refusal texts are SPIRE's wherever SPIRE refuses; the texts for what SPIRE accepts and we do not
are ours.
"""

from __future__ import annotations

from spire_oidc.config.domains import MAX_NAME_LENGTH, DomainAllowlist, DomainError, go_quote
from spire_oidc.http.urls import split_host_port

__all__ = ["MAX_HOST_LENGTH", "PORT_SUFFIX_LENGTH", "check_host"]

# The longest port is ":65535".
PORT_SUFFIX_LENGTH = 6
MAX_HOST_LENGTH = MAX_NAME_LENGTH + PORT_SUFFIX_LENGTH  # unless a configured name is longer
_MAX_PORT = 65535


def check_host(host: str, allow: DomainAllowlist) -> str | None:
    """None when ``host`` may name the issuer, otherwise the exact text of the 400 body.

    Pure and cheap: a set lookup for an allowed host; for a refused one at most one IDNA pass
    over at most :data:`MAX_NAME_LENGTH` characters (cached in ``config.domains``), and no
    refusal text longer than a few hundred characters.
    """
    limit = allow.name_limit + PORT_SUFFIX_LENGTH
    if len(host) > limit:
        return f"host too long ({len(host)} characters, at most {limit})"
    name = split_host_port(host)
    if name == "":
        # SPIRE serves "https://" or "https://:80" when "" is listed; no URL parser reads a host.
        return 'domain "" is not allowed'
    try:
        allow.check(name)
    except DomainError as err:
        return str(err)
    # ``name`` is now a configured key: ASCII letters, digits, '-' and '.', no brackets, no ':'.
    if not host.startswith(name):
        # SplitHostPort stripped brackets: "[name]" or "[name]:port" is not an IPv6 literal.
        return f"invalid host {go_quote(host)}: brackets are only valid around an IPv6 literal"
    rest = host[len(name) :]
    if rest and not _port_ok(rest[1:]):
        return f"invalid port in host {go_quote(host)}"
    return None


def _port_ok(port: str) -> bool:
    """Empty (SPIRE accepts ``name:``), or 1-5 ASCII digits with a value in 1-65535."""
    if port == "":
        return True
    return len(port) <= 5 and port.isascii() and port.isdigit() and 1 <= int(port) <= _MAX_PORT

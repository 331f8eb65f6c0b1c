"""Go's ``net`` address parsing, as SPIRE's listeners and config checks see it.

* ``net.Listen("tcp", addr)`` before it binds (:func:`split_listen_addr`): Go's host:port
  splitting and port lookup, with Go's texts (``address 8080: missing port in address``,
  ``address 99999: invalid port``, ``lookup tcp/abc: unknown port``); the caller prefixes
  ``listen tcp: ``.
* ``net.ResolveTCPAddr("tcp", addr)`` for ``serving_cert_file.addr`` (:func:`resolve_tcp_addr`):
  the same, then service names, IP literals, and a bounded name lookup.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading

from spire_oidc.errors import ConfigValueError

__all__ = ["GoAddrError", "listen_overlap", "resolve_tcp_addr", "split_listen_addr"]

# ---------------------------------------------------------------------------------------------
# net.ResolveTCPAddr("tcp", addr), for serving_cert_file.addr.

_RESOLVE_TIMEOUT = 2.0
# Go's built-in fallback when /etc/services lacks a name (net/lookup.go).
_GO_SERVICES = {
    "ftp": 21,
    "ftps": 990,
    "gopher": 70,
    "http": 80,
    "https": 443,
    "imap2": 143,
    "imap3": 220,
    "imaps": 993,
    "pop3": 110,
    "pop3s": 995,
    "smtp": 25,
    "submissions": 465,
    "ssh": 22,
    "telnet": 23,
}


class GoAddrError(ConfigValueError):
    """A Go ``net`` resolution error; ``str()`` is Go's text."""


def _split_host_port(hostport: str) -> tuple[str, str]:
    def fail(why: str) -> GoAddrError:
        return GoAddrError(f"address {hostport}: {why}")

    i = hostport.rfind(":")
    if i < 0:
        raise fail("missing port in address")
    j = k = 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise fail("missing ']' in address")
        if end + 1 == len(hostport):
            raise fail("missing port in address")
        if end + 1 != i:
            if hostport[end + 1] == ":":
                raise fail("too many colons in address")
            raise fail("missing port in address")
        host = hostport[1:end]
        j, k = 1, end + 1
    else:
        host = hostport[:i]
        if ":" in host:
            raise fail("too many colons in address")
    if "[" in hostport[j:]:
        raise fail("unexpected '[' in address")
    if "]" in hostport[k:]:
        raise fail("unexpected ']' in address")
    return host, hostport[i + 1 :]


def _lookup_port(service: str) -> int:
    """Go's ``LookupPort("tcp", service)``: numbers (clamped like Go) or service names."""
    port: int | None = None
    if service == "":
        port = 0
    else:
        sign, digits = 1, service
        if digits[0] in "+-":
            sign, digits = (-1 if digits[0] == "-" else 1), digits[1:]
        if all("0" <= c <= "9" for c in digits):
            port = sign * min(int(digits or "0"), 1 << 30)
    if port is None:
        name = service.lower()
        try:
            port = socket.getservbyname(name, "tcp")
        except (OSError, ValueError, UnicodeError):
            port = _GO_SERVICES.get(name)
        if port is None:
            raise GoAddrError(f"lookup tcp/{service}: unknown port")
    if not 0 <= port <= 65535:
        raise GoAddrError(f"address {service}: invalid port")
    return port


def _parse_ip(host: str) -> str | None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _lookup_host(host: str) -> str:
    """Resolve a host name (IPv4 first, like Go for "tcp"), giving up after a couple of seconds."""
    not_found = GoAddrError(f"lookup {host}: no such host")
    # Go treats anything that is not a canonical IP literal as a name; glibc would still read
    # "127.1" or "127.0.0.1.1" as numbers or send them to DNS. Go's answer is "no such host".
    if re.fullmatch(r"[0-9.]+|0[xX][0-9a-fA-F.]*", host):
        raise not_found
    result: list[str] = []

    def resolve() -> None:
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError, ValueError):
            return
        v4 = [str(i[4][0]) for i in infos if i[0] == socket.AF_INET]
        v6 = [str(i[4][0]) for i in infos if i[0] == socket.AF_INET6]
        result.extend(v4 + v6)

    worker = threading.Thread(target=resolve, name="config-resolve", daemon=True)
    worker.start()
    worker.join(_RESOLVE_TIMEOUT)
    if not result:
        raise not_found
    return result[0]


def resolve_tcp_addr(addr: str) -> tuple[str, int]:
    """(ip, port) like Go's ``net.ResolveTCPAddr("tcp", addr)``; "" ip = all interfaces."""
    host, service = _split_host_port(addr)
    port = _lookup_port(service)
    if host == "":
        return "", port
    ip = _parse_ip(host)
    if ip is not None:
        return ip, port
    return _lookup_host(host), port


def split_listen_addr(addr: str) -> tuple[str, int]:
    """(host as written, port) of a ``net.Listen("tcp", addr)`` address, host not resolved."""
    host, service = _split_host_port(addr)
    return host, _lookup_port(service)


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def listen_overlap(a: str, b: str) -> bool:
    """Whether binding hosts ``a`` and ``b`` (as configured; "" = every interface) can clash."""
    a, b = a.strip("[]").lower(), b.strip("[]").lower()
    return not a or not b or a == b or (a in _LOOPBACK and b in _LOOPBACK)

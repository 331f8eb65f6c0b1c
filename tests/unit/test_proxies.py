"""trusted_proxies: who may set the forwarded headers."""

from __future__ import annotations

from spire_oidc.http.proxies import ProxyTrust


def test_default_trusts_everyone_like_spire() -> None:
    """Without trusted_proxies every client may set X-Forwarded-* (SPIRE's behaviour)."""
    t = ProxyTrust(None)
    assert t.trusts(("203.0.113.9", 1234)) and t.trusts("") and t.trusts(None)


def test_listed_addresses_and_ranges() -> None:
    """Only listed IPs/CIDRs (IPv4-mapped IPv6 included) and, with "unix", the unix socket."""
    t = ProxyTrust(["10.0.0.0/8", "::1", "unix"])
    assert t.trusts(("10.1.2.3", 5)) and t.trusts(("::1", 5, 0, 0))
    assert t.trusts(("::ffff:10.9.9.9", 5, 0, 0))
    assert not t.trusts(("192.0.2.1", 5)) and not t.trusts(("fe80::1%eth0", 5, 0, 2))
    assert t.trusts("") and t.trusts("/run/odp.sock")


def test_empty_list_trusts_nobody() -> None:
    """An empty list means forwarded headers are never honoured."""
    t = ProxyTrust([])
    assert not t.trusts(("127.0.0.1", 1)) and not t.trusts("")

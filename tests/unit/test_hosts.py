"""The discovery document's host check (``http.hosts.check_host``, issue 12 points 1 and 5)."""

from __future__ import annotations

import pytest

from spire_oidc.config import domains
from spire_oidc.config.domains import MAX_NAME_LENGTH, DomainAllowlist
from spire_oidc.http.hosts import MAX_HOST_LENGTH, check_host

ALLOW = DomainAllowlist(["oidc.example.org", "localhost", "127.0.0.1"])


@pytest.mark.parametrize(
    "host",
    [
        "oidc.example.org",
        "localhost",
        "localhost:",  # SPIRE accepts an empty port (spire-behavior.md §3.3 step 3)
        "localhost:1",
        "localhost:8080",
        "localhost:08080",
        "localhost:65535",
        "127.0.0.1:443",
    ],
)
def test_allowed_hosts(host: str) -> None:
    """A listed name, alone or with an empty or 1-65535 decimal port, may name the issuer."""
    assert check_host(host, ALLOW) is None


@pytest.mark.parametrize(
    ("host", "message"),
    [
        (
            "[oidc.example.org]:@evil.com",
            'invalid host "[oidc.example.org]:@evil.com": '
            "brackets are only valid around an IPv6 literal",
        ),
        (
            "[localhost]:",
            'invalid host "[localhost]:": brackets are only valid around an IPv6 literal',
        ),
        (
            "[localhost]:443",
            'invalid host "[localhost]:443": brackets are only valid around an IPv6 literal',
        ),
        (
            "[localhost]",
            'domain "[localhost]" is not a valid domain name: idna: disallowed rune U+005B',
        ),
        ("[::1]:80", 'domain "::1" is not a valid domain name: idna: disallowed rune U+003A'),
        ("localhost:0", 'invalid port in host "localhost:0"'),
        ("localhost:65536", 'invalid port in host "localhost:65536"'),
        ("localhost:000443", 'invalid port in host "localhost:000443"'),
        ("localhost:1" + "0" * 199, 'invalid port in host "localhost:1' + "0" * 199 + '"'),
        ("localhost:443/evil", 'invalid port in host "localhost:443/evil"'),
        ("localhost:@evil.com", 'invalid port in host "localhost:@evil.com"'),
        ("localhost:８０", 'invalid port in host "localhost:８０"'),
        ("localhost:+80", 'invalid port in host "localhost:+80"'),
        ("evil.com", 'domain "evil.com" is not allowed'),
        ("LOCALHOST:80", 'domain "LOCALHOST" must already be punycode encoded'),
    ],
)
def test_refused_hosts(host: str, message: str) -> None:
    """Brackets around a name, odd or absurd ports and unlisted names are 400 with this text."""
    assert check_host(host, ALLOW) == message


def test_long_host_refused_before_idna_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over-long hosts cost no IDNA pass; a refused short one costs at most one, then the cache."""
    calls: list[str] = []
    real = domains._lookup_to_ascii

    def counting(domain: str) -> str:
        calls.append(domain)
        return real(domain)

    monkeypatch.setattr(domains, "_lookup_to_ascii", counting)
    for i in range(50):
        long_unicode = "é" * (4000 + i)
        assert check_host(long_unicode, ALLOW) == (
            f"host too long ({4000 + i} characters, at most {MAX_HOST_LENGTH})"
        )
        # A long name under the whole-host limit (port present) is still refused by length.
        name = "é" * (MAX_NAME_LENGTH + 1) if i % 2 else "a" * (MAX_NAME_LENGTH + 1)
        assert check_host(name + ":1", ALLOW) == (
            f"domain name too long ({MAX_NAME_LENGTH + 1} characters, at most {MAX_NAME_LENGTH})"
        )
    assert calls == []
    short = "é" * MAX_NAME_LENGTH
    for _ in range(5):
        assert check_host(short, ALLOW) == f'domain "{short}" must already be punycode encoded'
    assert len(calls) <= 1


def test_configured_long_name_still_allowed() -> None:
    """The length cap only applies to refusals: a configured name of any length stays allowed."""
    name = ".".join(["a" * 63] * 5)  # 319 characters, no DNS length check (as SPIRE)
    allow = DomainAllowlist([name])
    assert check_host(name, allow) is None
    assert check_host(name + ":443", allow) is None
    assert check_host(name[:-1], allow) == f'domain "{name[:-1]}" is not allowed'
    assert check_host(name + "a" * 7, allow) == (
        f"host too long ({len(name) + 7} characters, at most {len(name) + 6})"
    )


@pytest.mark.parametrize("host", ["", ":", ":443"])
def test_empty_name_refused_even_when_listed(host: str) -> None:
    """An empty name never names the issuer, even with "" in domains (no URL has an empty host)."""
    assert check_host(host, DomainAllowlist(["", "localhost"])) == 'domain "" is not allowed'

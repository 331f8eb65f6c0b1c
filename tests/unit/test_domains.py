"""SPIRE's domain policy (spire-behavior.md §3.3 step 5, §3.4, §11 domain_policy_test)."""

from __future__ import annotations

import pytest

from spire_oidc.config import domains
from spire_oidc.config.domains import (
    DomainAllowlist,
    DomainError,
    go_quote,
    to_domain_key,
    trust_domain_error,
)


@pytest.mark.parametrize(
    "name",
    [
        "ascii.test",
        "xn--n38h.test",
        "localhost",
        "127.0.0.1",
        "localhost.",
        "",
        "a..b",
        "xn--zca.test",
    ],
)
def test_valid_names_are_their_own_key(name: str) -> None:
    """A valid, already-ASCII name is returned unchanged (IPv4 literals and trailing dots too)."""
    assert to_domain_key(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        # §11 TestDomainAllowlist / TestAllowAnyDomain
        (
            "invalid/domain.test",
            'domain "invalid/domain.test" is not a valid domain name: idna: disallowed rune U+002F',
        ),
        ("😬.test", 'domain "😬.test" must already be punycode encoded'),
        # §3.3 step 5
        ("LOCALHOST", 'domain "LOCALHOST" must already be punycode encoded'),
        ("Localhost", 'domain "Localhost" must already be punycode encoded'),
        (
            "a_b.test",
            'domain "a_b.test" is not a valid domain name: idna: disallowed rune U+005F',
        ),
        (
            "localhost, domain.test",
            'domain "localhost, domain.test" is not a valid domain name: '
            "idna: disallowed rune U+002C",
        ),
        ("::1", 'domain "::1" is not a valid domain name: idna: disallowed rune U+003A'),
        ("[::1]", 'domain "[::1]" is not a valid domain name: idna: disallowed rune U+005B'),
        # x/net/idna label rules (hyphens, leading combining mark, joiners)
        (
            "ab--cd.test",
            'domain "ab--cd.test" is not a valid domain name: idna: invalid label "ab--cd"',
        ),
        ("-a.test", 'domain "-a.test" is not a valid domain name: idna: invalid label "-a"'),
        (
            "a\u200db.test",
            'domain "a\\u200db.test" is not a valid domain name: idna: invalid label "a\\u200db"',
        ),
        # mapped forms differ from the input
        ("ß.test", 'domain "ß.test" must already be punycode encoded'),
        ("example\u3002org", 'domain "example\u3002org" must already be punycode encoded'),
        ("a\x00b", 'domain "a\\x00b" is not a valid domain name: idna: disallowed rune U+0000'),
    ],
)
def test_refused_names_use_spire_wording(name: str, message: str) -> None:
    """Refusals carry SPIRE's text with Go's %q quoting and x/net/idna's detail."""
    with pytest.raises(DomainError) as info:
        to_domain_key(name)
    assert str(info.value) == message


def test_first_disallowed_rune_is_reported() -> None:
    """The earliest disallowed code point in the input is the one named, as in Go."""
    with pytest.raises(DomainError, match=r"U\+005F"):
        to_domain_key("a_b\u0080.test")


def test_domain_error_is_a_value_error() -> None:
    """DomainError subclasses ValueError."""
    assert issubclass(DomainError, ValueError)


def test_allowlist_refuses_unicode_configuration() -> None:
    """An allowlist built from a unicode name fails like SPIRE's constructor."""
    with pytest.raises(DomainError, match=r'domain "😬.test" must already be punycode encoded'):
        DomainAllowlist(["😬.test"])


def test_allowlist_refuses_invalid_configuration() -> None:
    """An allowlist built from an invalid name fails with the idna detail."""
    with pytest.raises(DomainError, match="disallowed rune U\\+002F"):
        DomainAllowlist(["invalid/domain.test"])


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("xn--n38h.test", None),
        ("domain.test", None),
        ("😬.test", 'domain "😬.test" must already be punycode encoded'),
        ("bad.test", 'domain "bad.test" is not allowed'),
        ("", 'domain "" is not allowed'),
        ("domain.test.", 'domain "domain.test." is not allowed'),
        ("sub.domain.test", 'domain "sub.domain.test" is not allowed'),
        ("127.0.0.1", 'domain "127.0.0.1" is not allowed'),
        ("DOMAIN.test", 'domain "DOMAIN.test" must already be punycode encoded'),
        (
            "invalid/domain.test",
            'domain "invalid/domain.test" is not a valid domain name: idna: disallowed rune U+002F',
        ),
    ],
)
def test_allowlist_check(host: str, message: str | None) -> None:
    """check() admits exactly the listed names; others get SPIRE's refusal text."""
    allowlist = DomainAllowlist(["xn--n38h.test", "domain.test"])
    if message is None:
        allowlist.check(host)
    else:
        with pytest.raises(DomainError) as info:
            allowlist.check(host)
        assert str(info.value) == message


def test_empty_allowlist_refuses_everything() -> None:
    """An allowlist without entries admits nothing (and still validates the host first)."""
    allowlist = DomainAllowlist([])
    with pytest.raises(DomainError, match="is not allowed"):
        allowlist.check("ascii.test")
    with pytest.raises(DomainError, match="disallowed rune U\\+002F"):
        allowlist.check("invalid/domain.test")


def test_allowlist_exposes_its_keys() -> None:
    """The keys are the configured names."""
    assert DomainAllowlist(["a.test", "b.test", "a.test"]).domains == {"a.test", "b.test"}


def test_allowed_check_does_no_idna_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """An allowed host is a set lookup: the IDNA mapping only runs to word a refusal."""
    allowlist = DomainAllowlist(["domain.test", "localhost"])
    calls: list[str] = []
    real = domains.to_domain_key
    monkeypatch.setattr(domains, "to_domain_key", lambda d: calls.append(d) or real(d))
    for _ in range(1000):
        allowlist.check("domain.test")
    assert calls == []
    with pytest.raises(DomainError):
        allowlist.check("other.test")
    assert calls == ["other.test"]


def test_refusal_is_cached_and_still_raises() -> None:
    """Repeated refusals give the same message (the cache never turns a refusal into a pass)."""
    allowlist = DomainAllowlist(["domain.test"])
    for _ in range(3):
        with pytest.raises(DomainError, match=r'domain "EVIL\.test" must already'):
            allowlist.check("EVIL.test")


def test_long_hosts_are_handled() -> None:
    """Very long names are refused without error (they bypass the bounded cache)."""
    with pytest.raises(DomainError, match="must already be punycode encoded"):
        to_domain_key("A" * 5000)


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("evil.test", '"evil.test"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("\n\t\r\a\b\f\v", '"\\n\\t\\r\\a\\b\\f\\v"'),
        ("\x01\x7f", '"\\x01\\x7f"'),
        ("é😬", '"é😬"'),
        ("\u00a0\u200b", '"\\u00a0\\u200b"'),
        ("\U000e0001", '"\\U000e0001"'),
        ("\udcff", '"\\xff"'),
    ],
)
def test_go_quote(text: str, quoted: str) -> None:
    """go_quote matches Go's strconv.Quote: escapes, printable unicode kept."""
    assert go_quote(text) == quoted


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("example.org", ""),
        ("spiffe://example.org", ""),
        ("spiffe://example.org/path/to/x", ""),
        ("a_b-c.d", ""),
        ("", "trust domain is missing"),
        (
            "Example.org",
            "trust domain characters are limited to lowercase letters, numbers, dots, dashes, "
            "and underscores",
        ),
        (
            "example.org:8080",
            "trust domain characters are limited to lowercase letters, numbers, dots, dashes, "
            "and underscores",
        ),
        ("http://example.org", "scheme is missing or invalid"),
        ("spiffe:/example.org", "scheme is missing or invalid"),
        ("spiffe://", "trust domain is missing"),
        ("spiffe:///path", "trust domain is missing"),
        ("spiffe://td/", "path cannot have a trailing slash"),
        ("spiffe://td//a", "path cannot contain empty segments"),
        ("spiffe://td/./a", "path cannot contain dot segments"),
        ("spiffe://td/a/..", "path cannot contain dot segments"),
        (
            "spiffe://td/a$",
            "path segment characters are limited to letters, numbers, dots, dashes, and "
            "underscores",
        ),
    ],
)
def test_trust_domain_error(value: str, error: str) -> None:
    """Trust domains are checked like go-spiffe's TrustDomainFromString, with its messages."""
    assert trust_domain_error(value) == error

"""Issuer, jwks_uri and route derivation (spire-behavior.md §3.1, §3.3, §11 handler tests)."""

from __future__ import annotations

import pytest

from spire_oidc.http.urls import UrlPlan, request_route, split_host_port


def plan(prefix: str = "", issuer: str = "", jwks: str = "") -> UrlPlan:
    return UrlPlan.from_config(prefix=prefix, jwt_issuer=issuer, jwks_uri=jwks)


@pytest.mark.parametrize(
    ("issuer", "expected_issuer", "expected_jwks"),
    [
        # TestHandlerJWTIssuer
        (
            "https://domain.test/some/issuer/path/issuer1",
            "https://domain.test/some/issuer/path/issuer1",
            "https://domain.test/some/issuer/path/issuer1/keys",
        ),
        (
            "http://domain.test/some/issuer/path/issuer1",
            "http://domain.test/some/issuer/path/issuer1",
            "http://domain.test/some/issuer/path/issuer1/keys",
        ),
        (
            "https://domain.test/some/issuer/path/issuer1/",
            "https://domain.test/some/issuer/path/issuer1/",
            "https://domain.test/some/issuer/path/issuer1/keys",
        ),
        ("http://domain.test/", "http://domain.test/", "http://domain.test/keys"),
        ("http://domain.test", "http://domain.test", "http://domain.test/keys"),
        # Go url normalisation: scheme lower-cased, host case kept, path escaped once
        ("HTTPS://Issuer.Test/a b", "https://Issuer.Test/a%20b", "https://Issuer.Test/a%20b/keys"),
        (
            "https://u:p@i.test/x/../y?q=1#f",
            "https://u:p@i.test/x/../y?q=1#f",
            "https://i.test/y/keys",
        ),
        ("https://i.test/%7Eme", "https://i.test/~me", "https://i.test/~me/keys"),
    ],
)
def test_jwt_issuer(issuer: str, expected_issuer: str, expected_jwks: str) -> None:
    """jwt_issuer is served verbatim (Go-normalised) and jwks_uri is derived from its path."""
    p = plan(issuer=issuer)
    assert p.issuer("https", "ignored.test") == expected_issuer
    assert p.jwks_uri("https", "ignored.test") == expected_jwks


def test_jwt_issuer_and_jwks_uri_both_verbatim() -> None:
    """TestHandlerJWTIssuerAndJWKSURI: both configured values are served as they are."""
    p = plan(issuer="https://domain.test/some/issuer/path/issuer1", jwks="http://other.test/keys")
    assert p.issuer("https", "x") == "https://domain.test/some/issuer/path/issuer1"
    assert p.jwks_uri("https", "x") == "http://other.test/keys"


@pytest.mark.parametrize(
    "jwks",
    [
        "https://domain.test/some/path/keys",
        "http://domain.test/some/path/keys",
        "https://other.test",
        "http://other.test/",
        "https://other.test/keys?version=2",
    ],
)
def test_advertised_jwks_uri_only(jwks: str) -> None:
    """TestHandlerAdvertisedURL: only jwks_uri set; the issuer still comes from the request."""
    p = plan(jwks=jwks)
    assert p.issuer("https", "domain.test") == "https://domain.test"
    assert p.jwks_uri("https", "domain.test") == jwks


@pytest.mark.parametrize(
    ("prefix", "route", "issuer", "jwks"),
    [
        ("", "/.well-known/openid-configuration", "https://d.test", "https://d.test/keys"),
        ("/", "/.well-known/openid-configuration", "https://d.test", "https://d.test/keys"),
        (
            "/some/issuer/path/issuer1",
            "/some/issuer/path/issuer1/.well-known/openid-configuration",
            "https://d.test/some/issuer/path/issuer1",
            "https://d.test/some/issuer/path/issuer1/keys",
        ),
        (
            "/some/issuer/path/issuer1/",
            "/some/issuer/path/issuer1/.well-known/openid-configuration",
            "https://d.test/some/issuer/path/issuer1/",
            "https://d.test/some/issuer/path/issuer1/keys",
        ),
        (
            "/a//b/",
            "/a/b/.well-known/openid-configuration",
            "https://d.test/a//b/",
            "https://d.test/a/b/keys",
        ),
        # SPIRE double-escapes this jwks_uri (a%2520b); we escape once.
        (
            "/a b",
            "/a b/.well-known/openid-configuration",
            "https://d.test/a%20b",
            "https://d.test/a%20b/keys",
        ),
    ],
)
def test_prefix(prefix: str, route: str, issuer: str, jwks: str) -> None:
    """TestHandlerPrefix: routes are cleaned joins, the issuer keeps the prefix, jwks_uri is joined."""
    p = plan(prefix=prefix)
    assert p.discovery_route == route
    assert p.keys_route == route.replace("/.well-known/openid-configuration", "/keys")
    assert p.issuer("https", "d.test") == issuer
    assert p.jwks_uri("https", "d.test") == jwks


def test_issuer_from_request_keeps_port() -> None:
    """The issuer host comes from the request, port included (Host: domain.test:8080)."""
    p = plan()
    assert p.issuer("https", "domain.test:8080") == "https://domain.test:8080"
    assert p.jwks_uri("http", "domain.test:8080") == "http://domain.test:8080/keys"


@pytest.mark.parametrize(
    ("raw", "route"),
    [
        ("/keys", "/keys"),
        ("/keys?x=1", "/keys"),
        ("/%6Beys", "/keys"),
        ("/keys/", "/keys/"),
        ("//keys", None),
        ("/./keys", None),
        ("/x/../keys", None),
        ("/keys/.", None),
        ("/.well-known%2Fopenid-configuration", None),
        ("/%ff", None),
        ("/%zz", "/%zz"),
        ("*", None),
    ],
)
def test_request_route(raw: str, route: str | None) -> None:
    """Request paths are decoded like Go's ServeMux; unclean paths match nothing (404)."""
    assert request_route(raw) == route


@pytest.mark.parametrize(
    ("hostport", "host"),
    [
        ("localhost", "localhost"),
        ("localhost:8080", "localhost"),
        ("Localhost:8080", "Localhost"),
        ("localhost:", "localhost"),
        ("[::1]:80", "::1"),
        ("[::1]", "[::1]"),
        ("a:b:c", "a:b:c"),
        ("", ""),
    ],
)
def test_split_host_port(hostport: str, host: str) -> None:
    """The host checked against the allowlist is Go's SplitHostPort result, or the whole value."""
    assert split_host_port(hostport) == host

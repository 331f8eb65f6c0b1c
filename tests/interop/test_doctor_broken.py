"""`doctor` against deliberately broken deployments, served by a tiny aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from spire_oidc import cli
from spire_oidc.core.keys import JWTKey, jwk_members
from tests.keyfactory import ec_key, rsa_key

pytestmark = pytest.mark.integration

Findings = dict[tuple[str, str], dict[str, str]]


@dataclass
class BadServer:
    """Serves whatever a test puts in ``routes``: path -> (status, headers, body)."""

    base: str = ""
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)

    def json(
        self, path: str, value: object, status: int = 200, ctype: str = "application/json"
    ) -> None:
        self.routes[path] = (status, {"Content-Type": ctype}, json.dumps(value).encode())

    def doc(self, **overrides: object) -> dict[str, object]:
        """SPIRE's discovery document for this server, with ``overrides`` applied (None drops)."""
        doc: dict[str, object] = {
            "issuer": self.base,
            "jwks_uri": self.base + "/keys",
            "authorization_endpoint": "",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256", "ES384"],
        }
        doc.update(overrides)
        return {k: v for k, v in doc.items() if v is not None}

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        status, headers, body = self.routes.get(request.path, (404, {}, b"404 page not found"))
        return web.Response(status=status, headers=headers, body=body)


@pytest.fixture
async def bad() -> AsyncIterator[BadServer]:
    server = BadServer()
    runner = web.ServerRunner(web.Server(server.handle))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.base = f"http://127.0.0.1:{port}"
    yield server
    await runner.cleanup()


def ec_jwk(kid: str, **extra: str) -> dict[str, str]:
    return {**jwk_members(JWTKey(kid, ec_key().public_key()), set_key_use=False), **extra}


def rsa_jwk(kid: str) -> dict[str, str]:
    return jwk_members(JWTKey(kid, rsa_key().public_key()), set_key_use=True)


async def run_doctor(issuer: str, *args: str) -> tuple[int, Findings, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(
        cli.main, ["doctor", issuer, "--json", "--timeout", "5", *args], out, err
    )
    report = json.loads(out.getvalue()) if out.getvalue() else {"findings": []}
    return code, {(f["party"], f["check"]): f for f in report["findings"]}, err.getvalue()


async def test_issuer_mismatch(bad: BadServer) -> None:
    """A document naming another issuer fails every string-comparing party, not Infisical."""
    bad.json("/.well-known/openid-configuration", bad.doc(issuer="https://elsewhere.example"))
    bad.json("/keys", {"keys": [rsa_jwk("k1")]})
    code, f, _ = await run_doctor(bad.base, "--profile", "aws,vault,infisical")
    assert code == 2
    assert f[("aws", "issuer.match")]["status"] == "fail"
    assert f[("vault", "issuer.match")]["status"] == "fail"
    assert f[("infisical", "issuer.match")]["status"] == "pass"
    assert f[("aws", "issuer.https")]["status"] == "fail"  # plain http
    assert f[("vault", "issuer.https")]["status"] == "warn"


async def test_missing_jwks_uri(bad: BadServer) -> None:
    """A document without jwks_uri fails for everyone."""
    bad.json("/.well-known/openid-configuration", bad.doc(jwks_uri=None))
    code, f, _ = await run_doctor(bad.base, "--profile", "vault")
    assert code == 2 and f[("all", "jwks_uri.present")]["status"] == "fail"


async def test_bundle_endpoint_use_and_missing_kid(bad: BadServer) -> None:
    """use=jwt-svid fails the libraries and Infisical (go-oidc only warns); a key without kid fails all."""
    no_kid = ec_jwk("x")
    del no_kid["kid"]
    bad.json("/.well-known/openid-configuration", bad.doc())
    bad.json("/keys", {"keys": [ec_jwk("k1", use="jwt-svid"), no_kid]})
    code, f, _ = await run_doctor(bad.base, "--profile", "libraries,infisical,vault")
    assert code == 2
    assert f[("libraries", "keys.use")]["status"] == "fail"
    assert f[("infisical", "keys.use")]["status"] == "fail"
    assert f[("vault", "keys.use")]["status"] == "warn"
    assert "set_key_use" in f[("libraries", "keys.use")]["fix"]
    assert f[("all", "keys.kid")]["status"] == "fail"


async def test_x5c_and_too_many_keys(bad: BadServer) -> None:
    """x5c fails GCP's JWK member list; 101 keys exceed AWS's 100."""
    keys = [ec_jwk(f"k{i}") for i in range(101)]
    keys[0]["x5c"] = "MIIB"
    bad.json("/.well-known/openid-configuration", bad.doc())
    bad.json("/keys", {"keys": keys})
    code, f, _ = await run_doctor(bad.base, "--profile", "aws,gcp")
    assert code == 2
    assert f[("gcp", "keys.members")]["status"] == "fail"
    assert "x5c" in f[("gcp", "keys.members")]["reason"]
    assert f[("aws", "keys.count")]["status"] == "fail"


async def test_redirected_discovery(bad: BadServer) -> None:
    """A redirected discovery URL fails Infisical (no redirects) and warns AWS."""
    bad.routes["/.well-known/openid-configuration"] = (
        302,
        {"Location": bad.base + "/elsewhere"},
        b"",
    )
    code, f, _ = await run_doctor(bad.base, "--profile", "infisical,aws")
    assert code == 2
    assert f[("all", "discovery.fetch")]["status"] == "fail"
    assert f[("infisical", "discovery.redirect")]["status"] == "fail"
    assert f[("aws", "discovery.redirect")]["status"] == "warn"


async def test_wrong_content_type_and_keys_not_available(bad: BadServer) -> None:
    """text/plain warns (OIDC Discovery §4.2); /keys answering 500 fails with a fix about the source."""
    bad.json("/.well-known/openid-configuration", bad.doc(), ctype="text/plain")
    bad.routes["/keys"] = (500, {"Content-Type": "text/plain"}, b"document not available")
    code, f, _ = await run_doctor(bad.base, "--profile", "vault")
    assert code == 2
    assert f[("all", "discovery.content_type")]["status"] == "warn"
    fetch = f[("all", "jwks.fetch")]
    assert fetch["status"] == "fail" and "HTTP 500" in fetch["reason"]
    assert "source" in fetch["fix"]


async def test_not_json(bad: BadServer) -> None:
    """A discovery URL that answers HTML fails discovery.fetch."""
    bad.routes["/.well-known/openid-configuration"] = (
        200,
        {"Content-Type": "text/html"},
        b"<html>",
    )
    code, f, _ = await run_doctor(bad.base, "--profile", "vault")
    assert code == 2 and "not JSON" in f[("all", "discovery.fetch")]["reason"]


async def test_unlisted_alg_and_strict_metadata(bad: BadServer) -> None:
    """A P-521 key is not in SPIRE's alg list (openid-client rejects it); strict clients need an authorization_endpoint and subject types."""
    from cryptography.hazmat.primitives.asymmetric import ec

    p521 = jwk_members(JWTKey("big", ec_key(ec.SECP521R1()).public_key()), set_key_use=False)
    bad.json("/.well-known/openid-configuration", bad.doc(subject_types_supported=[]))
    bad.json("/keys", {"keys": [p521]})
    code, f, _ = await run_doctor(bad.base, "--profile", "libraries,strict")
    assert code == 2
    listed = f[("libraries", "keys.alg_listed")]
    assert listed["status"] == "fail" and "signing_algs_from_keys" in listed["fix"]
    assert f[("strict", "metadata.authorization_endpoint")]["status"] == "fail"
    assert f[("strict", "metadata.subject_types")]["status"] == "fail"


async def test_unreachable_issuer(bad: BadServer) -> None:
    """Nothing listening: discovery.fetch fails with a fix about the listener, and exit is 2."""
    await asyncio.sleep(0)
    code, f, _ = await run_doctor("https://127.0.0.1:9", "--profile", "aws")
    assert code == 2
    assert "listener" in f[("all", "discovery.fetch")]["fix"]


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["https://a", "https://b"],
        ["https://a", "--profile", "nope"],
        ["https://a", "--bogus"],
        ["https://a", "--timeout", "0"],
        ["https://a", "--token", "/nonexistent/token"],
        ["https://a", "--ca", "/nonexistent/ca.pem"],
        ["ftp://a"],
    ],
)
def test_usage_errors_exit_3(args: list[str]) -> None:
    """Bad flags, arguments or unreadable files exit 3 (doctor could not run) with a message."""
    err = io.StringIO()
    assert cli.main(["doctor", *args], io.StringIO(), err) == 3
    assert err.getvalue()


def test_help_exits_0() -> None:
    """doctor -h prints its usage, including the exit statuses, and exits 0."""
    err = io.StringIO()
    assert cli.main(["doctor", "-h"], io.StringIO(), err) == 0
    assert "-profile" in err.getvalue() and "exit status: 0 all pass" in err.getvalue()

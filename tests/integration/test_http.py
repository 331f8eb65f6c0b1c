"""The main listener over real sockets: SPIRE's routes, statuses, bodies and headers (§3)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from pathlib import Path

import pytest

from spire_oidc.daemon import Provider
from tests.integration.support import file_config, get, raw_http, tcp_target, wait_for
from tests.keyfactory import bundle_bytes, ec_key, public_jwk, rsa_key
from tests.unit.test_documents import SPIRE_DISCOVERY_LOCALHOST

pytestmark = pytest.mark.integration

Start = Callable[..., Awaitable[Provider]]


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "bundle.json"
    path.write_bytes(bundle_bytes([public_jwk("kid-a", ec_key()), public_jwk("kid-b", rsa_key())]))
    return path


async def _loaded(provider: Provider) -> None:
    await wait_for(lambda: provider.store.current is not None, what="keys")


async def test_discovery_document_bytes_and_headers(run_provider: Start, bundle: Path) -> None:
    """GET discovery gives SPIRE's exact bytes, JSON + CORS headers, no caching, no Server."""
    p = await run_provider(file_config(bundle))
    r = await raw_http(tcp_target(p), get("/.well-known/openid-configuration"))
    assert r.status == 200
    assert r.body == SPIRE_DISCOVERY_LOCALHOST
    assert r.header("Content-Type") == "application/json"
    assert r.header("Access-Control-Allow-Origin") == "*"
    assert r.header("Content-Length") == "296"
    assert r.header("Date")
    assert not r.names() & {"cache-control", "pragma", "expires", "server", "last-modified"}


@pytest.mark.parametrize(
    ("allow", "extra", "scheme"),
    [
        (False, "", "https"),
        (False, "X-Forwarded-Proto: http\r\n", "https"),
        (True, "", "http"),
        (True, "X-Forwarded-Proto: https\r\n", "https"),
        (True, "X-Forwarded-Proto: HTTPS\r\n", "https"),
        (True, "X-Forwarded-Scheme: https\r\n", "https"),
        (True, "Forwarded: for=1.2.3.4;Proto=https\r\n", "https"),
        (True, "X-Forwarded-Proto: wss\r\n", "http"),
        (True, "X-Forwarded-Proto: https, http\r\n", "http"),
        (True, "X-Forwarded-Proto: http\r\nX-Forwarded-Scheme: https\r\n", "http"),
    ],
)
async def test_scheme_rules(
    run_provider: Start, bundle: Path, allow: bool, extra: str, scheme: str
) -> None:
    """The issuer scheme follows allow_insecure_scheme and the proxy headers like SPIRE."""
    p = await run_provider(file_config(bundle, allow_insecure_scheme=allow))
    r = await raw_http(tcp_target(p), get("/.well-known/openid-configuration", extra=extra))
    doc = json.loads(r.body)
    assert doc["issuer"] == f"{scheme}://localhost"
    assert doc["jwks_uri"] == f"{scheme}://localhost/keys"


async def test_absolute_form_request_line(run_provider: Start, bundle: Path) -> None:
    """GET https://host/... takes host and scheme from the request target."""
    p = await run_provider(file_config(bundle, allow_insecure_scheme=True))
    req = b"GET https://domain.test/.well-known/openid-configuration HTTP/1.1\r\nHost: x\r\n\r\n"
    r = await raw_http(tcp_target(p), req)
    assert json.loads(r.body)["issuer"] == "https://domain.test"


@pytest.mark.parametrize(
    ("host", "extra", "status", "body"),
    [
        ("domain.test:8080", "", 200, None),
        ("localhost", "X-Forwarded-Host: domain.test\r\n", 200, None),
        ("bad.domain.test", "", 400, 'domain "bad.domain.test" is not allowed\n'),
        (
            "localhost",
            "X-Forwarded-Host: evil.test\r\n",
            400,
            'domain "evil.test" is not allowed\n',
        ),
        ("LOCALHOST", "", 400, 'domain "LOCALHOST" must already be punycode encoded\n'),
        ("Localhost:8080", "", 400, 'domain "Localhost" must already be punycode encoded\n'),
        (
            "localhost",
            "X-Forwarded-Host: localhost, domain.test\r\n",
            400,
            'domain "localhost, domain.test" is not a valid domain name: idna: disallowed rune U+002C\n',
        ),
        (
            "[::1]:80",
            "",
            400,
            'domain "::1" is not a valid domain name: idna: disallowed rune U+003A\n',
        ),
        ("127.0.0.1", "", 400, 'domain "127.0.0.1" is not allowed\n'),
        ("localhost.", "", 400, 'domain "localhost." is not allowed\n'),
    ],
)
async def test_host_policy(
    run_provider: Start, bundle: Path, host: str, extra: str, status: int, body: str | None
) -> None:
    """The discovery document checks the (forwarded) host against domains with SPIRE's messages."""
    p = await run_provider(file_config(bundle))
    r = await raw_http(tcp_target(p), get("/.well-known/openid-configuration", host, extra))
    assert r.status == status
    if body is None:
        expected_host = extra.split(": ", 1)[1].strip() if extra else host
        assert json.loads(r.body)["issuer"] == f"https://{expected_host}"
    else:
        assert r.body.decode() == body
        assert r.header("Content-Type") == "text/plain; charset=utf-8"
        assert r.header("X-Content-Type-Options") == "nosniff"


async def test_http10_without_host(run_provider: Start, bundle: Path) -> None:
    """An HTTP/1.0 request with no Host is checked as the empty domain."""
    p = await run_provider(file_config(bundle))
    r = await raw_http(tcp_target(p), b"GET /.well-known/openid-configuration HTTP/1.0\r\n\r\n")
    assert (r.status, r.body) == (400, b'domain "" is not allowed\n')


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/keys"])
@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE", "OPTIONS", "PATCH"])
async def test_methods(run_provider: Start, bundle: Path, path: str, method: str) -> None:
    """Only GET and HEAD are served; others get 405 before the Host check."""
    p = await run_provider(file_config(bundle))
    await _loaded(p)
    r = await raw_http(tcp_target(p), get(path, "evil.test", "Content-Length: 0\r\n", method))
    assert (r.status, r.body) == (405, b"method not allowed\n")
    assert r.header("X-Content-Type-Options") == "nosniff"
    assert r.header("Allow") is None


async def test_keys_before_first_load_is_500(run_provider: Start, tmp_path: Path) -> None:
    """Before any key set was loaded /keys is 500 'document not available'; discovery still works."""
    p = await run_provider(file_config(tmp_path / "missing.json"))
    r = await raw_http(tcp_target(p), get("/keys"))
    assert (r.status, r.body) == (500, b"document not available\n")
    r = await raw_http(tcp_target(p), get("/.well-known/openid-configuration"))
    assert r.status == 200


async def test_empty_key_set_is_501(run_provider: Start, tmp_path: Path) -> None:
    """A valid bundle with no JWT authority gives 501 (SPIRE >= 1.14)."""
    path = tmp_path / "b.json"
    path.write_bytes(bundle_bytes([public_jwk("x", ec_key(), use="x509-svid")]))
    p = await run_provider(file_config(path))
    await _loaded(p)
    r = await raw_http(tcp_target(p), get("/keys"))
    assert (r.status, r.body) == (501, b"jwt not supported/enabled in this service\n")


async def test_keys_200_headers_and_body(run_provider: Start, bundle: Path) -> None:
    """/keys gives the JWKS in file order with SPIRE's headers plus a strong ETag."""
    p = await run_provider(file_config(bundle, set_key_use=True))
    await _loaded(p)
    r = await raw_http(tcp_target(p), get("/keys", "whatever.invalid"))  # no Host check on /keys
    assert r.status == 200
    doc = json.loads(r.body)
    assert [k["kid"] for k in doc["keys"]] == ["kid-a", "kid-b"]
    assert [k["alg"] for k in doc["keys"]] == ["ES256", "RS256"]
    assert all(next(iter(k)) == "use" and k["use"] == "sig" for k in doc["keys"])
    assert not r.body.endswith(b"\n")
    cur = p.store.current
    assert cur is not None
    assert {
        "accept-ranges": "bytes",
        "access-control-allow-origin": "*",
        "cache-control": "no-cache, no-store, must-revalidate",
        "content-type": "application/json",
        "expires": "0",
        "pragma": "no-cache",
        "last-modified": cur.last_modified,
        "etag": cur.etag,
        "content-length": str(len(cur.body)),
    }.items() <= {k.lower(): v for k, v in r.headers}.items()
    assert "server" not in r.names()


async def test_head_is_get_without_body(run_provider: Start, bundle: Path) -> None:
    """HEAD answers like GET (same headers and Content-Length) with no body."""
    p = await run_provider(file_config(bundle))
    await _loaded(p)
    for path in ("/keys", "/.well-known/openid-configuration"):
        g = await raw_http(tcp_target(p), get(path))
        h = await raw_http(tcp_target(p), get(path, method="HEAD"))
        assert h.status == 200 and h.body == b""
        assert h.header("Content-Length") == g.header("Content-Length") == str(len(g.body))


async def test_conditional_requests(run_provider: Start, bundle: Path) -> None:
    """If-None-Match/If-Modified-Since give 304, If-Unmodified-Since 412, ETag wins over dates."""
    p = await run_provider(file_config(bundle))
    await _loaded(p)
    cur = p.store.current
    assert cur is not None
    t = tcp_target(p)
    lm = cur.last_modified
    earlier = formatdate(int(cur.mod_time) - 60, usegmt=True)

    r = await raw_http(t, get("/keys", extra=f"If-Modified-Since: {lm}\r\n"))
    assert r.status == 304 and r.body == b""
    assert r.header("Last-Modified") == lm and r.header("ETag") == cur.etag
    assert r.header("Access-Control-Allow-Origin") == "*"
    assert r.header("Cache-Control") == "no-cache, no-store, must-revalidate"
    assert not r.names() & {"content-type", "content-length"}

    r = await raw_http(t, get("/keys", extra=f"If-Modified-Since: {earlier}\r\n"))
    assert r.status == 200
    r = await raw_http(t, get("/keys", extra=f"If-None-Match: {cur.etag}\r\n"))
    assert r.status == 304
    r = await raw_http(t, get("/keys", extra="If-None-Match: *\r\n"))
    assert r.status == 304
    # If-None-Match takes precedence: a non-matching ETag ignores a matching date.
    r = await raw_http(
        t, get("/keys", extra=f'If-None-Match: "nope"\r\nIf-Modified-Since: {lm}\r\n')
    )
    assert r.status == 200
    r = await raw_http(t, get("/keys", extra=f"If-Unmodified-Since: {earlier}\r\n"))
    assert (r.status, r.body) == (412, b"")
    assert r.header("Content-Type") == "application/json" and r.header("Content-Length") == "0"
    r = await raw_http(t, get("/keys", extra=f"If-Unmodified-Since: {lm}\r\n"))
    assert r.status == 200
    r = await raw_http(t, get("/keys", extra='If-Match: "nope"\r\n'))
    assert r.status == 412


async def test_ranges(run_provider: Start, bundle: Path) -> None:
    """A single Range gives 206, an unsatisfiable one 416, several ranges the whole body."""
    p = await run_provider(file_config(bundle))
    await _loaded(p)
    cur = p.store.current
    assert cur is not None
    n = len(cur.body)
    t = tcp_target(p)
    r = await raw_http(t, get("/keys", extra="Range: bytes=0-9\r\n"))
    assert r.status == 206 and r.body == cur.body[:10]
    assert r.header("Content-Range") == f"bytes 0-9/{n}"
    r = await raw_http(t, get("/keys", extra=f"Range: bytes={n + 5}-\r\n"))
    assert (r.status, r.body) == (416, b"invalid range: failed to overlap\n")
    assert r.header("Content-Range") == f"bytes */{n}"
    assert r.header("Cache-Control") is None and r.header("Last-Modified") is None
    assert r.header("Expires") == "0" and r.header("Pragma") == "no-cache"
    r = await raw_http(t, get("/keys", extra="Range: bytes=0-1,4-5\r\n"))
    assert r.status == 200 and r.body == cur.body
    r = await raw_http(t, get("/keys", extra='Range: bytes=0-9\r\nIf-Range: "other"\r\n'))
    assert r.status == 200
    r = await raw_http(t, get("/keys", extra=f"Range: bytes=0-9\r\nIf-Range: {cur.etag}\r\n"))
    assert r.status == 206


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/", 404),
        ("/keys/", 404),
        ("/KEYS", 404),
        ("/.well-known/openid-configuration/", 404),
        ("/.well-known%2Fopenid-configuration", 404),
        ("//keys", 404),
        ("/./keys", 404),
        ("/x/../keys", 404),
        ("/%6Beys", 200),
        ("/keys?x=1", 200),
        ("/.well-known/openid-configuration?x", 200),
    ],
)
async def test_routing(run_provider: Start, bundle: Path, path: str, status: int) -> None:
    """Exact routes only: SPIRE's 404 text for others, unclean paths 404 (SPIRE redirects)."""
    p = await run_provider(file_config(bundle))
    await _loaded(p)
    r = await raw_http(tcp_target(p), get(path))
    assert r.status == status
    if status == 404:
        assert r.body == b"404 page not found\n"
        assert r.header("X-Content-Type-Options") == "nosniff"


async def test_prefix_routes(run_provider: Start, bundle: Path) -> None:
    """With server_path_prefix the documents move under it and the root routes 404."""
    p = await run_provider(file_config(bundle, server_path_prefix="/instance/1"))
    await _loaded(p)
    t = tcp_target(p)
    r = await raw_http(t, get("/instance/1/.well-known/openid-configuration"))
    doc = json.loads(r.body)
    assert doc["issuer"] == "https://localhost/instance/1"
    assert doc["jwks_uri"] == "https://localhost/instance/1/keys"
    assert (await raw_http(t, get("/instance/1/keys"))).status == 200
    assert (await raw_http(t, get("/keys"))).status == 404
    assert (await raw_http(t, get("/.well-known/openid-configuration"))).status == 404


async def test_rotation_and_faults_keep_last_good(
    run_provider: Start, bundle: Path, tmp_path: Path
) -> None:
    """A new bundle is served after the next poll; invalid or missing files keep the last keys."""
    p = await run_provider(file_config(bundle))
    await _loaded(p)
    first = p.store.current
    assert first is not None
    bundle.write_bytes(bundle_bytes([public_jwk("kid-new", ec_key())]))
    await wait_for(lambda: p.store.current is not first, what="rotation")
    rotated = p.store.current
    assert rotated is not None and rotated.keys.kids == ("kid-new",)
    bundle.write_bytes(b"{not json")
    await wait_for(lambda: p.store.last_error is not None, what="error")
    r = await raw_http(tcp_target(p), get("/keys"))
    assert r.status == 200 and json.loads(r.body)["keys"][0]["kid"] == "kid-new"
    bundle.unlink()
    await wait_for(lambda: "No such file" in (p.store.last_error or ""), what="missing")
    r = await raw_http(tcp_target(p), get("/keys"))
    assert r.status == 200 and p.store.current is rotated


async def test_malformed_key_skipped(run_provider: Start, tmp_path: Path) -> None:
    """One malformed key in the bundle is skipped; the others are served."""
    path = tmp_path / "b.json"
    bad = {**public_jwk("bad", ec_key()), "x": "AAAA"}
    nokid = public_jwk("", ec_key())
    path.write_bytes(bundle_bytes([bad, nokid, public_jwk("good", ec_key())]))
    p = await run_provider(file_config(path))
    await _loaded(p)
    r = await raw_http(tcp_target(p), get("/keys"))
    assert [k["kid"] for k in json.loads(r.body)["keys"]] == ["good"]


async def test_unix_socket_listener(run_provider: Start, bundle: Path, tmp_path: Path) -> None:
    """listen_socket_path replaces a stale file, is mode 0777 and still checks the Host."""
    sock = tmp_path / "odp.sock"
    sock.write_text("stale")
    p = await run_provider(
        file_config(
            bundle, insecure_addr="", listen_socket_path=str(sock), allow_insecure_scheme=True
        )
    )
    await _loaded(p)
    assert stat.S_ISSOCK(os.stat(sock).st_mode)
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o777
    r = await raw_http(str(sock), get("/.well-known/openid-configuration", "domain.test"))
    assert json.loads(r.body)["issuer"] == "http://domain.test"
    r = await raw_http(str(sock), get("/.well-known/openid-configuration", "evil"))
    assert r.status == 400
    r = await raw_http(str(sock), get("/keys"))
    assert r.status == 200
    await p.stop()
    assert not sock.exists()


async def test_bad_requests_do_not_crash(run_provider: Start, bundle: Path) -> None:
    """Garbage, a missing HTTP/1.1 Host and an oversized header get 400 and the server lives on."""
    p = await run_provider(file_config(bundle))
    await _loaded(p)
    t = tcp_target(p)
    for req in (
        b"\x16\x03\x01garbage\r\n\r\n",
        b"GET /keys HTTP/1.1\r\n\r\n",
        b"GET /keys HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
        b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ):
        r = await raw_http(t, req)
        assert 400 <= r.status < 500
    assert (await raw_http(t, get("/keys"))).status == 200


async def test_slow_request_head_is_cut(run_provider: Start, bundle: Path) -> None:
    """A connection that never completes its request head is closed (SPIRE: 10 s header timeout)."""
    import asyncio

    from spire_oidc.http.timeouts import Timeouts

    p = await run_provider(file_config(bundle), timeouts=Timeouts(header=0.3, idle=0.3))
    await _loaded(p)
    host, port = tcp_target(p)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /keys HTTP/1.1\r\nHost: local")
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    assert data == b""  # closed without a response, like Go's ReadHeaderTimeout
    writer.close()
    # Other clients are served meanwhile and afterwards.
    assert (await raw_http((host, port), get("/keys"))).status == 200


@pytest.mark.parametrize(
    "forwarded", ["localhost:443/evil", "localhost:1?x", "domain.test:abc", "localhost:８０"]
)
async def test_non_numeric_port_refused(run_provider: Start, bundle: Path, forwarded: str) -> None:
    """A listed host with a non-numeric port never reaches the issuer (SPIRE would embed it)."""
    p = await run_provider(file_config(bundle))
    r = await raw_http(
        tcp_target(p),
        get("/.well-known/openid-configuration", extra=f"X-Forwarded-Host: {forwarded}\r\n"),
    )
    assert r.status == 400 and r.body.startswith(b"invalid port in host ")


@pytest.mark.parametrize(
    ("trusted", "issuer"),
    [
        (None, "https://domain.test"),  # SPIRE: every client may forward
        (("127.0.0.0/8",), "https://domain.test"),
        (("10.0.0.0/8", "unix"), "http://localhost"),  # loopback is not listed: ignored
        ((), "http://localhost"),
    ],
)
async def test_trusted_proxies(
    run_provider: Start, bundle: Path, trusted: tuple[str, ...] | None, issuer: str
) -> None:
    """trusted_proxies limits who may set X-Forwarded-*; others' headers are ignored."""
    p = await run_provider(file_config(bundle, allow_insecure_scheme=True, trusted_proxies=trusted))
    extra = "X-Forwarded-Host: domain.test\r\nX-Forwarded-Proto: https\r\n"
    r = await raw_http(tcp_target(p), get("/.well-known/openid-configuration", extra=extra))
    assert json.loads(r.body)["issuer"] == issuer


async def test_trusted_proxies_unix_socket(
    run_provider: Start, bundle: Path, tmp_path: Path
) -> None:
    """With "unix" listed, a proxy on the unix socket may forward the host."""
    sock = tmp_path / "s.sock"
    await run_provider(
        file_config(
            bundle,
            insecure_addr="",
            listen_socket_path=str(sock),
            allow_insecure_scheme=True,
            trusted_proxies=("unix",),
        )
    )
    r = await raw_http(
        str(sock),
        get("/.well-known/openid-configuration", extra="X-Forwarded-Host: domain.test\r\n"),
    )
    assert json.loads(r.body)["issuer"] == "http://domain.test"

"""Property: no Host / X-Forwarded-* input makes the discovery document advertise a host outside
``domains``, or a non-https issuer when allow_insecure_scheme is off (issue 8 §4, issue 12.1).

The advertised URLs are read back the way relying parties read them: by a real WHATWG URL parser
(Node's ``new URL()``, one long-lived process) and by a model of Go's ``url.Parse`` (below).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator

import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import example, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from spire_oidc.core.clock import FakeClock
from spire_oidc.core.store import KeyStore
from spire_oidc.http.web import ProviderHandler, WebSettings

DOMAINS = ("localhost", "domain.test", "xn--n38h.test", "127.0.0.1")

_host_chars = st.sampled_from(
    [
        *"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]_,@/%;= \\#?",
        *["😬", "é", "\t", "localhost", "domain.test", ":443", "xn--n38h.test", "/x", "?"],
        *["[localhost]", "[::1]", "evil.com", ":@", ":65535", ":65536", ":0", "127.0.0.1"],
        *["\u3002", "\uff0e", "%2e", "0" * 6],
    ]
)
host_values = st.lists(_host_chars, max_size=12).map("".join)
header_names = st.sampled_from(
    ["Host", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Scheme", "Forwarded"]
)
proto_values = st.sampled_from(
    ["http", "https", "HTTPS", "wss", "", "https, http", "proto=https", "for=x;proto=http"]
)


# -- Go's url.Parse, authority part --------------------------------------------------------------
# A model of Go 1.22 net/url (url.go): Parse cuts the fragment at the first '#'; parse() refuses
# ASCII control bytes ("net/url: invalid control character in URL"), cuts the query at the first
# '?', and after "//" takes the authority up to the first '/'. parseAuthority splits userinfo at
# the LAST '@'; parseHost: a host starting with '[' needs a ']' (strings.LastIndex) followed by
# validOptionalPort, otherwise the text from the LAST ':' must be validOptionalPort (":" then any
# number of ASCII digits, or empty); then unescape(host, encodeHost) refuses '%' not followed by
# two hex digits and any ASCII byte that shouldEscape(c, encodeHost) (not alphanumeric, not
# -_.~ and not one of !$&'()*+,;=:[]<>"). URL.Hostname() is splitHostPort(u.Host): cut at the
# last ':' when what follows is a valid optional port, then strip one pair of enclosing brackets.


class GoURLError(ValueError):
    """url.Parse returned an error."""


_GO_HOST_OK = set("-_.~!$&'()*+,;=:[]<>\"")


def _go_valid_optional_port(port: str) -> bool:
    if port == "":
        return True
    return port[0] == ":" and all("0" <= c <= "9" for c in port[1:])


def go_hostname(raw: str) -> str:
    """``url.Parse(raw).Hostname()`` for an absolute URL with an authority, per the model above."""
    u = raw.split("#", 1)[0]
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in u):
        raise GoURLError("net/url: invalid control character in URL")
    scheme, sep, rest = u.partition("://")
    if not sep or not scheme:
        raise GoURLError("no scheme/authority")
    rest = rest.split("?", 1)[0]
    authority = rest.split("/", 1)[0]
    host = authority.rsplit("@", 1)[-1]
    if host.startswith("["):
        i = host.rfind("]")
        if i < 0:
            raise GoURLError("missing ']' in host")
        if not _go_valid_optional_port(host[i + 1 :]):
            raise GoURLError("invalid port after host")
    else:
        i = host.rfind(":")
        if i != -1 and not _go_valid_optional_port(host[i:]):
            raise GoURLError("invalid port after host")
    for j, c in enumerate(host):
        if c == "%":
            escape = host[j + 1 : j + 3]
            if len(escape) != 2 or not all(h in "0123456789abcdefABCDEF" for h in escape):
                raise GoURLError("invalid URL escape")
        elif c.isascii() and not c.isalnum() and c not in _GO_HOST_OK:
            raise GoURLError(f"invalid character {c!r} in host name")
    colon = host.rfind(":")
    if colon != -1 and _go_valid_optional_port(host[colon:]):
        host = host[:colon]
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


def test_go_model_reads_the_attack_host_as_evil() -> None:
    """The Go model reads the issue's issuer like Go does: host "evil.com" (userinfo before @)."""
    assert go_hostname("https://[oidc.example.org]:@evil.com") == "evil.com"
    assert go_hostname("https://localhost:") == "localhost"
    assert go_hostname("https://[::1]:80/keys") == "::1"
    assert go_hostname("https://a@localhost:1/x:y@z?q#f") == "localhost"
    with pytest.raises(GoURLError):
        go_hostname("https://local host")
    with pytest.raises(GoURLError):
        go_hostname("https://localhost:80a")


# -- WHATWG: Node's new URL() -----------------------------------------------------------------------
_NODE_SCRIPT = r"""
const rl = require('readline').createInterface({input: process.stdin});
rl.on('line', (line) => {
  let out;
  try { out = {host: new URL(JSON.parse(line)).hostname}; }
  catch (e) { out = {error: String(e.code || e.message)}; }
  process.stdout.write(JSON.stringify(out) + "\n");
});
"""

WhatwgHost = Callable[[str], str]


@pytest.fixture(scope="module")
def whatwg_hostname() -> Iterator[WhatwgHost]:
    """``new URL(url).hostname`` from one Node process (a failure in CI, a skip elsewhere)."""
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI"):
            pytest.fail("node is not installed: the WHATWG half of the property cannot run")
        pytest.skip("node is not installed")
    proc = subprocess.Popen(
        [node, "-e", _NODE_SCRIPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    def hostname(url: str) -> str:
        stdin.write(json.dumps(url) + "\n")
        stdin.flush()
        answer = json.loads(stdout.readline())
        if "error" in answer:
            raise ValueError(f"WHATWG refuses {url!r}: {answer['error']}")
        return str(answer["host"])

    try:
        yield hostname
    finally:
        stdin.close()
        proc.wait(timeout=10)
        stdout.close()


def test_whatwg_reads_the_attack_host_as_evil(whatwg_hostname: WhatwgHost) -> None:
    """Node's WHATWG parser reads the issue's issuer with host "evil.com", as the issue says."""
    assert whatwg_hostname("https://[oidc.example.org]:@evil.com/keys") == "evil.com"
    assert whatwg_hostname("https://localhost:/keys") == "localhost"


def _handler(allow_insecure: bool) -> ProviderHandler:
    store = KeyStore(set_key_use=False, clock=FakeClock())
    return ProviderHandler(
        WebSettings(domains=DOMAINS, allow_insecure_scheme=allow_insecure), store
    )


HANDLERS = {False: _handler(False), True: _handler(True)}


@settings(max_examples=600, deadline=None)
@given(
    allow_insecure=st.booleans(),
    headers=st.lists(st.tuples(header_names, host_values | proto_values), max_size=5),
)
@example(allow_insecure=False, headers=[("Host", "[localhost]:@evil.com")])
@example(allow_insecure=False, headers=[("X-Forwarded-Host", "[domain.test]:@evil.com")])
@example(allow_insecure=False, headers=[("Host", "localhost:1" + "0" * 200)])
@example(allow_insecure=False, headers=[("Host", "[localhost]:443")])
async def test_discovery_never_advertises_a_foreign_host(
    whatwg_hostname: WhatwgHost, allow_insecure: bool, headers: list[tuple[str, str]]
) -> None:
    """Any header mix gives 400 or URLs whose host, read by WHATWG and by Go, is a domain."""
    handler = HANDLERS[allow_insecure]
    req = make_mocked_request(
        "GET", "/.well-known/openid-configuration", headers=CIMultiDict(headers)
    )
    resp = await handler(req)
    assert resp.status in (200, 400)
    if resp.status != 200:
        return
    assert resp.body is not None
    doc = json.loads(bytes(resp.body))  # type: ignore[arg-type]
    for url in (doc["issuer"], doc["jwks_uri"]):
        scheme, _, rest = url.partition("://")
        authority = rest.split("/", 1)[0]
        host, _, port = authority.partition(":")
        assert host in DOMAINS, url
        assert port == "" or (port.isdigit() and 1 <= int(port) <= 65535), url
        assert "@" not in authority and " " not in url
        assert go_hostname(url) in DOMAINS, url
        assert whatwg_hostname(url) in DOMAINS, url
        if not allow_insecure:
            assert scheme == "https"

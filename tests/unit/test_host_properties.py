"""Property: no Host / X-Forwarded-* input makes the discovery document advertise a host outside
``domains``, or a non-https issuer when allow_insecure_scheme is off (issue 8 §4)."""

from __future__ import annotations

import json

from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from spire_oidc.core.clock import FakeClock
from spire_oidc.core.store import KeyStore
from spire_oidc.http.web import ProviderHandler, WebSettings

DOMAINS = ("localhost", "domain.test", "xn--n38h.test")

_host_chars = st.sampled_from(
    [
        *"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]_,@/%;= ",
        *["😬", "é", "\t", "localhost", "domain.test", ":443", "xn--n38h.test", "/x", "?"],
    ]
)
host_values = st.lists(_host_chars, max_size=12).map("".join)
header_names = st.sampled_from(
    ["Host", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Scheme", "Forwarded"]
)
proto_values = st.sampled_from(
    ["http", "https", "HTTPS", "wss", "", "https, http", "proto=https", "for=x;proto=http"]
)


def _handler(allow_insecure: bool) -> ProviderHandler:
    store = KeyStore(set_key_use=False, clock=FakeClock())
    return ProviderHandler(
        WebSettings(domains=DOMAINS, allow_insecure_scheme=allow_insecure), store
    )


HANDLERS = {False: _handler(False), True: _handler(True)}


@settings(max_examples=400, deadline=None)
@given(
    allow_insecure=st.booleans(),
    headers=st.lists(st.tuples(header_names, host_values | proto_values), max_size=5),
)
async def test_discovery_never_advertises_a_foreign_host(
    allow_insecure: bool, headers: list[tuple[str, str]]
) -> None:
    """Any header mix gives 400 or a document whose issuer host is a configured domain."""
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
        assert port == "" or port.isdigit(), url
        assert "@" not in authority and " " not in url
        if not allow_insecure:
            assert scheme == "https"

"""The certificate choice per ClientHello, retry backoff, Retry-After, and the acme config keys."""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import subprocess
import sys

import pytest

from spire_oidc.acme.clienthello import ClientHello
from spire_oidc.acme.manager import backoff
from spire_oidc.acme.selector import CertificateTable, Refusal
from spire_oidc.acme.session import AcmeError, parse_retry_after
from spire_oidc.config.model import effective_config, parse_config
from spire_oidc.errors import ConfigError

SERVING = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
CHALLENGE = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)


async def test_challenge_certificate_only_for_acme_tls_alone() -> None:
    """ALPN ["acme-tls/1"] gets the challenge; any other client of the name the real one."""
    table = CertificateTable(["oidc.test"])
    table.install("oidc.test", SERVING)
    table.set_challenge("oidc.test", CHALLENGE)
    assert await table.choose(ClientHello("oidc.test", ("acme-tls/1",))) is CHALLENGE
    assert await table.choose(ClientHello("OIDC.test.", ("acme-tls/1",))) is CHALLENGE
    for alpn in [("acme-tls/1", "http/1.1"), ("h2", "http/1.1"), None, ()]:
        assert await table.choose(ClientHello("oidc.test", alpn)) is SERVING
    table.clear_challenge("oidc.test")
    refused = await table.choose(ClientHello("oidc.test", ("acme-tls/1",)))
    assert refused is Refusal.UNRECOGNIZED_NAME


async def test_unknown_names_are_refused_and_no_sni_gets_the_first_name() -> None:
    """A name outside domains is refused (unrecognized_name); no SNI gets the first name's."""
    table = CertificateTable(["a.test", "b.test"], wait_timeout=0.05)
    table.install("b.test", CHALLENGE)
    assert await table.choose(ClientHello("evil.test", ("http/1.1",))) is Refusal.UNRECOGNIZED_NAME
    assert await table.choose(ClientHello(None, ("http/1.1",))) is CHALLENGE
    table.install("a.test", SERVING)
    assert await table.choose(ClientHello(None, None)) is SERVING


async def test_a_waiting_name_holds_the_handshake_until_its_certificate() -> None:
    """A client of a name without a certificate yet waits for it, or is refused on time-out."""
    table = CertificateTable(["oidc.test"], wait_timeout=2.0)
    pending = asyncio.create_task(table.choose(ClientHello("oidc.test", ("http/1.1",))))
    await asyncio.sleep(0.05)
    assert not pending.done()
    table.install("oidc.test", SERVING)
    assert await asyncio.wait_for(pending, 1.0) is SERVING
    quick = CertificateTable(["x.test"], wait_timeout=0.05)
    assert await quick.choose(ClientHello("x.test", None)) is Refusal.INTERNAL_ERROR


def test_backoff_grows_to_its_cap_and_honours_retry_after() -> None:
    """1 s doubling to 5 min when transient, 1 min to 1 h when refused; never below Retry-After."""
    rng = random.Random(3)
    transient = AcmeError("x", transient=True)
    refused = AcmeError("x")
    assert 0.9 <= backoff(1, transient, rng) <= 1.0
    assert 3.6 <= backoff(3, transient, rng) <= 4.0
    assert 270 <= backoff(30, transient, rng) <= 300
    assert 54 <= backoff(1, refused, rng) <= 60
    assert 3240 <= backoff(12, refused, rng) <= 3600
    assert backoff(1, AcmeError("x", transient=True, retry_after=120), rng) == 120
    assert backoff(1, AcmeError("x", retry_after=10**9), rng) == 24 * 3600


def test_retry_after_forms() -> None:
    """Retry-After is delta-seconds or an HTTP date; anything else is ignored."""
    assert parse_retry_after("30", 0) == 30
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", 40) == 60
    assert parse_retry_after("soon", 0) is None
    assert parse_retry_after(None, 0) is None


BASE = 'domains = ["oidc.test"]\nfile { path = "/b" }\nacme {\n  email = "a@oidc.test"\n  tos_accepted = true\n%s\n}\n'


def test_acme_defaults_match_spire_and_ours() -> None:
    """Without the new keys: :443, tls-alpn-01 only, :80 unused, no EAB, SPIRE's defaults."""
    acme = parse_config(BASE % "").acme
    assert acme is not None
    assert (acme.addr, acme.port, acme.challenges) == (":443", 443, ("tls-alpn-01",))
    assert acme.cache_dir == "./.acme-cache"
    assert acme.directory_url == "https://acme-v02.api.letsencrypt.org/directory"
    assert (acme.eab_key_id, acme.eab_hmac_key, acme.ca_bundle_path) == ("", "", "")


def test_acme_new_keys_are_parsed_and_the_hmac_key_redacted() -> None:
    """addr, challenges, http_addr, ca_bundle_path and eab are read; validate -json hides the key."""
    cfg = parse_config(
        BASE
        % """  addr = "127.0.0.1:8443"
  challenges = ["http-01", "tls-alpn-01", "http-01"]
  http_addr = "127.0.0.1:8080"
  ca_bundle_path = "/etc/ca.pem"
  eab { key_id = "kid-1" hmac_key = "c2VjcmV0LWhtYWMta2V5" }"""
    )
    acme = cfg.acme
    assert acme is not None
    assert (acme.host, acme.port) == ("127.0.0.1", 8443)
    assert acme.challenges == ("http-01", "tls-alpn-01")
    assert (acme.http_host, acme.http_port) == ("127.0.0.1", 8080)
    assert acme.eab_key_id == "kid-1" and acme.eab_hmac_key == "c2VjcmV0LWhtYWMta2V5"
    assert "c2VjcmV0" not in repr(acme)
    shown = effective_config(cfg)["acme"]
    assert isinstance(shown, dict)
    assert shown["eab"] == {"key_id": "kid-1", "hmac_key": "<redacted>"}
    assert shown["challenges"] == ["http-01", "tls-alpn-01"]


@pytest.mark.parametrize(
    ("body", "message", "key"),
    [
        ('challenges = ["dns-01"]', 'unsupported challenge type "dns-01"', "acme.challenges"),
        ("challenges = []", "challenges must name at least one", "acme.challenges"),
        ('addr = "443"', "invalid addr in the acme configuration section", "acme.addr"),
        ('http_addr = "x:y:z"', "invalid http_addr in the acme configuration section", None),
        ('eab { hmac_key = "aGk" }', "key_id must be configured in the acme.eab", None),
        ('eab { key_id = "k" }', "hmac_key must be configured in the acme.eab", None),
        ('eab {\nkey_id = "k"\nhmac_key = "not base64!"\n}', "hmac_key must be base64url", None),
    ],
)
def test_acme_key_errors_name_the_key(body: str, message: str, key: str | None) -> None:
    """Each invalid new key fails validation with a SPIRE-style message naming it."""
    with pytest.raises(ConfigError, match=message) as err:
        parse_config(BASE % body)
    if key is not None:
        assert err.value.key == key


def test_spire_checks_still_come_first() -> None:
    """SPIRE's tos_accepted check precedes the new keys' checks (SPIRE's error wins)."""
    text = BASE.replace("tos_accepted = true", "tos_accepted = false") % 'challenges = ["x"]'
    with pytest.raises(ConfigError, match="tos_accepted must be set to true"):
        parse_config(text)


def test_acme_libraries_are_imported_only_in_acme_mode() -> None:
    """Importing the daemon and the config loads neither acme, josepy, requests nor spire_oidc.acme."""
    probe = (
        "import json, sys, spire_oidc.daemon, spire_oidc.config.model, spire_oidc.cli\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'acme', 'josepy', 'requests'} or m.startswith('spire_oidc.acme'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == []

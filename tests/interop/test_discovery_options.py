"""The optional spec-clean discovery document: config keys, pure rendering, cache reset on rotation."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from spire_oidc.config.model import DiscoveryDocumentConfig, effective_config, parse_config
from spire_oidc.core.documents import SPIRE_DISCOVERY, DiscoveryOptions, render_discovery
from spire_oidc.core.keys import JWTKey, KeySet
from spire_oidc.daemon import discovery_options, start
from spire_oidc.errors import ConfigError
from tests.integration.support import file_config, get, raw_http, tcp_target, wait_for
from tests.keyfactory import bundle_bytes, ec_key, public_jwk, rsa_key

BASE = 'domains = ["localhost"]\ninsecure_addr = ":8080"\nfile { path = "b.json" }\n'


def test_default_is_byte_identical_to_spire() -> None:
    """Without the block the document is SPIRE's, bytes included."""
    cfg = parse_config(BASE)
    assert cfg.discovery_document == DiscoveryDocumentConfig()
    assert discovery_options(cfg) == SPIRE_DISCOVERY
    keys = KeySet((JWTKey("k", ec_key().public_key()),))
    assert render_discovery("https://h", "https://h/keys", SPIRE_DISCOVERY, keys) == (
        render_discovery("https://h", "https://h/keys")
    )


def test_options_render_in_spire_order() -> None:
    """An endpoint replaces "", derived algs follow a fixed order, claims_supported comes last."""
    keys = KeySet(
        (
            JWTKey("e", ec_key(ec.SECP384R1()).public_key()),
            JWTKey("r", rsa_key().public_key()),
        )
    )
    options = DiscoveryOptions("https://h/authorize", True, ("sub", "aud"))
    doc = json.loads(render_discovery("https://h", "https://h/keys", options, keys))
    assert list(doc) == [
        "issuer",
        "jwks_uri",
        "authorization_endpoint",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
        "claims_supported",
    ]
    assert doc["authorization_endpoint"] == "https://h/authorize"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256", "ES384"]
    assert doc["claims_supported"] == ["sub", "aud"]
    omitted = json.loads(render_discovery("https://h", "https://h/keys", DiscoveryOptions(None)))
    assert "authorization_endpoint" not in omitted
    no_keys = json.loads(
        render_discovery(
            "https://h", "https://h/keys", DiscoveryOptions(signing_algs_from_keys=True)
        )
    )
    assert no_keys["id_token_signing_alg_values_supported"] == ["RS256", "ES256", "ES384"]


def test_config_block_parses_and_shows_in_effective_config() -> None:
    """The discovery_document block parses into the config and appears in validate -json."""
    cfg = parse_config(
        BASE
        + "discovery_document {\n"
        + "  omit_authorization_endpoint = true\n  signing_algs_from_keys = true\n"
        + '  claims_supported = ["sub"]\n}\n'
    )
    assert discovery_options(cfg) == DiscoveryOptions(None, True, ("sub",))
    assert effective_config(cfg)["discovery_document"] == {
        "authorization_endpoint": "",
        "omit_authorization_endpoint": True,
        "signing_algs_from_keys": True,
        "claims_supported": ["sub"],
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('authorization_endpoint = "http://h/a"', "must be an https URL"),
        ('authorization_endpoint = "/authorize"', "must be an https URL"),
        (
            'authorization_endpoint = "https://h/a"\nomit_authorization_endpoint = true',
            "mutually exclusive",
        ),
        ('claims_supported = ["sub", ""]', "non-empty claim names"),
    ],
)
def test_config_errors_name_the_key(body: str, message: str) -> None:
    """Invalid values fail with a message naming the discovery_document key."""
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + "discovery_document {\n" + body + "\n}\n", path="t.conf")
    assert message in str(info.value)
    assert (info.value.key or "").startswith("discovery_document.")


@pytest.mark.integration
async def test_derived_algs_follow_key_rotation(tmp_path: Path) -> None:
    """With signing_algs_from_keys the served document changes when the key set's algorithms do."""
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(bundle_bytes([public_jwk("ec", ec_key())]))
    cfg = file_config(
        bundle, discovery_document=DiscoveryDocumentConfig(signing_algs_from_keys=True)
    )
    provider = await start(cfg)
    try:
        target = tcp_target(provider)

        async def algs() -> list[str]:
            r = await raw_http(target, get("/.well-known/openid-configuration"))
            assert r.status == 200
            return list(json.loads(r.body)["id_token_signing_alg_values_supported"])

        await wait_for(lambda: provider.store.current is not None, what="first keys")
        assert await algs() == ["ES256"]
        assert await algs() == ["ES256"]  # served from the cache
        bundle.write_bytes(bundle_bytes([public_jwk("ec", ec_key()), public_jwk("rsa", rsa_key())]))
        await wait_for(
            lambda: (
                provider.store.current is not None and len(provider.store.current.keys.keys) == 2
            ),
            what="rotation",
        )
        # The fast path may answer from its per-second response cache for up to a second.
        for _attempt in range(60):  # at most 3 s
            served = await algs()
            if served == ["RS256", "ES256"]:
                break
            await asyncio.sleep(0.05)
        assert served == ["RS256", "ES256"]
    finally:
        await provider.stop()

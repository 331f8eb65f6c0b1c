"""doctor's caching checks against a real provider on loopback, with and without cache_control."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from spire_oidc.config.model import CacheControlConfig
from spire_oidc.daemon import Provider
from spire_oidc.doctor.command import run
from tests.integration.support import file_config, tcp_target, wait_for
from tests.keyfactory import bundle_bytes, public_jwk, rsa_key

pytestmark = pytest.mark.integration

StartProvider = Callable[..., Awaitable[Provider]]
Findings = dict[tuple[str, str], dict[str, str]]


async def _doctor(provider: Provider, *args: str) -> tuple[int, Findings]:
    _host, port = tcp_target(provider)
    out, err = io.StringIO(), io.StringIO()
    issuer = f"http://localhost:{port}"
    code = await asyncio.to_thread(
        run, [issuer, "-json", "-profile", "aws", *args], out, err, prog="p"
    )
    report = json.loads(out.getvalue())
    return code, {(f["party"], f["check"]): f for f in report["findings"]}


async def _provider(
    start: StartProvider, tmp_path: Path, cc: CacheControlConfig | None
) -> Provider:
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(bundle_bytes([public_jwk("kid-r", rsa_key())]))
    config = replace(file_config(bundle, allow_insecure_scheme=True), cache_control=cc)
    provider = await start(config)
    await wait_for(lambda: provider.store.current is not None, what="keys")
    return provider


async def test_spire_headers_warn_aws(run_provider: StartProvider, tmp_path: Path) -> None:
    """Served with SPIRE's no-cache headers, the JWKS warns the aws profile; propagation passes at 0 s."""
    provider = await _provider(run_provider, tmp_path, None)
    _, f = await _doctor(provider)
    assert f[("aws", "jwks.cacheable")]["status"] == "warn"
    assert "138405" in f[("aws", "jwks.cacheable")]["reason"]
    assert f[("all", "cache.propagation")]["status"] == "pass"
    assert "total 0 s" in f[("all", "cache.propagation")]["reason"]


async def test_cache_control_passes_aws_and_is_measured(
    run_provider: StartProvider, tmp_path: Path
) -> None:
    """With cache_control set, jwks.cacheable passes and cache.propagation reports the served max-ages against the window."""
    cc = CacheControlConfig(keys="public, max-age=300", discovery="public, max-age=3600")
    provider = await _provider(run_provider, tmp_path, cc)
    _, f = await _doctor(provider)
    assert f[("aws", "jwks.cacheable")]["status"] == "pass"
    prop = f[("all", "cache.propagation")]
    assert prop["status"] == "pass"
    assert "discovery 1 h (max-age=3600)" in prop["reason"]
    assert "JWKS 5 min (max-age=300)" in prop["reason"]
    assert "total 1 h 5 min of the 8 h prepare-to-activate window" in prop["reason"]
    _, short = await _doctor(provider, "-ca-ttl", "3h")  # a 1 h window
    assert short[("all", "cache.propagation")]["status"] == "fail"
    assert (
        "1 h prepare-to-activate window (ca_ttl 3 h)"
        in short[("all", "cache.propagation")]["reason"]
    )

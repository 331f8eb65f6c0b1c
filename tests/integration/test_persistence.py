"""Keys survive restarts: the last good key set is persisted and served while SPIRE is away."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from spire_oidc.config.model import Config, HealthChecksConfig
from spire_oidc.core import persist
from spire_oidc.daemon import Provider
from tests.integration.support import file_config, get, raw_http, tcp_target, wait_for
from tests.keyfactory import bundle_bytes, ec_key, public_jwk

pytestmark = pytest.mark.integration

Start = Callable[[Config], Awaitable[Provider]]


async def test_restart_with_upstream_down_serves_persisted_keys(
    run_provider: Start, tmp_path: Path
) -> None:
    """After a restart with the source unreachable, /keys serves the persisted keys; not ready."""
    bundle, state = tmp_path / "b.json", tmp_path / "state"
    bundle.write_bytes(bundle_bytes([public_jwk("k1", ec_key()), public_jwk("k2", ec_key())]))
    hc = HealthChecksConfig(bind_port=0)
    cfg = file_config(bundle, state_dir=str(state), health_checks=hc)
    p1 = await run_provider(cfg)
    await wait_for(lambda: p1.store.current is not None, what="keys")
    first = await raw_http(tcp_target(p1), get("/keys"))
    await wait_for(lambda: (state / persist.STATE_FILE).exists(), what="state file")
    await p1.stop()

    bundle.unlink()  # SPIRE is gone
    p2 = await run_provider(cfg)
    r = await raw_http(tcp_target(p2), get("/keys"))
    assert r.status == 200 and r.body == first.body
    assert r.header("Last-Modified") == first.header("Last-Modified")
    assert r.header("ETag") == first.header("ETag")
    host, _, port = p2.health_addresses[0].rpartition(":")
    ready = await raw_http((host.strip("[]"), int(port)), get("/ready?verbose"))
    assert ready.status == 500
    assert any("restored" in reason for reason in json.loads(ready.body)["reasons"])

    # The source comes back with a rotation: the new keys replace the restored ones.
    bundle.write_bytes(bundle_bytes([public_jwk("k3", ec_key())]))
    await wait_for(lambda: not p2.store.restored, what="upstream confirmation")
    r = await raw_http(tcp_target(p2), get("/keys"))
    assert [k["kid"] for k in json.loads(r.body)["keys"]] == ["k3"]


async def test_persisted_keys_expire(run_provider: Start, tmp_path: Path) -> None:
    """Persisted keys older than state_max_age are not served (a revoked key is not kept forever)."""
    state = tmp_path / "state"
    keys_doc = [public_jwk("old", ec_key())]
    from spire_oidc.core.keys import KeySet, key_from_jwk

    ks = KeySet(tuple(key_from_jwk(k) for k in keys_doc))
    import time

    persist.save(str(state), ks, mod_time=time.time() - 100, now=time.time() - 100)
    cfg = file_config(tmp_path / "missing.json", state_dir=str(state), state_max_age=50.0)
    p = await run_provider(cfg)
    r = await raw_http(tcp_target(p), get("/keys"))
    assert (r.status, r.body) == (500, b"document not available\n")

    # Within the age the keys are served, and stop being served when the age runs out.
    persist.save(str(state), ks, mod_time=time.time(), now=time.time() - 49.7)
    p2 = await run_provider(cfg)
    assert (await raw_http(tcp_target(p2), get("/keys"))).status == 200
    await wait_for(lambda: p2.store.current is None, timeout=5, what="expiry")
    assert (await raw_http(tcp_target(p2), get("/keys"))).status == 500


async def test_corrupted_state_is_ignored(run_provider: Start, tmp_path: Path) -> None:
    """A corrupted state file is reported and ignored; the provider starts normally."""
    state = tmp_path / "state"
    state.mkdir()
    (state / persist.STATE_FILE).write_text("{garbage")
    bundle = tmp_path / "b.json"
    bundle.write_bytes(bundle_bytes([public_jwk("k", ec_key())]))
    p = await run_provider(file_config(bundle, state_dir=str(state)))
    await wait_for(lambda: p.store.current is not None, what="keys")
    await wait_for(
        lambda: persist.load(str(state), now=p.store.current.mod_time, max_age=60) is not None,  # type: ignore[union-attr]
        what="state rewritten",
    )


async def test_max_age_counts_from_the_last_confirmation(
    run_provider: Start, tmp_path: Path
) -> None:
    """Unchanged keys that the source keeps confirming stay restorable past state_max_age."""
    import asyncio

    bundle, state = tmp_path / "b.json", tmp_path / "state"
    bundle.write_bytes(bundle_bytes([public_jwk("steady", ec_key())]))
    cfg = file_config(bundle, state_dir=str(state), state_max_age=1.0)
    p1 = await run_provider(cfg)
    await wait_for(lambda: p1.store.current is not None, what="keys")
    await asyncio.sleep(1.5)  # longer than state_max_age, with no key change
    await p1.stop()
    bundle.unlink()
    p2 = await run_provider(cfg)
    r = await raw_http(tcp_target(p2), get("/keys"))
    assert r.status == 200 and json.loads(r.body)["keys"][0]["kid"] == "steady"

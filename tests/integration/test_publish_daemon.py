"""The daemon publishes on every rotation (file:// store, in-process): listener and store both
follow the agent, publish-only mode serves health and metrics with a publish section."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from spire_oidc.daemon import Provider
from tests.fakes.fake_workload_api import FakeWorkloadAPI
from tests.integration.publish_support import (
    DISCOVERY_PATH,
    ISSUER,
    JWKS_PATH,
    Agent,
    fetch,
    kids_of,
    publish_config,
)
from tests.integration.support import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
async def agent(sock_dir: Path) -> AsyncIterator[Agent]:
    fake = FakeWorkloadAPI(sock_dir / "agent.sock")
    await fake.start()
    yield Agent(fake)
    await fake.stop()


def stored_kids(root: Path) -> list[str]:
    path = root / JWKS_PATH
    return kids_of(path.read_bytes()) if path.exists() else []


async def test_rotation_reaches_listener_and_store(
    agent: Agent, tmp_path: Path, run_provider: Any
) -> None:
    """Each rotation changes /keys and the published JWKS; discovery is published once."""
    out = tmp_path / "www"
    agent.serve("k1")
    p: Provider = await run_provider(publish_config(agent.fake.socket_path, f"file://{out}"))
    await wait_for(lambda: stored_kids(out) == ["k1"], what="k1 published")
    await wait_for((out / DISCOVERY_PATH).exists, what="discovery published (after the JWKS)")
    discovery = json.loads((out / DISCOVERY_PATH).read_bytes())
    assert discovery["issuer"] == ISSUER and discovery["jwks_uri"] == ISSUER + "/keys"
    agent.serve("k1", "k2")
    await wait_for(lambda: stored_kids(out) == ["k1", "k2"], what="k2 published")
    agent.serve("k2")
    await wait_for(lambda: stored_kids(out) == ["k2"], what="k1 removed")
    port = p.addresses[0].rpartition(":")[2]
    status, _, body = await asyncio.to_thread(fetch, f"http://localhost:{port}/keys")
    assert status == 200 and kids_of(body) == ["k2"]
    assert p.publication is not None
    status_ = p.publication.status
    # the JWKS lands first; the rotation is done once discovery is checked and verified too
    await wait_for(lambda: status_.phase == "in_sync" and not status_.pending, what="in sync")
    assert status_.lag.count >= 3


async def test_publish_only_mode_serves_health_and_metrics(
    agent: Agent, tmp_path: Path, run_provider: Any
) -> None:
    """Without a listener the provider publishes; /ready?verbose and /metrics report it."""
    out = tmp_path / "www"
    agent.serve("k1")
    config = publish_config(agent.fake.socket_path, f"file://{out}", listener=False, health=True)
    p: Provider = await run_provider(config)
    assert p.addresses == []
    await wait_for(lambda: stored_kids(out) == ["k1"], what="k1 published")
    await wait_for(lambda: p.publication is not None and not p.publication.status.pending)
    base = f"http://{p.health_addresses[0]}"
    status, _, body = await asyncio.to_thread(fetch, base + "/ready?verbose")
    assert status == 200
    section = json.loads(body)["publish"]
    assert section["target"] == "file" and section["state"] == "in_sync"
    assert section["pending"] is False and section["last_error_reason"] is None
    assert section["last_success_age_seconds"] is not None
    _, _, metrics = await asyncio.to_thread(fetch, base + "/metrics")
    text = metrics.decode()
    assert "spire_oidc_publish_last_success_timestamp_seconds" in text
    assert 'spire_oidc_publish_objects_total{outcome="written"} 3.0' in text
    assert "spire_oidc_publish_lag_seconds_count 1.0" in text
    assert 'spire_oidc_publish_failures_total{reason="unreachable"} 0.0' in text


async def test_published_bytes_are_what_the_listener_serves_for_the_issuer(
    agent: Agent, tmp_path: Path, run_provider: Any
) -> None:
    """Discovery: byte-identical to the listener's answer for the issuer's host; JWKS: the
    listener's bytes when the source delivers the keys in kid order."""
    out = tmp_path / "www"
    agent.serve("a1", "b2")
    config = publish_config(
        agent.fake.socket_path, f"file://{out}", domains=("oidc.example.org", "localhost")
    )
    p: Provider = await run_provider(config)
    await wait_for(lambda: stored_kids(out) == ["a1", "b2"], what="published")
    await wait_for((out / DISCOVERY_PATH).exists, what="discovery published (after the JWKS)")
    port = p.addresses[0].rpartition(":")[2]
    listener = f"http://localhost:{port}"

    def get(path: str) -> bytes:
        req = urllib.request.Request(listener + path, headers={"Host": "oidc.example.org"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return bytes(resp.read())

    assert (
        await asyncio.to_thread(get, "/.well-known/openid-configuration")
        == (out / DISCOVERY_PATH).read_bytes()
    )
    assert await asyncio.to_thread(get, "/keys") == (out / JWKS_PATH).read_bytes()


async def test_restored_keys_are_served_but_not_published_until_confirmed(
    agent: Agent, tmp_path: Path, run_provider: Any
) -> None:
    """Keys restored from state_dir are served at once but published only once the source
    delivers them (they are not a fresh delivery)."""
    state = tmp_path / "state"
    first = tmp_path / "first"
    agent.serve("k1")
    p1: Provider = await run_provider(
        publish_config(agent.fake.socket_path, f"file://{first}", state_dir=str(state))
    )
    await wait_for(lambda: stored_kids(first) == ["k1"], what="first run published")
    await wait_for(lambda: any(state.iterdir()), what="state saved")
    await p1.stop()
    agent.fake.set_bundles(None)  # the agent has nothing yet: new streams wait
    out = tmp_path / "second"
    p2: Provider = await run_provider(
        publish_config(agent.fake.socket_path, f"file://{out}", state_dir=str(state))
    )
    port = p2.addresses[0].rpartition(":")[2]
    status, _, body = await asyncio.to_thread(fetch, f"http://localhost:{port}/keys")
    assert status == 200 and kids_of(body) == ["k1"]  # served from the state file
    await asyncio.sleep(1.0)
    assert not (out / JWKS_PATH).exists()
    assert p2.publication is not None and p2.publication.status.phase == "waiting_for_keys"
    agent.serve("k1")  # the source confirms the same keys: now they are published
    await wait_for(lambda: stored_kids(out) == ["k1"], what="published after confirmation")

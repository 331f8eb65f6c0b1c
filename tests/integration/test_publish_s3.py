"""Publication to a real S3 server (signed SeaweedFS on loopback): rotations reach the bucket
with their headers, a 30 s storage outage never stalls the listener and publication catches up,
two replicas on one bucket neither roll back nor flap, and wrong credentials are named."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from spire_oidc.config.model import CacheControlConfig
from spire_oidc.daemon import Provider
from tests.fakes.fake_workload_api import FakeWorkloadAPI
from tests.integration.publish_support import (
    DISCOVERY_PATH,
    ISSUER,
    JWKS_PATH,
    Agent,
    fetch,
    fetch_kids,
    kids_of,
    publish_config,
    wait_kids,
)
from tests.integration.support import wait_for
from tests.integration.test_publish_cli import publish, write_config
from tests.storage_support.fixtures import Bucket, s3_bucket, seaweedfs, stopped_async

__all__ = ["s3_bucket", "seaweedfs"]  # the fixtures, for ruff

pytestmark = pytest.mark.integration


@pytest.fixture
async def agent(sock_dir: Path) -> AsyncIterator[Agent]:
    fake = FakeWorkloadAPI(sock_dir / "agent.sock")
    await fake.start()
    yield Agent(fake)
    await fake.stop()


@pytest.fixture
def s3_env(s3_bucket: Bucket, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """The bucket's credentials in this process's environment (the daemon reads them there)."""
    for name, value in s3_bucket.env.items():
        monkeypatch.setenv(name, value)
    return s3_bucket


def listener_url(p: Provider, path: str = "/keys") -> str:
    return f"http://localhost:{p.addresses[0].rpartition(':')[2]}{path}"


async def test_rotation_reaches_the_bucket_with_headers(
    agent: Agent, s3_env: Bucket, run_provider: Any
) -> None:
    """Each rotation lands in the bucket; Content-Type and Cache-Control are the configured ones."""
    cc = CacheControlConfig(keys="public, max-age=60", discovery="public, max-age=3600")
    config = replace(publish_config(agent.fake.socket_path, s3_env.url), cache_control=cc)
    agent.serve("k1")
    await run_provider(config)
    keys_url = f"{s3_env.public_url}/{JWKS_PATH}"
    await wait_kids(keys_url, ["k1"])
    agent.serve("k1", "k2")
    await wait_kids(keys_url, ["k1", "k2"])
    agent.serve("k2")
    await wait_kids(keys_url, ["k2"])
    status, headers, _ = await asyncio.to_thread(fetch, keys_url)
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "public, max-age=60"
    status, headers, body = await asyncio.to_thread(fetch, f"{s3_env.public_url}/{DISCOVERY_PATH}")
    assert status == 200 and headers["cache-control"] == "public, max-age=3600"
    assert json.loads(body)["jwks_uri"] == ISSUER + "/keys"


async def test_storage_outage_never_stalls_the_listener_and_publication_catches_up(
    agent: Agent, s3_env: Bucket, run_provider: Any
) -> None:
    """Storage down for 30 s during a rotation: /keys shows the new key at once; the bucket
    catches up after the outage; the failures are counted by reason."""
    agent.serve("k1")
    p: Provider = await run_provider(
        publish_config(agent.fake.socket_path, s3_env.url, health=True)
    )
    keys_url = f"{s3_env.public_url}/{JWKS_PATH}"
    await wait_kids(keys_url, ["k1"])
    assert p.publication is not None
    status = p.publication.status
    async with stopped_async(s3_env.server):
        rotated = time.monotonic()
        agent.serve("k1", "k2")
        await wait_kids(listener_url(p), ["k1", "k2"], within=2.0)
        seen_after = time.monotonic() - rotated
        slowest = 0.0
        while time.monotonic() - rotated < 30:  # poll the listener through the outage
            t0 = time.monotonic()
            assert await fetch_kids(listener_url(p)) == ["k1", "k2"]
            slowest = max(slowest, time.monotonic() - t0)
            await asyncio.sleep(0.25)
        assert status.pending and status.phase in ("retrying", "publishing")
        assert status.failures.get("unreachable", 0) >= 1, status.failures
    await wait_kids(keys_url, ["k1", "k2"], within=30.0)
    await wait_for(lambda: not status.pending, 5.0, "publication verified")
    assert seen_after < 1.0 and slowest < 1.0, (seen_after, slowest)
    _, _, body = await asyncio.to_thread(fetch, f"http://{p.health_addresses[0]}/ready?verbose")
    section = json.loads(body)["publish"]
    assert section["state"] == "in_sync" and section["last_error_reason"] is None


async def test_two_replicas_on_one_bucket_neither_roll_back_nor_flap(
    sock_dir: Path, s3_env: Bucket, run_provider: Any
) -> None:
    """Replica B's agent lags A's through a rotation: the bucket only ever moves forward, and
    each change of the published set is written once."""
    fakes = [FakeWorkloadAPI(sock_dir / f"agent-{n}.sock") for n in "ab"]
    for fake in fakes:
        await fake.start()
    try:
        a, b = Agent(fakes[0]), Agent(fakes[1])
        b.private = a.private  # one SPIRE server behind both agents: the same keys
        a.serve("k1")
        b.serve("k1")
        keys_url = f"{s3_env.public_url}/{JWKS_PATH}"
        pa: Provider = await run_provider(publish_config(a.fake.socket_path, s3_env.url))
        await wait_kids(keys_url, ["k1"])
        pb: Provider = await run_provider(publish_config(b.fake.socket_path, s3_env.url))
        assert pa.publication is not None and pb.publication is not None
        sa, sb = pa.publication.status, pb.publication.status
        await wait_for(lambda: sb.phase == "in_sync" and not sa.pending, 10.0, "B in sync")
        seen: list[list[str]] = []
        stop = asyncio.Event()

        async def watch() -> None:
            while not stop.is_set():
                kids = await fetch_kids(keys_url)
                if kids and (not seen or seen[-1] != kids):
                    seen.append(kids)
                await asyncio.sleep(0.02)

        watcher = asyncio.create_task(watch())
        await wait_kids(keys_url, ["k1"])
        for step_a, step_b in ((("k1", "k2"), ("k1",)), (("k2",), ("k1", "k2")), (("k2",),) * 2):
            a.serve(*step_a)
            await wait_kids(keys_url, sorted(step_a))
            b.serve(*step_b)
            await wait_kids(listener_url(pb), sorted(step_b))
            await asyncio.sleep(0.5)  # give B every chance to (wrongly) write
            assert await fetch_kids(keys_url) == sorted(step_a)
        stop.set()
        await watcher
        assert seen == [["k1"], ["k1", "k2"], ["k2"]]
        # A: record + JWKS + discovery, then record + JWKS twice; B: nothing at all.
        assert (sa.writes, sb.writes) == (7, 0)
        assert sb.phase == "in_sync" and sb.behind >= 1
    finally:
        for fake in fakes:
            await fake.stop()


async def test_wrong_credentials_are_named_by_the_cli(
    agent: Agent, s3_bucket: Bucket, tmp_path: Path
) -> None:
    """A wrong secret: the one-shot command exits 1 naming AWS_SECRET_ACCESS_KEY."""
    agent.serve("k1")
    conf = write_config(tmp_path / "p.conf", agent.fake.socket_path, s3_bucket.url)
    env = {**s3_bucket.env, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    code, _, stderr = await publish("-config", str(conf), env={**os.environ, **env})
    assert code == 1 and "storage error (credentials)" in stderr, stderr
    assert "AWS_SECRET_ACCESS_KEY" in stderr
    assert len(stderr.strip().splitlines()) == 1


async def test_publish_once_to_s3(agent: Agent, s3_bucket: Bucket, tmp_path: Path) -> None:
    """The one-shot command publishes to S3 and the bucket serves the keys anonymously."""
    agent.serve("k1")
    conf = write_config(tmp_path / "p.conf", agent.fake.socket_path, s3_bucket.url)
    code, stdout, stderr = await publish("-config", str(conf), env={**os.environ, **s3_bucket.env})
    assert code == 0, stderr
    assert "published and verified (kids: k1)" in stdout
    _, _, body = await asyncio.to_thread(fetch, f"{s3_bucket.public_url}/{JWKS_PATH}")
    assert kids_of(body) == ["k1"]

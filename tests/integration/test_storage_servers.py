"""The test storage servers themselves: signed, anonymous-read, restartable, nothing left behind."""

from __future__ import annotations

import asyncio
import glob
import time

import pytest

from spire_oidc.config.storage_url import parse_storage_url
from spire_oidc.storage.open import open_store
from tests.storage_support.fixtures import (
    Bucket,
    az_container,
    azurite,
    fake_gcs,
    gs_bucket,
    s3_bucket,
    seaweedfs,
    stopped,
    stopped_async,
)
from tests.storage_support.servers import ACCESS_KEY, REGION, SeaweedFS, http, missing
from tests.storage_support.sign import sigv4_headers

__all__ = ["az_container", "azurite", "fake_gcs", "gs_bucket", "s3_bucket", "seaweedfs"]
pytestmark = pytest.mark.integration


def test_seaweedfs_requires_signatures(s3_bucket: Bucket, seaweedfs: SeaweedFS) -> None:
    """Unsigned writes get 403 and a wrong secret SignatureDoesNotMatch: signing is proven."""
    url = f"{seaweedfs.endpoint}/{s3_bucket.name}/k"
    assert http("PUT", url, body=b"x")[0] == 403
    bad = sigv4_headers(
        "PUT", url, access_key=ACCESS_KEY, secret_key="wrong", region=REGION, body=b"x"
    )
    status, _, body = http("PUT", url, headers=bad, body=b"x")
    assert status == 403 and b"SignatureDoesNotMatch" in body


def test_seaweedfs_serves_objects_anonymously(s3_bucket: Bucket, seaweedfs: SeaweedFS) -> None:
    """An object written with a signature is readable with a plain GET at public_url."""
    url = f"{seaweedfs.endpoint}/{s3_bucket.name}/{s3_bucket.prefix}/doc"
    headers = sigv4_headers(
        "PUT", url, access_key=ACCESS_KEY, secret_key=seaweedfs.env["AWS_SECRET_ACCESS_KEY"],
        region=REGION, body=b"hello",
    )  # fmt: skip
    assert http("PUT", url, headers=headers, body=b"hello")[0] == 200
    status, _, body = http("GET", f"{s3_bucket.public_url}/doc")
    assert (status, body) == (200, b"hello")


def test_seaweedfs_restart_keeps_data(s3_bucket: Bucket, seaweedfs: SeaweedFS) -> None:
    """stop() closes the port, start() on the same data directory serves the same objects."""
    url = f"{seaweedfs.endpoint}/{s3_bucket.name}/kept"
    headers = sigv4_headers(
        "PUT", url, access_key=ACCESS_KEY, secret_key=seaweedfs.env["AWS_SECRET_ACCESS_KEY"],
        region=REGION, body=b"v",
    )  # fmt: skip
    assert http("PUT", url, headers=headers, body=b"v")[0] == 200
    with stopped(seaweedfs), pytest.raises(OSError):
        http("GET", url)
    assert seaweedfs.startup_seconds < 15
    assert http("GET", url)[1:] and http("GET", url)[2] == b"v"


def test_seaweedfs_close_removes_its_sockets() -> None:
    """A closed server leaves no /tmp/seaweedfs-*-grpc-<port>.sock behind."""
    server = SeaweedFS()
    started = time.monotonic()
    server.start()
    assert time.monotonic() - started < 15
    ports = [*server.ports.values(), *server.grpc_ports.values()]
    assert any(glob.glob(f"/tmp/seaweedfs-*-{p}.sock") for p in ports)
    server.close()
    assert not [s for p in ports for s in glob.glob(f"/tmp/seaweedfs-*-{p}.sock")]
    assert not server.workdir.exists()


@pytest.mark.parametrize("fixture", ["s3_bucket", "az_container", "gs_bucket"])
async def test_objects_are_publicly_readable(request: pytest.FixtureRequest, fixture: str) -> None:
    """What the product writes under a bucket's prefix is served to an anonymous GET at
    ``public_url`` with its Content-Type and Cache-Control (what the publish tests rely on)."""
    bucket: Bucket = request.getfixturevalue(fixture)
    store = open_store(parse_storage_url(bucket.url), env=bucket.env)
    await store.put(
        ".well-known/openid-configuration",
        b'{"issuer":"https://oidc.test"}',
        content_type="application/json",
        cache_control="public, max-age=60",
    )
    status, headers, body = await asyncio.to_thread(
        http, "GET", f"{bucket.public_url}/.well-known/openid-configuration"
    )
    lowered = {k.lower(): v for k, v in headers.items()}
    assert (status, body) == (200, b'{"issuer":"https://oidc.test"}')
    assert lowered["content-type"] == "application/json"
    assert lowered["cache-control"] == "public, max-age=60"


async def test_stopped_async_keeps_the_loop_running(
    s3_bucket: Bucket, seaweedfs: SeaweedFS
) -> None:
    """stopped_async stops and restarts the server in a thread: the event loop keeps ticking."""
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        async with stopped_async(seaweedfs):
            pass
    finally:
        ticker.cancel()
    assert ticks >= 10  # a stop plus a start take over a second here


def test_a_missing_server_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the server a test is skipped, but under CI=true it fails."""
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        missing("weed is not installed")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        missing("weed is not installed")

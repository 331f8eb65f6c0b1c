"""The ObjectStore contract, run against every backend: memory, file, S3 (SeaweedFS), Azure
(azurite), and GCS against a protocol fake (no GCS emulator serves obstore's calls). S3 and Azure
run against real servers on loopback, signed."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from spire_oidc.config.storage_url import parse_storage_url
from spire_oidc.storage.base import CREATE, IfMatch, ObjectStore, PreconditionFailed, StorageError
from spire_oidc.storage.cloud import _make_store
from spire_oidc.storage.cloud_config import cloud_settings
from spire_oidc.storage.memory import MemoryStore
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
)
from tests.storage_support.servers import free_port

__all__ = ["az_container", "azurite", "fake_gcs", "gs_bucket", "s3_bucket", "seaweedfs"]
pytestmark = pytest.mark.integration

BACKENDS = ["memory", "file", "s3", "az", "gs"]
SECRET_VARIABLE = {"s3": "AWS_SECRET_ACCESS_KEY", "az": "AZURE_STORAGE_ACCOUNT_KEY"}
BUCKET_FIXTURE = {"s3": "s3_bucket", "az": "az_container", "gs": "gs_bucket"}
ENDPOINT_VARIABLE = {
    "s3": "AWS_ENDPOINT_URL",
    "az": "AZURE_STORAGE_ENDPOINT",
    "gs": "STORAGE_EMULATOR_HOST",
}


@dataclass
class Backend:
    name: str
    store: ObjectStore
    bucket: Bucket | None  # the cloud backends' bucket (server, env, URL)
    listed: Callable[[], Awaitable[set[str]]]  # every key as a second client sees it

    def reopen(self, env: dict[str, str]) -> ObjectStore:
        assert self.bucket is not None
        return open_store(parse_storage_url(self.bucket.url), env=env)


async def _list_cloud(bucket: Bucket) -> set[str]:
    import obstore

    root = parse_storage_url(bucket.server.location(bucket.name))
    store = _make_store(cloud_settings(root, bucket.env))  # no prefix: the whole bucket
    keys: set[str] = set()
    async for batch in obstore.list(store):
        keys.update(meta["path"] for meta in batch)
    return keys


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    name: str = request.param
    if name == "memory":
        memory = MemoryStore()

        async def memory_keys() -> set[str]:
            return set(memory.objects)

        yield Backend(name, memory, None, memory_keys)
        return
    if name == "file":
        root = tmp_path / "root"
        store = open_store(parse_storage_url(f"file://{root}/pre/fix"))

        async def file_keys() -> set[str]:
            return {
                str(Path(d, f).relative_to(root))
                for d, _, files in os.walk(root)
                for f in files
                if ".locks" not in Path(d).parts
            }

        yield Backend(name, store, None, file_keys)
        return
    bucket: Bucket = request.getfixturevalue(BUCKET_FIXTURE[name])
    store = open_store(parse_storage_url(bucket.url), env=bucket.env)

    async def cloud_keys() -> set[str]:
        return await _list_cloud(bucket)

    yield Backend(name, store, bucket, cloud_keys)
    await store.close()


def cloud_only(backend: Backend) -> Bucket:
    if backend.bucket is None:
        pytest.skip(f"not applicable to the {backend.name} backend")
    return backend.bucket


async def test_missing_object_is_none(backend: Backend) -> None:
    """get() of a key never written is None, not an error."""
    assert await backend.store.get("nothing/here") is None


async def test_round_trip_with_headers(backend: Backend) -> None:
    """put then get returns the bytes and the put's ETag; the cloud stores keep Content-Type
    and Cache-Control as object attributes."""
    etag = await backend.store.put(
        "docs/openid-configuration",
        b'{"issuer":"x"}',
        content_type="application/json",
        cache_control="public, max-age=300",
    )
    got = await backend.store.get("docs/openid-configuration")
    assert got is not None
    assert (got.data, got.etag) == (b'{"issuer":"x"}', etag)
    if backend.name != "file":  # the file backend does not store headers
        assert got.content_type == "application/json"
        assert got.cache_control == "public, max-age=300"


async def test_create_twice_is_refused_by_the_server(backend: Backend) -> None:
    """A second CREATE of the same key raises PreconditionFailed (on the cloud stores it is
    the server's 412/409, not a client-side check) and leaves the first object."""
    await backend.store.put("lock", b"first", mode=CREATE)
    with pytest.raises(PreconditionFailed) as err:
        await backend.store.put("lock", b"second", mode=CREATE)
    if backend.bucket is not None:
        assert "412" in str(err.value) or "409" in str(err.value)
    got = await backend.store.get("lock")
    assert got is not None and got.data == b"first"


async def test_stale_ifmatch_is_refused(backend: Backend) -> None:
    """IfMatch with an ETag that is no longer current raises PreconditionFailed (server 412)."""
    old = await backend.store.put("obj", b"one")
    await backend.store.put("obj", b"two")
    with pytest.raises(PreconditionFailed) as err:
        await backend.store.put("obj", b"three", mode=IfMatch(old))
    if backend.bucket is not None:
        assert "412" in str(err.value)
    got = await backend.store.get("obj")
    assert got is not None and got.data == b"two"


async def test_fresh_ifmatch_wins_and_changes_the_etag(backend: Backend) -> None:
    """IfMatch with the current ETag writes, and the new ETag differs from the old one."""
    first = await backend.store.put("obj", b"one", mode=CREATE)
    second = await backend.store.put("obj", b"two", mode=IfMatch(first))
    assert second != first
    got = await backend.store.get("obj")
    assert got is not None and (got.data, got.etag) == (b"two", second)


async def test_concurrent_ifmatch_writers_exactly_one_wins(backend: Backend) -> None:
    """Eight concurrent IfMatch writers holding the same ETag: exactly one wins."""
    etag = await backend.store.put("counter", b"0")
    results = await asyncio.gather(
        *(backend.store.put("counter", f"w{i}".encode(), mode=IfMatch(etag)) for i in range(8)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, str)]
    losers = [r for r in results if isinstance(r, PreconditionFailed)]
    assert (len(winners), len(losers)) == (1, 7), results
    got = await backend.store.get("counter")
    assert got is not None and got.etag == winners[0]


async def test_keys_live_under_the_prefix(backend: Backend) -> None:
    """A key is stored as ``<prefix>/<key>``, as a second client listing the bucket sees it."""
    if backend.name == "memory":
        pytest.skip("the memory store has no prefix")
    await backend.store.put("a/b.json", b"{}")
    assert "pre/fix/a/b.json" in await backend.listed()


async def test_wrong_secret_names_the_variable(backend: Backend) -> None:
    """A refused signature raises StorageError(reason="credentials") naming the secret's
    variable, and the secret itself is not in the message."""
    bucket = cloud_only(backend)
    if backend.name not in SECRET_VARIABLE:
        pytest.skip("the GCS fake, like GCS emulators, takes no credentials")
    variable = SECRET_VARIABLE[backend.name]
    wrong = "d3JvbmctYnV0LXdlbGwtZm9ybWVkLXNlY3JldA=="
    store = backend.reopen({**bucket.env, variable: wrong})
    with pytest.raises(StorageError) as err:
        await store.put("k", b"v")
    assert err.value.reason == "credentials"
    assert variable in str(err.value)
    assert wrong not in str(err.value) and bucket.env[variable] not in str(err.value)


async def test_outage_is_unreachable_then_recovers(backend: Backend) -> None:
    """With the server stopped a call fails with reason "unreachable" within the bound, and
    after a restart on the same data the next call works and sees the old object."""
    bucket = cloud_only(backend)
    await backend.store.put("kept", b"before")
    with stopped(bucket.server):
        for call in (backend.store.get("kept"), backend.store.put("kept", b"during")):
            started = time.monotonic()
            with pytest.raises(StorageError) as err:
                await call
            assert err.value.reason == "unreachable"
            assert time.monotonic() - started < 21
    got = await backend.store.get("kept")
    assert got is not None and got.data == b"before"
    await backend.store.put("kept", b"after")


async def test_http_endpoint_needs_the_variable_to_say_so(backend: Backend) -> None:
    """The test servers speak plain HTTP: an https:// endpoint variable for the same server
    fails (TLS to a plain-HTTP port), i.e. http is used only because the variable says so."""
    bucket = cloud_only(backend)
    var = ENDPOINT_VARIABLE[backend.name]
    env = {**bucket.env, var: bucket.env[var].replace("http://", "https://")}
    with pytest.raises(StorageError) as err:
        await backend.reopen(env).get("k")
    assert err.value.reason == "unreachable"


async def test_s3_without_credentials_says_what_to_set(s3_bucket: Bucket) -> None:
    """No keys, no web identity and no instance profile: reason "credentials" and the message
    lists the variables to set."""
    env = {
        k: v
        for k, v in s3_bucket.env.items()
        if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    env["AWS_METADATA_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"  # no instance profile here
    store = open_store(parse_storage_url(s3_bucket.url), env=env)
    with pytest.raises(StorageError) as err:
        await store.get("k")
    assert err.value.reason == "credentials"
    message = str(err.value)
    assert "no credentials" in message and "AWS_ACCESS_KEY_ID" in message
    assert "AWS_WEB_IDENTITY_TOKEN_FILE" in message and "instance profile" in message

"""pytest fixtures for the real storage servers (import the ones a module uses into it).

The servers are session-scoped (one start per test run; each test gets its own bucket), so a
test that stops a server must start it again before it ends (``stopped`` does that for you)::

    from tests.storage_support.fixtures import s3_bucket, seaweedfs
    __all__ = ["s3_bucket", "seaweedfs"]  # the fixtures, for ruff

    async def test_x(s3_bucket: Bucket) -> None:
        store = open_store(parse_storage_url(s3_bucket.url), env=s3_bucket.env)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from tests.storage_support.servers import Azurite, FakeGCS, SeaweedFS, StorageServer

_counter = itertools.count()


@dataclass(frozen=True)
class Bucket:
    """A fresh bucket (or container) on a running server, and how to reach it."""

    server: StorageServer
    name: str
    prefix: str

    @property
    def url(self) -> str:
        """The storage URL (``s3://NAME/PREFIX``...)."""
        return self.server.location(self.name, self.prefix)

    @property
    def env(self) -> dict[str, str]:
        return dict(self.server.env)

    @property
    def public_url(self) -> str:
        """Anonymous GETs of ``<public_url>/<key>`` read the object under the prefix."""
        base = self.server.public_base_url(self.name)
        return f"{base}/{self.prefix}" if self.prefix else base


def unique_bucket_name(tag: str = "t") -> str:
    return f"{tag}-{next(_counter)}-{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def stopped(server: StorageServer) -> Iterator[None]:
    """Stop ``server`` for the duration of the block, then start it on the same data."""
    server.stop()
    try:
        yield
    finally:
        server.start()


@contextlib.asynccontextmanager
async def stopped_async(server: StorageServer) -> AsyncIterator[None]:
    """:func:`stopped` for async tests: stopping and starting run in a thread, so a provider
    running on the test's event loop keeps running (and sees the outage) meanwhile."""
    await asyncio.to_thread(server.stop)
    try:
        yield
    finally:
        await asyncio.to_thread(server.start)


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFS]:
    """One signed SeaweedFS S3 server for the test session (skipped, or failed under CI, when
    ``weed`` is missing)."""
    server = SeaweedFS()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def s3_bucket(seaweedfs: SeaweedFS) -> Bucket:
    """A new bucket on the session's SeaweedFS, with prefix ``pre/fix``, public-read."""
    name = unique_bucket_name("s3")
    seaweedfs.create_bucket(name, public_read=True)
    return Bucket(seaweedfs, name, "pre/fix")


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One azurite Blob server for the test session (skipped, or failed under CI, when it is
    not installed)."""
    server = Azurite()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def az_container(azurite: Azurite) -> Bucket:
    """A new public-read container on the session's azurite, with prefix ``pre/fix``."""
    name = unique_bucket_name("az")
    azurite.create_bucket(name, public_read=True)
    return Bucket(azurite, name, "pre/fix")


@pytest.fixture(scope="session")
def fake_gcs() -> Iterator[FakeGCS]:
    """The GCS protocol fake for the session (our wiring only: no emulator serves obstore)."""
    server = FakeGCS()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def gs_bucket(fake_gcs: FakeGCS) -> Bucket:
    """A new bucket on the session's GCS fake, with prefix ``pre/fix``."""
    name = unique_bucket_name("gs")
    fake_gcs.create_bucket(name)
    return Bucket(fake_gcs, name, "pre/fix")

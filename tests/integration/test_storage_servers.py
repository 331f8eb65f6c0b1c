"""The test storage servers themselves: signed, anonymous-read, restartable, nothing left behind."""

from __future__ import annotations

import glob
import time

import pytest

from tests.storage_support.fixtures import Bucket, s3_bucket, seaweedfs, stopped
from tests.storage_support.servers import ACCESS_KEY, REGION, SeaweedFS, http
from tests.storage_support.sign import sigv4_headers

__all__ = ["s3_bucket", "seaweedfs"]
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

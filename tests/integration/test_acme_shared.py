"""ACME with replicas sharing one storage (``acme.storage``), in one process against Pebble:
one order for three replicas, the same certificate everywhere, challenges answered by a replica
that did not order (tls-alpn-01 and http-01), a storage outage, and a holder that dies."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from spire_oidc.acme.replicas import PollIntervals
from spire_oidc.acme.service import AcmeService
from spire_oidc.acme.shared import challenge_key
from spire_oidc.config.model import AcmeConfig, HealthChecksConfig
from spire_oidc.config.storage_url import parse_storage_url
from spire_oidc.core.clock import SystemClock
from spire_oidc.core.state import ProcessState
from spire_oidc.daemon import Provider
from spire_oidc.storage.base import ObjectStore, StorageError
from spire_oidc.storage.files import FileStore
from spire_oidc.storage.memory import MemoryStore
from spire_oidc.storage.open import open_store
from tests.acme_support.dns import LoopbackDNS
from tests.acme_support.fixtures import (
    NAME,
    PebbleFactory,
    acme_config,
    client_context,
    dns,
    pebble_factory,
    wait_for_certificate,
)
from tests.acme_support.pebble import Pebble, free_port
from tests.integration.support import Starter, get, raw_http, wait_for
from tests.storage_support.fixtures import Bucket, s3_bucket, seaweedfs

pytestmark = pytest.mark.integration
__all__ = ["dns", "pebble_factory", "s3_bucket", "seaweedfs"]

QUICK = PollIntervals(fast=(0.2, 0.4), slow=(2.0, 3.0))

Replica = Callable[..., AcmeService]


def _orders(pebble: Pebble) -> int:
    return len(re.findall(r"Added order", pebble.log_text()))


def _issued(pebble: Pebble) -> int:
    return len(re.findall(r"Issued certificate serial", pebble.log_text()))


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[list[AcmeService]]:
    """Services started by a test; every one is stopped at the end."""
    started: list[AcmeService] = []
    yield started
    for service in started:
        await service.stop()


def _acme(pebble: Pebble, tmp_path: Path, **overrides: object) -> AcmeConfig:
    acme = acme_config(pebble, tmp_path).acme
    assert acme is not None
    tls_port = int(overrides.pop("tls_port", free_port()))  # type: ignore[call-overload]
    http_port = int(overrides.pop("http_port", free_port()))  # type: ignore[call-overload]
    return replace(
        acme,
        cache_dir="",
        storage="file:///unused",  # the store is handed in (shared by the replicas)
        lock_lease=overrides.pop("lock_lease", 5.0),  # type: ignore[arg-type]
        addr=f"127.0.0.1:{tls_port}",
        port=tls_port,
        http_addr=f"127.0.0.1:{http_port}",
        http_port=http_port,
        **overrides,  # type: ignore[arg-type]
    )


async def _start(
    started: list[AcmeService],
    config: AcmeConfig,
    store: ObjectStore,
    polls: PollIntervals = QUICK,
) -> AcmeService:
    service = AcmeService(
        config, (NAME,), state=ProcessState(), clock=SystemClock(), store=store, polls=polls
    )
    started.append(service)
    service.bind()
    await service.start()
    return service


@pytest.mark.parametrize("kind", ["file", "s3"])
async def test_three_replicas_cold_start_place_one_order_and_serve_one_certificate(
    kind: str,
    pebble_factory: PebbleFactory,
    tmp_path: Path,
    replicas: list[AcmeService],
    request: pytest.FixtureRequest,
) -> None:
    """Three replicas started at once on one storage (a file:// directory, or SeaweedFS over
    S3 with signed requests): exactly one order at the CA, one certificate, and every replica
    serves its serial within 10 s of the issuance (default polling: 3-5 s)."""
    pebble = await pebble_factory()
    store: ObjectStore
    if kind == "file":
        store = FileStore(str(tmp_path / "shared"))
    else:
        bucket: Bucket = request.getfixturevalue("s3_bucket")
        store = open_store(parse_storage_url(bucket.url), env=bucket.env)
    configs = [
        _acme(pebble, tmp_path, tls_port=pebble.tls_port if i == 0 else free_port())
        for i in range(3)
    ]
    await asyncio.gather(*(_start(replicas, c, store, PollIntervals()) for c in configs))
    ctx = client_context(await pebble.root_pem())
    first = await wait_for_certificate(configs[0].port, ctx, timeout=30.0)
    issued_at = time.monotonic()
    serials = {first.cert.serial_number}
    for config in configs[1:]:
        got = await wait_for_certificate(config.port, ctx, timeout=15.0)
        serials.add(got.cert.serial_number)
    spread = time.monotonic() - issued_at
    assert len(serials) == 1
    assert spread < 10.0, spread
    assert sum(s.manager.orders for s in replicas) == 1
    assert _orders(pebble) == 1 and _issued(pebble) == 1
    for key in (NAME, "acme_account+key"):  # autocert's layout
        stored = await store.get(key)
        assert stored is not None and stored.data
    if kind == "file":
        assert (tmp_path / "shared" / NAME).exists()


@pytest.mark.parametrize("challenge", ["tls-alpn-01", "http-01"])
async def test_a_replica_that_did_not_order_answers_the_validation(
    challenge: str,
    pebble_factory: PebbleFactory,
    tmp_path: Path,
    dns: LoopbackDNS,
    replicas: list[AcmeService],
) -> None:
    """Pebble validates against a replica that is started only when the CA resolves the name
    (after another replica took the lock and published the answer): it reads the answer from
    the storage, and the certificate is issued."""
    pebble = await pebble_factory()
    store = MemoryStore()
    holder_config = _acme(pebble, tmp_path, challenges=(challenge,))
    validator_config = _acme(
        pebble,
        tmp_path,
        challenges=(challenge,),
        tls_port=pebble.tls_port,
        http_port=pebble.http_port,
    )
    validator: list[AcmeService] = []

    async def start_validator() -> None:
        if not validator:
            validator.append(await _start(replicas, validator_config, store))

    dns.before_answer = start_validator
    holder = await _start(replicas, holder_config, store)
    ctx = client_context(await pebble.root_pem())
    got = await wait_for_certificate(holder_config.port, ctx, timeout=30.0)
    dns.before_answer = None
    assert validator and validator[0].challenges is not None
    assert validator[0].challenges.served >= 1  # answered from the storage
    assert validator[0].manager.orders == 0 and holder.manager.orders == 1
    if challenge == "http-01":
        assert validator[0].http01 is not None and validator[0].http01.served >= 1
        assert holder.http01 is not None and holder.http01.served == 0
    key = challenge_key(challenge, NAME) if challenge == "tls-alpn-01" else None
    if key is not None:
        assert store.objects[key].data == b""  # withdrawn after the order
    served = await wait_for_certificate(validator_config.port, ctx, timeout=10.0)
    assert served.cert.serial_number == got.cert.serial_number


async def test_storage_outage_keeps_serving_and_is_reported(
    pebble_factory: PebbleFactory, tmp_path: Path, replicas: list[AcmeService]
) -> None:
    """With the storage unreachable every replica keeps serving its certificate, and the
    outage shows in the acme_storage report (reachable false, reason); it clears on recovery."""
    pebble = await pebble_factory()
    store = MemoryStore()
    a = await _start(replicas, _acme(pebble, tmp_path, tls_port=pebble.tls_port), store)
    b = await _start(replicas, _acme(pebble, tmp_path), store)
    ctx = client_context(await pebble.root_pem())
    got = await wait_for_certificate(a.config.port, ctx, timeout=30.0)
    await wait_for_certificate(b.config.port, ctx, timeout=10.0)
    store.fail_with = StorageError("connection refused", reason="unreachable")
    for service in (a, b):
        assert service.shared is not None
        status = service.shared.status
        await wait_for(lambda s=status: s.reachable is False, 10.0, "the outage noticed")  # type: ignore[misc]
        report = status.report(time.time())
        assert report["reachable"] is False and report["last_error_reason"] == "unreachable"
    for _ in range(5):
        for service in (a, b):
            again = await wait_for_certificate(service.config.port, ctx, timeout=5.0)
            assert again.cert.serial_number == got.cert.serial_number
        await asyncio.sleep(0.2)
    store.fail_with = None
    for service in (a, b):
        assert service.shared is not None
        status = service.shared.status
        await wait_for(lambda s=status: s.reachable is True, 10.0, "recovery")  # type: ignore[misc]
    assert _issued(pebble) == 1


class _Killable:
    """A store view that can 'die' (every call raises), as a SIGKILLed replica's would."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.dead = False

    def describe(self) -> str:
        return self.store.describe()

    async def get(self, key: str):  # type: ignore[no-untyped-def]
        if self.dead:
            await asyncio.sleep(3600)
        return await self.store.get(key)

    async def put(self, key: str, data: bytes, **kw):  # type: ignore[no-untyped-def]
        if self.dead:
            await asyncio.sleep(3600)
        return await self.store.put(key, data, **kw)

    async def close(self) -> None:
        return None


async def test_a_holder_killed_mid_order_is_taken_over_after_the_lease(
    pebble_factory: PebbleFactory,
    tmp_path: Path,
    dns: LoopbackDNS,
    replicas: list[AcmeService],
) -> None:
    """The lock holder dies while the CA validates (its storage calls never return, its order
    stops): no other replica orders while its lease is live; after the lease one of them takes
    the lock over and completes a fresh order, and all serve one certificate."""
    pebble = await pebble_factory()
    store = MemoryStore()
    lease = 3.0
    killable = _Killable(store)
    doomed = await _start(replicas, _acme(pebble, tmp_path, lock_lease=lease), killable)
    died_at: list[float] = []

    async def kill_holder() -> None:
        if not died_at:
            died_at.append(time.monotonic())
            killable.dead = True
            for task in doomed.manager._tasks:
                task.cancel()

    dns.before_answer = kill_holder
    await wait_for(lambda: bool(died_at), 15.0, "the holder's validation")
    dns.before_answer = None
    others = [
        await _start(
            replicas,
            _acme(pebble, tmp_path, lock_lease=lease, tls_port=port or free_port()),
            store,
        )
        for port in (pebble.tls_port, 0)
    ]
    ctx = client_context(await pebble.root_pem())
    got = await wait_for_certificate(others[0].config.port, ctx, timeout=30.0)
    assert time.monotonic() - died_at[0] >= lease
    again = await wait_for_certificate(others[1].config.port, ctx, timeout=10.0)
    assert again.cert.serial_number == got.cert.serial_number
    assert sum(s.manager.orders for s in others) == 1
    assert _issued(pebble) == 1
    assert sum(s.manager.replicas.locks[NAME].takeovers for s in others if s.manager.replicas) == 1


async def test_the_daemon_opens_the_configured_storage_and_reports_it(
    pebble_factory: PebbleFactory, tmp_path: Path, run_provider: Starter
) -> None:
    """A provider configured with acme.storage = file://… orders into that directory and its
    /ready?verbose has an acme_storage section (reachable, no lock held afterwards, last poll)."""
    pebble = await pebble_factory()
    health_port = free_port()
    config = acme_config(pebble, tmp_path)
    assert config.acme is not None
    shared = tmp_path / "shared"
    config = replace(
        config,
        acme=replace(config.acme, storage=f"file://{shared}", cache_dir="", lock_lease=5.0),
        health_checks=HealthChecksConfig(bind_port=health_port, bind_host="127.0.0.1"),
    )
    provider: Provider = await run_provider(config)
    got = await wait_for_certificate(pebble.tls_port, client_context(await pebble.root_pem()))
    assert got.status == 200
    assert (shared / NAME).exists() and (shared / "spire-oidc" / "locks" / NAME).exists()
    assert not (tmp_path / "acme-cache").exists()
    ready = await raw_http(("127.0.0.1", health_port), get("/ready?verbose"))
    section = json.loads(ready.body)["acme_storage"]
    assert section["reachable"] is True and section["lock_held"] == []
    assert str(shared) not in ready.body.decode()  # health is public: no location
    assert provider.acme is not None and provider.acme.manager.orders == 1


async def test_a_renewal_is_one_order_for_all_replicas(
    pebble_factory: PebbleFactory, tmp_path: Path, replicas: list[AcmeService]
) -> None:
    """With short-lived certificates (24 s), three replicas renew with one order between them
    (they share the renewal time, drawn from the serial) and all serve the renewed serial."""
    pebble = await pebble_factory(validity=24)
    store = MemoryStore()
    configs = [
        _acme(pebble, tmp_path, tls_port=pebble.tls_port if i == 0 else free_port())
        for i in range(3)
    ]
    await asyncio.gather(*(_start(replicas, c, store) for c in configs))
    ctx = client_context(await pebble.root_pem())
    first = await wait_for_certificate(configs[0].port, ctx, timeout=30.0)
    await wait_for(lambda: all(NAME in s.manager.entries for s in replicas), 10.0, "installs")
    await wait_for(
        lambda: all(
            s.manager.entries[NAME].serial != format(first.cert.serial_number, "x")
            for s in replicas
        ),
        30.0,
        "the renewal on every replica",
    )
    serials = {s.manager.entries[NAME].serial for s in replicas}
    assert len(serials) == 1
    assert _orders(pebble) == 2 and _issued(pebble) == 2
    assert sum(s.manager.orders for s in replicas) == 2

"""ACME with three replicas behind HAProxy sharing one storage (issue 13), end to end.

Real components on loopback (tests/acme_support/replicas.py): Debian's Pebble validating on the
balancer's ports (its three concurrent validations land on arbitrary replicas), Debian's HAProxy
in TCP mode round-robining 127.0.0.10 to 127.0.0.11-13, three ``oidc-discovery-provider -config``
processes, and a shared storage: a directory (``file://``) and SeaweedFS (``s3://``, signed).
Orders and certificates are counted in Pebble's log; each replica's serial is read directly.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.acme_support.replicas import (
    Cluster,
    Replica,
    SharedDirectory,
    SharedStorage,
    start_cluster,
    wait_live,
)
from tests.acme_support.watch import HandshakeLoop, PebbleWatch, SerialWatch
from tests.storage_support.fixtures import Bucket, seaweedfs, stopped, unique_bucket_name
from tests.storage_support.servers import SeaweedFS

pytestmark = pytest.mark.integration
__all__ = ["seaweedfs"]

LEASE = 4.0  # acme.lock_lease of the replicas (seconds)
SERVE_WITHIN = 10.0  # issue 13: every replica serves a new certificate within 10 s of issuance


@pytest.fixture(params=["file", "s3"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SharedStorage]:
    """The replicas' shared storage: a directory, or a bucket prefix on a signed SeaweedFS."""
    if request.param == "file":
        shared = tmp_path / "shared-acme"
        shared.mkdir(mode=0o700)
        yield SharedDirectory(shared)
        return
    server: SeaweedFS = request.getfixturevalue("seaweedfs")
    name = unique_bucket_name("acme")
    server.create_bucket(name)
    yield Bucket(server, name, "oidc-acme")


async def wait_until(cond: object, timeout: float, what: str, cluster: Cluster) -> None:
    """Poll ``cond()`` every 50 ms; on timeout fail with every log."""
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out ({timeout:.0f} s) waiting for {what}\n{cluster.logs()}")
        await asyncio.sleep(0.05)


async def cold_start(
    cluster: Cluster, pebble: PebbleWatch, serials: SerialWatch, timeout: float = 60.0
) -> int:
    """Start the three replicas at once; the serial all of them end up serving."""
    cluster.start_replicas()
    await wait_live(cluster.replicas)

    def all_serve_an_issued_certificate() -> bool:
        return bool(pebble.issued) and serials.serving(pebble.issued[-1][1])

    await wait_until(all_serve_an_issued_certificate, timeout, "all replicas serving", cluster)
    return pebble.issued[-1][1]


def issuance_to_last_replica(
    pebble: PebbleWatch, serials: SerialWatch, index: int, replicas: list[Replica] | None = None
) -> float:
    t_issued, serial = pebble.issued[index]
    return serials.last_replica_at(serial, replicas) - t_issued


@pytest.mark.parametrize("challenge", ["tls-alpn-01", "http-01"])
async def test_cold_start_of_three_replicas_places_one_order(
    storage: SharedStorage,
    challenge: str,
    tmp_path: Path,
    record_property: pytest.RecordProperty,
) -> None:
    """Three replicas started at once with one storage: exactly one account, one order and one
    certificate at the CA, the same serial served by every replica within 10 s of issuance, and
    the CA's validations spread over the replicas by the balancer."""
    cluster = await start_cluster(tmp_path, storage, challenges=(challenge,), lock_lease="4s")
    pebble = PebbleWatch(cluster.pebble.log_path).start()
    serials = SerialWatch(cluster.replicas, cluster.tls_port, cluster.ctx).start()
    try:
        serial = await cold_start(cluster, pebble, serials)
        await asyncio.sleep(2.0)  # a straggler ordering late would show up here
        latency = issuance_to_last_replica(pebble, serials, 0)
    finally:
        await serials.stop()
        await pebble.stop()
        codes = cluster.stop()
    record_property("issuance_to_last_replica_s", round(latency, 3))
    print(f"\n[{challenge} {storage.url.split(':')[0]}] issuance -> last replica {latency:.3f} s")
    logs = cluster.logs()
    assert len(pebble.orders) == 1, logs
    assert [s for _, s in pebble.issued] == [serial], logs
    assert pebble.accounts == 1, logs
    assert set(serials.current.values()) == {serial}
    assert latency <= SERVE_WITHIN, latency
    port = "tls" if challenge == "tls-alpn-01" else "http"
    servers = {srv for (fe, srv), _ in cluster.balancer.routes().items() if fe == port}
    assert len(servers & {"r1", "r2", "r3"}) >= 2, cluster.balancer.log_text()
    assert codes == {1: 0, 2: 0, 3: 0}, logs


RENEW_VALIDITY = 18  # seconds: autocert's rule renews at 2/3 of it (12-12.6 s)


async def test_renewal_places_one_order_and_every_replica_swaps_without_a_failed_handshake(
    storage: SharedStorage, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    """With short-lived certificates the renewal is one order at the CA, every replica moves to
    the new serial within 10 s of its issuance, and new handshakes plus a kept-alive connection
    through the balancer never fail across the swap."""
    cluster = await start_cluster(tmp_path, storage, validity=RENEW_VALIDITY, lock_lease="4s")
    pebble = PebbleWatch(cluster.pebble.log_path).start()
    serials = SerialWatch(cluster.replicas, cluster.tls_port, cluster.ctx).start()
    loop: HandshakeLoop | None = None
    try:
        first = await cold_start(cluster, pebble, serials)
        loop = await HandshakeLoop(cluster.tls_port, cluster.ctx).start()

        def renewed_everywhere() -> bool:
            return len(pebble.issued) >= 2 and serials.serving(pebble.issued[1][1])

        await wait_until(renewed_everywhere, RENEW_VALIDITY + 15, "the renewal", cluster)
        await asyncio.sleep(1.0)
        latency = issuance_to_last_replica(pebble, serials, 1)
    finally:
        if loop is not None:
            await loop.stop()
        await serials.stop()
        await pebble.stop()
        codes = cluster.stop()
    record_property("renewal_issuance_to_last_replica_s", round(latency, 3))
    print(f"\n[renewal {storage.url.split(':')[0]}] issuance -> last replica {latency:.3f} s")
    logs = cluster.logs()
    second = pebble.issued[1][1]
    assert len(pebble.orders) == 2, logs  # the first issuance and one renewal order
    assert [s for _, s in pebble.issued] == [first, second], logs
    assert latency <= SERVE_WITHIN, latency
    assert loop.failures == [], loop.failures
    assert loop.ok >= 50 and loop.kept_requests >= 50, (loop.ok, loop.kept_requests)
    assert {first, second} <= loop.serials
    assert codes == {1: 0, 2: 0, 3: 0}, logs


# Renewal at 30-31.5 s; the old certificate stays valid for ~14 s after it, room for the
# takeover: first sight of the lock (a 3-5 s poll), a full unchanged lease, the next poll, then
# a fresh order (with 30 s certificates, 9 s, a loaded full run once saw it expire first).
KILL_VALIDITY = 45
KILL_LEASE = 3.0


async def test_lock_holder_killed_mid_order_is_taken_over_after_the_lease(
    storage: SharedStorage, tmp_path: Path
) -> None:
    """The replica that placed the renewal order is SIGKILLed before finalisation (when the CA
    resolves the name to validate): no certificate is issued while its lease could be live, a
    survivor places a fresh order after the lease and both survivors serve its certificate, and
    throughout, every handshake through the balancer or to a survivor verifies."""
    cluster = await start_cluster(
        tmp_path, storage, validity=KILL_VALIDITY, lock_lease=f"{KILL_LEASE:g}s"
    )
    pebble = PebbleWatch(cluster.pebble.log_path).start()
    serials = SerialWatch(cluster.replicas, cluster.tls_port, cluster.ctx).start()
    loop: HandshakeLoop | None = None
    victim: list[Replica] = []
    killed_at: list[float] = []
    try:
        first = await cold_start(cluster, pebble, serials)
        loop = await HandshakeLoop(cluster.tls_port, cluster.ctx).start(kept_alive=False)

        async def kill_the_holder() -> None:
            """Runs before the DNS answers the CA's validation lookup: the order is placed, its
            challenge is up, it is not finalised."""
            if victim:
                return
            pebble.poll()
            order_id = pebble.orders[-1][1]
            for _ in range(40):  # the holder logs its order's URL (acme_order_created)
                holders = [r for r in cluster.replicas if order_id in r.log_text()]
                if holders:
                    break
                await asyncio.sleep(0.05)
            assert len(holders) == 1, (order_id, cluster.logs())
            victim.append(holders[0])
            holders[0].kill()
            killed_at.append(time.monotonic())

        cluster.dns.before_answer = kill_the_holder
        await wait_until(lambda: bool(killed_at), KILL_VALIDITY, "the renewal order", cluster)
        survivors = [r for r in cluster.replicas if r is not victim[0]]

        def survivors_renewed() -> bool:
            return len(pebble.issued) >= 2 and serials.serving(pebble.issued[1][1], survivors)

        await wait_until(survivors_renewed, KILL_VALIDITY, "the takeover's certificate", cluster)
        await asyncio.sleep(1.0)
    finally:
        if loop is not None:
            await loop.stop()
        await serials.stop()
        await pebble.stop()
        cluster.stop()
    logs = cluster.logs()
    # The first order, the victim's renewal order, the survivor's fresh order: two certificates.
    assert len(pebble.orders) == 3, logs
    assert len(pebble.issued) == 2 and pebble.issued[0][1] == first, logs
    killed_order_at, takeover_order_at = pebble.orders[1][0], pebble.orders[2][0]
    print(
        f"\n[kill {storage.url.split(':')[0]}] killed order -> takeover order "
        f"{takeover_order_at - killed_order_at:.3f} s (lease {KILL_LEASE:g} s), "
        f"failed handshakes {len(loop.failures)} of {loop.ok + len(loop.failures)}"
    )
    # No new order (so no certificate) before the victim's lease could have expired.
    assert takeover_order_at - killed_order_at >= KILL_LEASE - 0.25, (
        takeover_order_at - killed_order_at
    )
    assert pebble.issued[1][0] > takeover_order_at
    # Connections cut by the kill itself may fail; a certificate that does not verify may not.
    assert loop.ok >= 50, loop.ok
    late = [(t, e) for t, e in loop.failures if abs(t - killed_at[0]) > 1.0]
    assert late == [], loop.failures
    assert not [e for _, e in loop.failures if "CERTIFICATE_VERIFY_FAILED" in e], loop.failures
    for replica in survivors:  # each survivor served a valid certificate at every probe
        assert set(serials.first_seen[replica.index]) == {first, pebble.issued[1][1]}


OUTAGE = 30.0  # seconds without the S3 server
OUTAGE_VALIDITY = 60  # renewal due at 40-42 s: after the outage, before the expiry


def storage_report(body: str) -> dict[str, object] | None:
    """The ``acme_storage`` section of a /ready?verbose answer (None: absent or no answer)."""
    try:
        section = json.loads(body).get("acme_storage")
    except ValueError:
        return None
    return section if isinstance(section, dict) else None


async def test_storage_outage_keeps_serving_and_is_reported(
    seaweedfs: SeaweedFS, tmp_path: Path
) -> None:
    """SeaweedFS stopped for 30 s while the renewal draws near (so every replica reads the
    storage every few seconds): no handshake through the balancer fails, every replica reports
    the storage unreachable in /ready?verbose (and counts it in its metrics) during the outage,
    and afterwards every replica reports it reachable and the renewal is one order, served by
    all."""
    name = unique_bucket_name("acme")
    seaweedfs.create_bucket(name)
    storage = Bucket(seaweedfs, name, "oidc-acme")
    cluster = await start_cluster(tmp_path, storage, validity=OUTAGE_VALIDITY, lock_lease="4s")
    pebble = PebbleWatch(cluster.pebble.log_path).start()
    serials = SerialWatch(cluster.replicas, cluster.tls_port, cluster.ctx, interval=0.25).start()
    loop: HandshakeLoop | None = None
    reported: dict[int, dict[str, object]] = {}
    metrics_during: dict[int, str] = {}
    recovered: dict[int, dict[str, object]] = {}
    try:
        first = await cold_start(cluster, pebble, serials)
        loop = await HandshakeLoop(cluster.tls_port, cluster.ctx, interval=0.1).start()
        with stopped(seaweedfs):
            deadline = time.monotonic() + OUTAGE
            while time.monotonic() < deadline:
                for r in cluster.replicas:
                    if r.index not in reported:
                        report = storage_report((await r.http("/ready?verbose"))[1])
                        if report is not None and report.get("reachable") is False:
                            reported[r.index] = report
                            metrics_during[r.index] = (await r.http("/metrics"))[1]
                await asyncio.sleep(0.5)
        failures_during_outage = list(loop.failures)
        deadline = time.monotonic() + OUTAGE_VALIDITY
        while True:
            for r in cluster.replicas:
                report = storage_report((await r.http("/ready?verbose"))[1])
                if report is not None and report.get("reachable") is True:
                    recovered[r.index] = report
            renewed = len(pebble.issued) >= 2 and serials.serving(pebble.issued[1][1])
            if renewed and len(recovered) == 3:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"no recovery: {recovered}, {pebble.issued}\n{cluster.logs()}")
            await asyncio.sleep(0.5)
    finally:
        if loop is not None:
            await loop.stop()
        await serials.stop()
        await pebble.stop()
        codes = cluster.stop()
    logs = cluster.logs()
    assert failures_during_outage == [] and loop.failures == [], loop.failures
    assert loop.ok >= 100, loop.ok
    assert len(pebble.orders) == 2 and pebble.issued[0][1] == first, logs
    assert set(reported) == {1, 2, 3}, (reported, logs)
    for index, text in metrics_during.items():
        errors = [
            line
            for line in text.splitlines()
            if "storage_errors" in line and not line.startswith("#")
        ]
        assert errors and any(float(line.rsplit(" ", 1)[1]) > 0 for line in errors), (index, text)
    assert codes == {1: 0, 2: 0, 3: 0}, logs

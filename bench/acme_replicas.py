#!/usr/bin/env python3
"""Three ACME replicas sharing one storage behind HAProxy, over several renewals (issue 13).

The harness of tests/integration/test_acme_replicas.py (Debian's Pebble and HAProxy, three
``oidc-discovery-provider -config`` processes on 127.0.0.11-13, loopback only) run for longer:
Pebble issues ``--validity``-second certificates, so autocert's rule renews every ~2/3 of that;
the run lasts until ``--renewals`` renewals were served by every replica. Printed per issuance:
the orders Pebble received for it (1 is the goal), and the time from Pebble logging the
certificate to each replica serving it (read directly, SNI = the name, every 50 ms); overall,
the handshakes through the balancer and how many failed.

    python bench/acme_replicas.py [--renewals 5] [--validity 30] [--storage file|s3]
                                  [--challenge tls-alpn-01|http-01] [--lease 4s]

Needs scripts/install-pebble.sh and scripts/install-haproxy.sh (and, for s3, the venv's weed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the harness lives with the tests

from tests.acme_support.replicas import (  # noqa: E402
    SharedDirectory,
    SharedStorage,
    start_cluster,
    wait_live,
)
from tests.acme_support.watch import HandshakeLoop, PebbleWatch, SerialWatch  # noqa: E402


async def run(args: argparse.Namespace, tmp: Path, storage: SharedStorage) -> dict[str, object]:
    cluster = await start_cluster(
        tmp / "cluster",
        storage,
        challenges=(args.challenge,),
        validity=args.validity,
        lock_lease=args.lease,
    )
    pebble = PebbleWatch(cluster.pebble.log_path).start()
    serials = SerialWatch(cluster.replicas, cluster.tls_port, cluster.ctx, interval=0.05).start()
    loop: HandshakeLoop | None = None
    wanted = args.renewals + 1
    deadline = time.monotonic() + 60 + wanted * args.validity
    try:
        cluster.start_replicas()
        await wait_live(cluster.replicas)
        while True:
            done = len(pebble.issued) >= wanted and serials.serving(pebble.issued[wanted - 1][1])
            if done:
                break
            if loop is None and pebble.issued and serials.serving(pebble.issued[0][1]):
                loop = await HandshakeLoop(cluster.tls_port, cluster.ctx, interval=0.1).start()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pebble.issued)} issuances in time\n{cluster.logs()}")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
    finally:
        if loop is not None:
            await loop.stop()
        await serials.stop()
        await pebble.stop()
        cluster.stop()
    rows = []
    previous = float("-inf")
    for i, (t_issued, serial) in enumerate(pebble.issued[:wanted]):
        orders = [t for t, _ in pebble.orders if previous < t <= t_issued]
        per_replica = [serials.first_seen[r.index].get(serial) for r in cluster.replicas]
        lat = [round(t - t_issued, 3) if t is not None else None for t in per_replica]
        rows.append({"issuance": i, "orders": len(orders), "replica_latency_s": lat})
        previous = t_issued
    last = [max(x for x in r["replica_latency_s"] if x is not None) for r in rows]  # type: ignore[attr-defined]
    return {
        "storage": storage.url.split(":", 1)[0],
        "challenge": args.challenge,
        "validity_s": args.validity,
        "orders_total": len(pebble.orders),
        "certificates_total": len(pebble.issued),
        "accounts": pebble.accounts,
        "per_issuance": rows,
        "issuance_to_last_replica_s": {
            "median": round(statistics.median(last), 3),
            "max": round(max(last), 3),
        },
        "balancer_handshakes": loop.ok if loop else 0,
        "balancer_failures": len(loop.failures) if loop else 0,
        "first_failures": [e for _, e in loop.failures[:3]] if loop else [],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--renewals", type=int, default=5)
    parser.add_argument("--validity", type=int, default=30, help="certificate lifetime, seconds")
    parser.add_argument("--storage", choices=["file", "s3"], default="file")
    parser.add_argument("--challenge", choices=["tls-alpn-01", "http-01"], default="tls-alpn-01")
    parser.add_argument("--lease", default="4s", help="acme.lock_lease")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="acme-replicas-bench-") as tmpdir:
        tmp = Path(tmpdir)
        if args.storage == "file":
            shared = tmp / "shared"
            shared.mkdir(mode=0o700)
            result = await run(args, tmp, SharedDirectory(shared))
        else:
            from tests.storage_support.fixtures import Bucket
            from tests.storage_support.servers import SeaweedFS

            server = SeaweedFS(tmp / "seaweed")
            server.start()
            try:
                server.create_bucket("bench")
                result = await run(args, tmp, Bucket(server, "bench", "oidc-acme"))
            finally:
                server.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())

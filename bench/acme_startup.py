#!/usr/bin/env python3
"""ACME start-up and renewal figures against Debian's Pebble (PEBBLE_VA_NOSLEEP=1), on loopback.

1. manager start -> verified HTTPS: the provider is started in this process (``daemon.start``
   with an ``acme`` block and an empty cache); a relying-party client connects at once (its
   handshake waits for the certificate) and the time to its first verified 200 is taken.
   Target: under 0.5 s. Reference (acme.md §3.5): the ``acme`` library's own
   ``poll_and_finalize`` takes 1.0-2.1 s for the order alone, because it sleeps a fixed second.
2. process start -> verified HTTPS: ``oidc-discovery-provider -config`` as a subprocess, timed
   from ``Popen`` to the first verified 200 (connection attempts every 5 ms).
3. renewal under load: 12 s certificates, so a renewal happens at autocert's time while
   ``--clients`` clients each open a new verified TLS connection per request and one kept-alive
   connection keeps requesting; prints requests, errors and latency before / around the swap.

    python bench/acme_startup.py [--runs 5] [--clients 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the Pebble and DNS helpers live with the tests

from spire_oidc.daemon import start  # noqa: E402
from tests.acme_support.dns import LoopbackDNS  # noqa: E402
from tests.acme_support.fixtures import (  # noqa: E402
    NAME,
    KeepAliveClient,
    acme_config,
    client_context,
    fetch,
)
from tests.acme_support.pebble import Pebble  # noqa: E402


def _quiet() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))


def _stats(values: list[float]) -> str:
    values = sorted(values)
    return (
        f"min {values[0] * 1000:.0f} ms  median {statistics.median(values) * 1000:.0f} ms  "
        f"max {values[-1] * 1000:.0f} ms  (n={len(values)})"
    )


async def manager_to_https(pebble: Pebble, tmp: Path, runs: int) -> list[float]:
    ctx = client_context(await pebble.root_pem())
    out = []
    for i in range(runs):
        config = acme_config(pebble, tmp / f"run{i}")
        t0 = time.perf_counter()
        provider = await start(config)
        try:
            got = await fetch(pebble.tls_port, ctx, timeout=15.0)
            out.append(time.perf_counter() - t0)
            assert got.status == 200, got.status
        finally:
            await provider.stop()
    return out


async def process_to_https(pebble: Pebble, tmp: Path, runs: int) -> list[float]:
    ctx = client_context(await pebble.root_pem())
    exe = ROOT / ".venv" / "bin" / "oidc-discovery-provider"
    out = []
    for i in range(runs):
        work = tmp / f"proc{i}"
        work.mkdir(parents=True)
        bundle = work / "bundle.json"
        bundle.write_text(json.dumps({"keys": []}))
        conf = work / "provider.conf"
        conf.write_text(
            f'domains = ["{NAME}"]\nlog_level = "error"\nfile {{ path = "{bundle}" }}\n'
            f'acme {{\n  directory_url = "{pebble.directory_url}"\n  email = "ops@{NAME}"\n'
            f'  tos_accepted = true\n  cache_dir = "{work / "cache"}"\n'
            f'  addr = "127.0.0.1:{pebble.tls_port}"\n  ca_bundle_path = "{pebble.ca_file}"\n}}\n'
        )
        t0 = time.perf_counter()
        proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once
            [str(exe), "-config", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            deadline = t0 + 20
            while True:
                try:
                    got = await fetch(pebble.tls_port, ctx, timeout=15.0)
                    out.append(time.perf_counter() - t0)
                    assert got.status == 200, got.status
                    break
                except OSError:
                    if time.perf_counter() > deadline or proc.poll() is not None:
                        raise
                    await asyncio.sleep(0.005)
        finally:
            proc.terminate()
            proc.wait(10)
    return out


async def renewal_under_load(pebble: Pebble, tmp: Path, clients: int) -> dict[str, object]:
    ctx = client_context(await pebble.root_pem())
    provider = await start(replace(acme_config(pebble, tmp / "renewal")))
    assert provider.acme is not None
    manager = provider.acme.manager
    try:
        first = await fetch(pebble.tls_port, ctx, timeout=15.0)
        kept = KeepAliveClient(pebble.tls_port, ctx)
        await kept.connect()
        samples: list[tuple[float, float]] = []  # (time, latency)
        errors: list[str] = []
        serials = {first.cert.serial_number}
        swap_at: float | None = None
        loop = asyncio.get_running_loop()
        stop_at = loop.time() + 30

        def running() -> bool:
            done = swap_at is not None and loop.time() > swap_at + 2
            return loop.time() < stop_at and not done

        async def new_connections() -> None:
            while running():
                t = loop.time()
                try:
                    got = await fetch(pebble.tls_port, ctx, path="/keys")
                    serials.add(got.cert.serial_number)
                    if got.status != 200:
                        errors.append(f"status {got.status}")
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                samples.append((t, loop.time() - t))

        async def keep_alive() -> None:
            while running():
                t = loop.time()
                status = await kept.get()
                if status != 200:
                    errors.append(f"kept-alive status {status}")
                samples.append((t, loop.time() - t))
                await asyncio.sleep(0.01)

        async def watch() -> None:
            nonlocal swap_at
            while manager.installed < 2 and loop.time() < stop_at:  # noqa: ASYNC110 - a counter
                await asyncio.sleep(0.005)
            swap_at = loop.time()

        await asyncio.gather(*(new_connections() for _ in range(clients)), keep_alive(), watch())
        kept.close()
    finally:
        await provider.stop()
    assert swap_at is not None
    before = [lat for t, lat in samples if t < swap_at - 1]
    around = [lat for t, lat in samples if swap_at - 1 <= t <= swap_at + 1]
    return {
        "requests": len(samples),
        "errors": len(errors),
        "first_errors": errors[:3],
        "renewals": manager.installed - 1,
        "serials": len(serials),
        "p50_before_ms": round(statistics.median(before) * 1000, 2) if before else None,
        "p50_around_swap_ms": round(statistics.median(around) * 1000, 2) if around else None,
        "max_around_swap_ms": round(max(around) * 1000, 2) if around else None,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    _quiet()
    dns = await LoopbackDNS().start()
    with tempfile.TemporaryDirectory(prefix="acme-bench-") as tmpdir:
        tmp = Path(tmpdir)
        pebble = await Pebble(tmp / "pebble", dns_port=dns.port).start()
        short = await Pebble(tmp / "pebble-short", dns_port=dns.port, validity=12).start()
        try:
            manager = await manager_to_https(pebble, tmp / "m", args.runs)
            process = await process_to_https(pebble, tmp / "p", args.runs)
            load = await renewal_under_load(short, tmp / "r", args.clients)
        finally:
            pebble.stop()
            short.stop()
            dns.stop()
    print(f"manager start -> verified HTTPS: {_stats(manager)}  (target < 500 ms)")
    print(f"process start -> verified HTTPS: {_stats(process)}")
    print("renewal under load:", json.dumps(load))


if __name__ == "__main__":
    os.environ.setdefault("PEBBLE_VA_NOSLEEP", "1")
    asyncio.run(main())

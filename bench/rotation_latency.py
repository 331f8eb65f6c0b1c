#!/usr/bin/env python3
"""Rotation latency of the workload_api source: agent push -> ``KeySink.publish``.

A real ``grpc.aio`` fake SPIRE agent (tests/fakes/fake_workload_api.py) on a unix socket pushes a
new JWT bundle (a rotated kid) on the open ``FetchJWTBundles`` stream; the source publishes it
into a recording sink. Each rotation is timed from just before the push to the publish of the
new kid (both in this process, on one event loop: the figure includes the fake agent's own
serialisation and scheduling). Prints p50 / p99 / max over ``--rotations`` rotations.

Reference: SPIRE's Go provider polls the Workload API every ``poll_interval`` (10 s by default,
spire-behavior.md §4.1), so a rotation waits uniformly in [0, poll_interval]: p50 = interval/2,
p99 = 0.99 * interval, plus its fetch. The ratio printed is that analytic p50/p99 over ours.

    python bench/rotation_latency.py [--rotations 200] [--keys 3] [--spire-poll 10]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # keep gRPC C-core's info lines off stderr

import structlog

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fakes live with the tests (tests.fakes)

from spire_oidc.config.model import WorkloadAPIConfig  # noqa: E402
from spire_oidc.core.clock import SystemClock  # noqa: E402
from spire_oidc.core.keys import KeySet  # noqa: E402
from spire_oidc.sources.workload_api import WorkloadAPISource  # noqa: E402
from tests.fakes.fake_workload_api import FakeWorkloadAPI  # noqa: E402
from tests.fakes.keys import ec_key, jwk, jwks  # noqa: E402
from tests.fakes.sink import RecordingSink  # noqa: E402

TD = "spiffe://example.org"


class _WakingSink(RecordingSink):
    """A recording sink that also wakes the benchmark when a publish arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    def publish(self, keys: KeySet) -> bool:
        changed = super().publish(keys)
        self.arrived.set()
        return changed


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def measure(rotations: int, n_keys: int) -> list[float]:
    pool = [ec_key() for _ in range(n_keys + 1)]
    with tempfile.TemporaryDirectory(prefix="rotbench-", dir="/tmp") as tmp:
        agent = FakeWorkloadAPI(Path(tmp) / "agent.sock")
        await agent.start()
        agent.set_jwks(TD, jwks(*(jwk(f"kid-0-{i}", pool[i]) for i in range(n_keys))))
        sink = _WakingSink()
        config = WorkloadAPIConfig(
            socket_path=agent.socket_path, trust_domain=TD, poll_interval=10.0
        )
        task = asyncio.create_task(WorkloadAPISource(config, clock=SystemClock()).run(sink))
        try:
            await asyncio.wait_for(_until(sink, lambda: sink.streaming), timeout=10)
            latencies: list[float] = []
            for r in range(1, rotations + 1):
                # Rotate: drop the oldest key, add a new kid (what a SPIRE key rotation looks like).
                entries = [jwk(f"kid-{r}-{i}", pool[(r + i) % len(pool)]) for i in range(n_keys)]
                wanted = entries[-1]["kid"]
                body = jwks(*entries)
                sink.arrived.clear()
                started = time.perf_counter()
                agent.set_jwks(TD, body)
                await asyncio.wait_for(
                    _until(sink, lambda w=wanted: wanted_published(sink, w)), timeout=10
                )
                latencies.append(sink.events[-1].at - started)
                await asyncio.sleep(0.002)
            if agent.calls != 1:
                raise SystemExit(f"expected one long-lived stream, saw {agent.calls} calls")
            return latencies
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await agent.stop()


def wanted_published(sink: RecordingSink, kid: str) -> bool:
    current = sink.current
    return current is not None and kid in current.kids


async def _until(sink: _WakingSink, predicate: object) -> None:
    assert callable(predicate)
    while not predicate():
        await sink.arrived.wait()
        sink.arrived.clear()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rotations", type=int, default=200)
    parser.add_argument("--keys", type=int, default=3, help="keys per bundle")
    parser.add_argument("--spire-poll", type=float, default=10.0, help="SPIRE's poll_interval (s)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    latencies = asyncio.run(measure(args.rotations, args.keys))
    ms = [x * 1000 for x in latencies]
    p50, p99 = _percentile(ms, 0.50), _percentile(ms, 0.99)
    spire_p50, spire_p99 = args.spire_poll * 500, args.spire_poll * 990
    print(f"rotations: {len(ms)}  keys per bundle: {args.keys}  (one stream, pushed updates)")
    print(f"push -> publish latency: p50 {p50:.2f} ms  p99 {p99:.2f} ms  max {max(ms):.2f} ms")
    print(f"                         mean {statistics.fmean(ms):.2f} ms  min {min(ms):.2f} ms")
    print(
        f"SPIRE polling every {args.spire_poll:g} s (analytic): p50 {spire_p50:.0f} ms  "
        f"p99 {spire_p99:.0f} ms  -> ratio p50 {spire_p50 / p50:,.0f}x  p99 {spire_p99 / p99:,.0f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

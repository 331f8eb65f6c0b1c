#!/usr/bin/env python3
"""Soak: the provider under steady load for a long time, with key rotations and upstream restarts.

Promise 6 of issue 8. Three processes:

* the provider: the installed console script (``oidc-discovery-provider -config ...``) with the
  ``workload_api`` source, serving on loopback;
* a fake SPIRE agent (the test suite's real gRPC fake, tests/fakes) run by this driver: it
  rotates the JWT signing keys every ``--rotate-every`` seconds (the new key is added, the oldest
  dropped, as SPIRE does) and is killed and restarted every ``--restart-every`` seconds;
* a load generator (this script with ``--role load``): ``--concurrency`` clients at a steady
  ``--rate`` of requests per second on ``/keys`` (keep-alive, new connections, and conditional
  requests that take the full aiohttp handler), checking every answer: a 200 with a non-empty key
  set of this run's kids, or a 304 for the ETag it sent.

The driver samples the provider's RSS and open file descriptors every ``--sample-every`` seconds
and measures each rotation's latency (push by the agent -> the new kid served by ``/keys``, seen
by a dedicated client polling every millisecond) and how long the provider takes to stream again
after each restart. At the end the provider gets SIGTERM and must exit 0.

It passes when RSS stays within 10 % after the warm-up (first minute, or the first tenth of a
shorter run), open file descriptors do not grow, and no request failed. Not part of the test
suite; the result of a 10-minute run is recorded in docs/operations.md.

    .venv/bin/python bench/soak.py [--minutes 10] [--rotate-every 3] [--restart-every 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fakes live with the tests (tests.fakes)

TD = "spiffe://example.org"
KID_PREFIX = "soak-"
EXE = shutil.which("oidc-discovery-provider", path=str(Path(sys.executable).parent)) or ""


# -- the load generator (its own process) ---------------------------------------------------------
@dataclass
class LoadCounters:
    requests: int = 0
    ok_200: int = 0
    not_modified: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)


async def run_load(port: int, concurrency: int, rate: float, seconds: float, out: Path) -> None:
    import aiohttp

    url = f"http://127.0.0.1:{port}/keys"
    counters = LoadCounters()
    deadline = time.monotonic() + seconds
    interval = concurrency / rate  # each worker's period, so that all together make ``rate``

    def fail(message: str) -> None:
        counters.errors += 1
        if len(counters.error_samples) < 50:
            counters.error_samples.append(f"{time.strftime('%H:%M:%S')} {message}")

    def check_jwks(body: bytes) -> None:
        try:
            kids = [k["kid"] for k in json.loads(body)["keys"]]
        except (ValueError, KeyError, TypeError) as exc:
            fail(f"not a JWKS: {exc!r} {body[:80]!r}")
            return
        if not kids or not all(k.startswith(KID_PREFIX) for k in kids):
            fail(f"unexpected key set {kids}")

    async def worker(kind: str, session: aiohttp.ClientSession) -> None:
        etag = ""
        next_at = time.monotonic()
        while time.monotonic() < deadline:
            headers = {"If-None-Match": etag} if kind == "conditional" and etag else {}
            try:
                async with session.get(url, headers=headers) as resp:
                    body = await resp.read()
                    status = resp.status
                    etag = resp.headers.get("ETag", etag)
            except (aiohttp.ClientError, TimeoutError) as exc:
                fail(f"{kind}: {exc!r}")
                status, body = 0, b""
            counters.requests += 1
            counters.by_kind[kind] = counters.by_kind.get(kind, 0) + 1
            if status == 200:
                counters.ok_200 += 1
                check_jwks(body)
            elif status == 304 and headers:
                counters.not_modified += 1
            elif status:
                fail(f"{kind}: status {status} {body[:80]!r}")
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def report() -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            _write_json(out, asdict(counters))

    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency), timeout=timeout
        ) as keep_alive,
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency, force_close=True), timeout=timeout
        ) as fresh,
    ):
        kinds = ["keep-alive", "new-connection", "conditional", "keep-alive"]
        tasks = [
            asyncio.create_task(
                worker(
                    kinds[i % len(kinds)], fresh if kinds[i % 4] == "new-connection" else keep_alive
                )
            )
            for i in range(concurrency)
        ]
        reporter = asyncio.create_task(report())
        await asyncio.gather(*tasks)
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
    _write_json(out, asdict(counters))


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


# -- the driver -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_status(pid: int) -> dict[str, int]:
    """RSS (KiB), open file descriptors and threads of ``pid``."""
    out = {"rss_kib": 0, "fds": 0, "threads": 0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_kib"] = int(line.split()[1])
            elif line.startswith("Threads:"):
                out["threads"] = int(line.split()[1])
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


class KeysProbe:
    """A keep-alive client of /keys that answers: which kids are served right now."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def kids(self) -> list[str]:
        for _attempt in range(2):
            try:
                if self._writer is None:
                    self._reader, self._writer = await asyncio.open_connection(
                        "127.0.0.1", self.port
                    )
                assert self._reader is not None
                self._writer.write(b"GET /keys HTTP/1.1\r\nHost: localhost\r\n\r\n")
                head = await asyncio.wait_for(self._reader.readuntil(b"\r\n\r\n"), 5)
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                body = await asyncio.wait_for(self._reader.readexactly(length), 5)
                if not head.startswith(b"HTTP/1.1 200 "):
                    return []
                return [k["kid"] for k in json.loads(body)["keys"]]
            except (OSError, asyncio.IncompleteReadError, TimeoutError, IndexError):
                self.close()
        return []

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


@dataclass
class Results:
    minutes: float
    samples: list[dict[str, float]] = field(default_factory=list)
    rotations: int = 0
    rotation_latencies_ms: list[float] = field(default_factory=list)
    restarts: int = 0
    reconnect_seconds: list[float] = field(default_factory=list)
    load: dict[str, object] = field(default_factory=dict)
    exit_code: int | None = None
    provider_warnings: int = 0
    provider_errors: int = 0
    provider_problem_events: dict[str, int] = field(default_factory=dict)


async def drive(args: argparse.Namespace, work: Path) -> Results:
    from tests.fakes.fake_workload_api import FakeWorkloadAPI
    from tests.fakes.keys import ec_key, jwk, jwks

    seconds = args.minutes * 60
    results = Results(minutes=args.minutes)
    agent = FakeWorkloadAPI(work / "agent.sock")
    await agent.start()
    generation = 0
    ring = [(f"{KID_PREFIX}0", ec_key())]

    def rotate() -> str:
        nonlocal generation, ring
        generation += 1
        ring = [*ring[-1:], (f"{KID_PREFIX}{generation}", ec_key())]
        agent.set_jwks(TD, jwks(*(jwk(kid, key) for kid, key in ring)))
        return ring[-1][0]

    agent.set_jwks(TD, jwks(*(jwk(kid, key) for kid, key in ring)))
    port = free_port()
    log_path = work / "provider.log"
    conf = work / "provider.conf"
    conf.write_text(
        f'domains = ["localhost"]\ninsecure_addr = "127.0.0.1:{port}"\nlog_format = "json"\n'
        f'log_path = "{log_path}"\n'
        f'workload_api {{\n  socket_path = "{agent.socket_path}"\n  trust_domain = "example.org"\n'
        f'  poll_interval = "{args.poll_interval}s"\n}}\n'
    )
    provider = start_provider(conf, work / "provider.out")
    probe = KeysProbe(port)
    load_proc: asyncio.subprocess.Process | None = None
    try:
        started = time.monotonic()
        while not await probe.kids():
            if provider.poll() is not None or time.monotonic() - started > 30:
                raise SystemExit(f"the provider did not start: see {work / 'provider.out'}")
            await asyncio.sleep(0.05)
        load_out = work / "load.json"
        load_proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--role",
            "load",
            "--port",
            str(port),
            "--concurrency",
            str(args.concurrency),
            "--rate",
            str(args.rate),
            "--seconds",
            str(seconds),
            "--load-out",
            str(load_out),
            stdin=asyncio.subprocess.DEVNULL,
        )
        t0 = time.monotonic()
        next_rotation = t0 + args.rotate_every
        next_restart = t0 + args.restart_every
        next_sample = t0
        print(f"soak: {args.minutes:g} min, provider pid {provider.pid}, port {port}, work {work}")
        print("  t(s)   RSS(MiB)  fds  threads  requests  errors")
        while True:
            now = time.monotonic()
            if now >= next_sample:
                st = proc_status(provider.pid)
                counters = _read_json(load_out)
                sample = {"t": round(now - t0, 1), **st, "requests": counters.get("requests", 0)}
                sample["errors"] = counters.get("errors", 0)
                results.samples.append(sample)
                print(
                    f"  {sample['t']:6.0f}  {st['rss_kib'] / 1024:8.1f}  {st['fds']:3d}  "
                    f"{st['threads']:7d}  {sample['requests']:8d}  {sample['errors']:6d}",
                    flush=True,
                )
                next_sample += args.sample_every
            if now - t0 >= seconds:
                break
            if now >= next_restart:
                await agent.stop()  # killed: every stream cut, the socket gone
                await asyncio.sleep(args.downtime)
                await agent.start()
                restarted = time.monotonic()
                await agent.wait_for_streams(1, within=60)
                results.reconnect_seconds.append(time.monotonic() - restarted)
                results.restarts += 1
                next_restart += args.restart_every
            elif now >= next_rotation:
                await agent.wait_for_streams(1, within=60)
                pushed = time.perf_counter()
                kid = rotate()
                while kid not in await probe.kids():
                    await asyncio.sleep(0.001)
                    if time.perf_counter() - pushed > 60:
                        raise SystemExit(f"rotation to {kid} was not served within 60 s")
                results.rotation_latencies_ms.append((time.perf_counter() - pushed) * 1000)
                results.rotations += 1
                next_rotation += args.rotate_every
            await asyncio.sleep(0.05)
        await asyncio.wait_for(load_proc.wait(), 60)
        results.load = _read_json(load_out)
    finally:
        probe.close()
        if load_proc is not None and load_proc.returncode is None:
            load_proc.terminate()
            await load_proc.wait()
        if provider.poll() is None:
            provider.send_signal(signal.SIGTERM)
            try:
                results.exit_code = await asyncio.to_thread(provider.wait, 30)
            except subprocess.TimeoutExpired:
                provider.kill()
                provider.wait(5)
        else:
            results.exit_code = provider.returncode
        await agent.stop()
    for line in log_path.read_text().splitlines() if log_path.exists() else []:
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            level = record.get("level")
            results.provider_warnings += level == "warning"
            results.provider_errors += level in ("error", "critical")
            if level in ("warning", "error", "critical"):
                event = f"{level}:{record.get('event')}"
                counts = results.provider_problem_events
                counts[event] = counts.get(event, 0) + 1
    return results


def start_provider(conf: Path, output: Path) -> subprocess.Popen[bytes]:
    with output.open("wb") as out:
        return subprocess.Popen(
            [EXE, "-config", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def summarize(results: Results, warmup: float) -> tuple[dict[str, object], bool]:
    steady = [s for s in results.samples if s["t"] >= warmup] or results.samples
    rss = [s["rss_kib"] / 1024 for s in steady]
    fds = [s["fds"] for s in steady]
    lat = sorted(results.rotation_latencies_ms)
    load = results.load
    summary: dict[str, object] = {
        "duration_minutes": results.minutes,
        "requests": load.get("requests", 0),
        "errors": load.get("errors", 0),
        "requests_by_kind": load.get("by_kind", {}),
        "error_samples": load.get("error_samples", []),
        "rss_mib_after_warmup": {
            "first": round(rss[0], 1),
            "last": round(rss[-1], 1),
            "min": round(min(rss), 1),
            "max": round(max(rss), 1),
            "spread_percent": round((max(rss) - min(rss)) / min(rss) * 100, 1),
        },
        "fds": {"first": fds[0], "last": fds[-1], "max": max(fds)},
        "rotations": results.rotations,
        "rotation_latency_ms": {
            "p50": round(statistics.median(lat), 2) if lat else None,
            "p99": round(lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))], 2) if lat else None,
            "max": round(lat[-1], 2) if lat else None,
        },
        "upstream_restarts": results.restarts,
        "reconnect_after_restart_s_max": (
            round(max(results.reconnect_seconds), 2) if results.reconnect_seconds else None
        ),
        "provider_exit_code": results.exit_code,
        "provider_log_warnings": results.provider_warnings,
        "provider_log_errors": results.provider_errors,
        "provider_log_problems": results.provider_problem_events,
    }
    rss_summary = summary["rss_mib_after_warmup"]
    assert isinstance(rss_summary, dict)
    passed = (
        rss_summary["spread_percent"] <= 10.0
        and fds[-1] <= fds[0] + 2
        and load.get("errors", 1) == 0
        and results.rotations > 0
        and results.exit_code == 0
    )
    return summary, passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["driver", "load"], default="driver")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rotate-every", type=float, default=3.0, help="seconds")
    parser.add_argument("--restart-every", type=float, default=30.0, help="seconds")
    parser.add_argument("--downtime", type=float, default=0.5, help="agent down per restart (s)")
    parser.add_argument("--poll-interval", type=float, default=2.0, help="reconnect backoff cap")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=1000.0, help="requests per second")
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--load-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.role == "load":
        asyncio.run(run_load(args.port, args.concurrency, args.rate, args.seconds, args.load_out))
        return 0
    if not EXE:
        raise SystemExit("oidc-discovery-provider is not installed next to this interpreter")
    work = Path(tempfile.mkdtemp(prefix="soak-", dir="/tmp"))  # short: unix socket path limit
    results = asyncio.run(drive(args, work))
    warmup = min(60.0, args.minutes * 6)  # the first minute, or the first tenth of a short run
    summary, passed = summarize(results, warmup)
    print(json.dumps(summary, indent=2))
    print("soak:", "PASS" if passed else "FAIL")
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.out / f"soak-{stamp}.json").write_text(
        json.dumps({"summary": summary, "passed": passed, **asdict(results)}, indent=2)
    )
    shutil.rmtree(work, ignore_errors=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

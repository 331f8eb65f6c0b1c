#!/usr/bin/env python3
"""A fake SPIRE agent (Workload API) and a fake SPIRE server (Server API) for bench/run.py.

Both are the test suite's real gRPC fakes (tests/fakes) on unix sockets in DIR, serving the same
three keys; the process exits by itself after ``--lifetime`` seconds (or on SIGTERM).

    .venv/bin/python bench/fake_upstreams.py DIR [--lifetime 120]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fakes live with the tests (tests.fakes)

from tests.fakes.fake_server_api import FakeServerAPI, authority  # noqa: E402
from tests.fakes.fake_workload_api import FakeWorkloadAPI  # noqa: E402
from tests.fakes.keys import ec_key, jwk, jwks, pkix, rsa_key  # noqa: E402

TD = "spiffe://example.org"


async def serve(directory: Path, lifetime: float) -> None:
    keys = [("bench-rsa-1", rsa_key()), ("bench-rsa-2", rsa_key()), ("bench-ec-1", ec_key())]
    agent = FakeWorkloadAPI(directory / "agent.sock")
    server = FakeServerAPI(directory / "server.sock")
    await agent.start()
    await server.start()
    agent.set_jwks(TD, jwks(*(jwk(kid, key) for kid, key in keys)))
    server.set_bundle([authority(kid, pkix(key)) for kid, key in keys])
    (directory / "upstreams.ready").write_text("ok")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), lifetime)
    await agent.stop()
    await server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--lifetime", type=float, default=120.0)
    args = parser.parse_args()
    asyncio.run(serve(args.directory, args.lifetime))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A real Prometheus (Debian's) scrapes a real provider on loopback with the shipped scrape config."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
import yaml

from spire_oidc.config.model import Config, HealthChecksConfig
from spire_oidc.daemon import Provider
from tests.integration.prometheus_support import RULES, SCRAPE_CONFIG, binary
from tests.integration.support import file_config, get, raw_http, tcp_target, wait_for
from tests.keyfactory import bundle_bytes, ec_key, public_jwk

pytestmark = pytest.mark.integration

Start = Callable[[Config], Awaitable[Provider]]
BUDGET = 30.0  # seconds for the whole test, Prometheus' start-up included


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def scrape_config(target: str, workdir: Path) -> Path:
    """The shipped prometheus.yml with the target filled in, a 1 s interval and the shipped rules."""
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(RULES)]
    (job,) = config["scrape_configs"]
    (static,) = job["static_configs"]
    static["targets"] = [target]
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


class Prometheus:
    """Debian's prometheus on a loopback port, storing into a temporary directory."""

    def __init__(self, session: aiohttp.ClientSession, port: int) -> None:
        self.session = session
        self.base = f"http://127.0.0.1:{port}"

    async def query(self, promql: str) -> list[dict[str, object]]:
        async with self.session.get(f"{self.base}/api/v1/query", params={"query": promql}) as r:
            body = await r.json()
        assert body["status"] == "success", body
        result: list[dict[str, object]] = body["data"]["result"]
        return result

    async def value(self, promql: str) -> float | None:
        """The single sample's value of an instant query, or None while it has none."""
        result = await self.query(promql)
        if not result:
            return None
        assert len(result) == 1, result
        sample = result[0]["value"]
        assert isinstance(sample, list)
        return float(sample[1])

    async def until(self, promql: str, want: Callable[[float], bool], deadline: float) -> float:
        """Poll an instant query until its value satisfies ``want``; fail at ``deadline``."""
        last = None
        while time.monotonic() < deadline:
            last = await self.value(promql)
            if last is not None and want(last):
                return last
            await asyncio.sleep(0.2)
        raise AssertionError(f"{promql}: last value {last} before the deadline")


@contextlib.asynccontextmanager
async def prometheus(config: Path, workdir: Path, deadline: float) -> AsyncIterator[Prometheus]:
    port = free_port()
    log = (workdir / "prometheus.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        binary("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
        stdout=log,
        stderr=log,
    )
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while True:
                if proc.returncode is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        "prometheus did not become ready: "
                        + (workdir / "prometheus.log").read_text()[-2000:]
                    )
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{port}/-/ready") as r:
                        if r.status == 200:
                            break
                await asyncio.sleep(0.1)
            yield Prometheus(session, port)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()


async def test_real_prometheus_scrapes_keys_source_and_requests(
    run_provider: Start, tmp_path: Path
) -> None:
    """Prometheus scrapes key, source and request metrics and loads the rules; removing the bundle file turns source_connected to 0 and counts upstream errors."""
    deadline = time.monotonic() + BUDGET
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(bundle_bytes([public_jwk("k1", ec_key()), public_jwk("k2", ec_key())]))
    checks = HealthChecksConfig(bind_port=0, bind_host="127.0.0.1", metrics=True)
    p = await run_provider(file_config(bundle, health_checks=checks))
    await wait_for(lambda: p.store.current is not None, what="keys")
    for _ in range(3):
        assert (await raw_http(tcp_target(p), get("/keys"))).status == 200
    config = scrape_config(p.health_addresses[0], tmp_path)

    async with prometheus(config, tmp_path, deadline) as prom:
        job = '{job="spire-oidc"}'
        assert await prom.until(f"up{job}", lambda v: v == 1, deadline) == 1
        assert await prom.value(f"spire_oidc_keys_served{job}") == 2
        assert await prom.value(f"spire_oidc_keys_loaded{job}") == 1
        kids = await prom.query(f"spire_oidc_key_first_served_timestamp_seconds{job}")
        assert sorted(str(s["metric"]["kid"]) for s in kids) == ["k1", "k2"]  # type: ignore[index]
        assert await prom.value('spire_oidc_source_connected{job="spire-oidc",source="file"}') == 1
        assert await prom.value(f"spire_oidc_source_healthy{job}") == 1
        keys = 'spire_oidc_http_requests_total{job="spire-oidc",route="keys",code="200"}'
        assert await prom.value(keys) == 3
        routes = await prom.query(f"spire_oidc_http_request_duration_seconds_count{job}")
        assert sorted(str(s["metric"]["route"]) for s in routes) == ["discovery", "keys", "other"]  # type: ignore[index]
        count = 'spire_oidc_http_request_duration_seconds_count{job="spire-oidc",route="keys"}'
        assert await prom.value(count) == 3
        async with prom.session.get(f"{prom.base}/api/v1/rules") as r:
            groups = (await r.json())["data"]["groups"]
        assert {rule["name"] for g in groups for rule in g["rules"]} >= {
            "SpireOIDCSourceStale",
            "SpireOIDCKeysRevoked",
        }

        bundle.unlink()  # break the source: the file source's next polls fail
        connected = 'spire_oidc_source_connected{job="spire-oidc",source="file"}'
        assert await prom.until(connected, lambda v: v == 0, deadline) == 0
        errors = 'spire_oidc_upstream_errors_total{job="spire-oidc",source="file"}'
        assert await prom.until(errors, lambda v: v > 0, deadline) > 0
        assert await prom.value(f"spire_oidc_keys_served{job}") == 2  # last good keys stay
    assert time.monotonic() < deadline

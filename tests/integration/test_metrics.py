"""Prometheus metrics on the health listener, scraped over loopback like Prometheus would."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest
import trustme
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from spire_oidc.config.model import Config, HealthChecksConfig, ServingCertFileConfig
from spire_oidc.daemon import Provider
from tests.integration.support import file_config, get, raw_http, tcp_target, wait_for
from tests.keyfactory import bundle_bytes, ec_key, public_jwk
from tests.paths import REPO

pytestmark = pytest.mark.integration

Start = Callable[[Config], Awaitable[Provider]]


def metrics_checks(**overrides: object) -> HealthChecksConfig:
    """health_checks with metrics on, bound to loopback on an ephemeral port."""
    values: dict[str, object] = {"bind_port": 0, "metrics": True, "bind_host": "127.0.0.1"}
    values.update(overrides)
    return HealthChecksConfig(**values)  # type: ignore[arg-type]


def health_target(provider: Provider) -> tuple[str, int]:
    host, _, port = provider.health_addresses[0].rpartition(":")
    return host.strip("[]"), int(port)


async def scrape(provider: Provider) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics and parse it with prometheus_client's own parser: {(name, labels): value}."""
    r = await raw_http(health_target(provider), get("/metrics"))
    assert r.status == 200, r.body
    assert (r.header("Content-Type") or "").startswith("text/plain; version=0.0.4")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(r.body.decode()):
        for s in family.samples:
            assert isinstance(s, Sample)
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "bundle.json"
    path.write_bytes(bundle_bytes([public_jwk("k1", ec_key()), public_jwk("k2", ec_key())]))
    return path


async def test_scrape_counts_requests_keys_and_source(run_provider: Start, bundle: Path) -> None:
    """Requests by route and status, the latency histogram, keys served and source state are scraped."""
    p = await run_provider(file_config(bundle, health_checks=metrics_checks()))
    await wait_for(lambda: p.store.current is not None, what="keys")
    main = tcp_target(p)
    for _ in range(3):
        assert (await raw_http(main, get("/keys"))).status == 200
    assert (await raw_http(main, get("/.well-known/openid-configuration"))).status == 200
    assert (await raw_http(main, get("/keys?x=1"))).status == 200
    assert (await raw_http(main, get("/nope"))).status == 404
    assert (await raw_http(main, get("/keys", host="evil.test"))).status == 200
    assert (
        await raw_http(main, get("/.well-known/openid-configuration", host="evil.test"))
    ).status == 400

    m = await scrape(p)
    assert value(m, "spire_oidc_http_requests_total", route="keys", code="200") == 5
    from spire_oidc.http.adapter import FastServer

    server = p.main_runner.server
    assert isinstance(server, FastServer) and server.fast_requests >= 3  # counted on the fast path
    assert value(m, "spire_oidc_http_requests_total", route="discovery", code="200") == 1
    assert value(m, "spire_oidc_http_requests_total", route="discovery", code="400") == 1
    assert value(m, "spire_oidc_http_requests_total", route="other", code="404") == 1
    assert value(m, "spire_oidc_http_request_duration_seconds_count", route="keys") == 5
    assert value(m, "spire_oidc_http_request_duration_seconds_bucket", route="keys", le="+Inf") == 5
    assert 0 < value(m, "spire_oidc_http_request_duration_seconds_sum", route="keys") < 5
    assert value(m, "spire_oidc_keys_served") == 2
    assert value(m, "spire_oidc_keys_loaded") == 1
    assert value(m, "spire_oidc_keys_updates_total") == 1
    assert 0 <= value(m, "spire_oidc_keys_last_change_age_seconds") < 60
    assert 0 <= value(m, "spire_oidc_source_last_success_age_seconds", source="file") < 60
    assert value(m, "spire_oidc_source_connected", source="file") == 1
    assert value(m, "spire_oidc_source_healthy", source="file") == 1
    assert value(m, "spire_oidc_upstream_errors_total", source="file") == 0
    assert ("spire_oidc_build_info", (("version", __import__("spire_oidc").__version__),)) in m
    assert ("process_resident_memory_bytes", ()) in m
    # The scrape itself is not a main-listener request.
    assert ("spire_oidc_http_requests_total", (("code", "200"), ("route", "other"))) not in m


async def test_upstream_errors_and_disconnected_source(run_provider: Start, tmp_path: Path) -> None:
    """A missing bundle file counts upstream errors, and the source reads as not connected and not healthy."""
    p = await run_provider(file_config(tmp_path / "missing.json", health_checks=metrics_checks()))
    await wait_for(lambda: p.store.errors >= 2, what="two failed polls")
    m = await scrape(p)
    assert value(m, "spire_oidc_upstream_errors_total", source="file") >= 2
    assert value(m, "spire_oidc_source_connected", source="file") == 0
    assert value(m, "spire_oidc_source_healthy", source="file") == 0
    assert value(m, "spire_oidc_keys_served") == 0
    assert value(m, "spire_oidc_keys_loaded") == 0
    assert ("spire_oidc_source_last_success_age_seconds", (("source", "file"),)) not in m


async def test_event_api_from_another_thread(run_provider: Start, bundle: Path) -> None:
    """Certificate expiry per domain and ACME orders/failures reported from a worker thread are scraped."""
    p = await run_provider(file_config(bundle, health_checks=metrics_checks()))

    def acme_worker() -> None:
        p.metrics.acme_order("oidc.example.org")
        p.metrics.acme_order("oidc.example.org")
        p.metrics.acme_failure("oidc.example.org", "rate_limited")
        p.metrics.certificate_loaded("oidc.example.org", 1_900_000_000.0, source="acme")
        p.metrics.certificate_loaded("old.example.org", 1_800_000_000.0, source="acme")
        p.metrics.certificate_removed("old.example.org", source="acme")

    worker = threading.Thread(target=acme_worker)
    worker.start()
    await asyncio.to_thread(worker.join, 5)
    m = await scrape(p)
    assert value(m, "spire_oidc_acme_orders_total", domain="oidc.example.org") == 2
    assert (
        value(m, "spire_oidc_acme_failures_total", domain="oidc.example.org", reason="rate_limited")
        == 1
    )
    assert (
        value(
            m,
            "spire_oidc_certificate_expiry_timestamp_seconds",
            domain="oidc.example.org",
            source="acme",
        )
        == 1_900_000_000.0
    )
    assert not any(
        k[0].endswith("expiry_timestamp_seconds") and ("domain", "old.example.org") in k[1]
        for k in m
    )


async def test_serving_cert_expiry_follows_reload(
    run_provider: Start, bundle: Path, tmp_path: Path
) -> None:
    """serving_cert_file's expiry is exported per SAN, and a reload (SIGHUP path) updates it."""
    ca = trustme.CA()
    first = ca.issue_cert("oidc.example.org", "localhost", not_after=_at(2031))
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    first.cert_chain_pems[0].write_to_path(str(cert_path))
    first.private_key_pem.write_to_path(str(key_path))
    scf = ServingCertFileConfig(
        cert_file_path=str(cert_path),
        key_file_path=str(key_path),
        addr="127.0.0.1:0",
        host="127.0.0.1",
        port=0,
        file_sync_interval=3600,
    )
    config = file_config(
        bundle, insecure_addr="", serving_cert_file=scf, health_checks=metrics_checks()
    )
    p = await run_provider(config)
    m = await scrape(p)
    name = "spire_oidc_certificate_expiry_timestamp_seconds"
    expected = _at(2031).timestamp()
    assert value(m, name, domain="oidc.example.org", source="serving_cert_file") == expected
    assert value(m, name, domain="localhost", source="serving_cert_file") == expected

    second = ca.issue_cert("new.example.org", not_after=_at(2032))
    second.cert_chain_pems[0].write_to_path(str(cert_path))
    second.private_key_pem.write_to_path(str(key_path))
    p.reload()
    m = await scrape(p)
    assert (
        value(m, name, domain="new.example.org", source="serving_cert_file")
        == _at(2032).timestamp()
    )
    assert ("oidc.example.org", "serving_cert_file") not in {
        (dict(k[1]).get("domain"), dict(k[1]).get("source")) for k in m if k[0] == name
    }


async def test_log_requests_and_metrics_together(
    run_provider: Start, bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With log_requests on, the access log still gets its line and the metrics their count."""
    from spire_oidc.logs import setup_logging

    setup_logging(level="info")
    try:
        p = await run_provider(
            file_config(bundle, log_requests=True, health_checks=metrics_checks())
        )
        await wait_for(lambda: p.store.current is not None, what="keys")
        assert (await raw_http(tcp_target(p), get("/keys"))).status == 200
        m = await scrape(p)
        assert value(m, "spire_oidc_http_requests_total", route="keys", code="200") == 1
        out = capsys.readouterr().out
        assert "request" in out and "path=/keys" in out
    finally:
        setup_logging(level="info")


async def test_metrics_off_by_default(run_provider: Start, bundle: Path) -> None:
    """Without metrics = true, /metrics is a 404 on the health listener like any unknown path."""
    hc = replace(metrics_checks(), metrics=False)
    p = await run_provider(file_config(bundle, health_checks=hc))
    r = await raw_http(health_target(p), get("/metrics"))
    assert r.status == 404


async def test_bind_host_restricts_health_listener(run_provider: Start, bundle: Path) -> None:
    """health_checks.bind_host binds the health and metrics listener to that address only."""
    p = await run_provider(file_config(bundle, health_checks=metrics_checks(bind_host="127.0.0.1")))
    assert len(p.health_addresses) == 1 and p.health_addresses[0].startswith("127.0.0.1:")
    assert (await raw_http(health_target(p), get("/live"))).status == 200


async def test_metrics_endpoint_methods(run_provider: Start, bundle: Path) -> None:
    """/metrics answers GET and HEAD, refuses other methods with 405, and negotiates OpenMetrics."""
    p = await run_provider(file_config(bundle, health_checks=metrics_checks()))
    target = health_target(p)
    assert (await raw_http(target, get("/metrics", method="POST"))).status == 405
    head = await raw_http(target, get("/metrics", method="HEAD"))
    assert head.status == 200 and head.body == b""
    om = await raw_http(
        target, get("/metrics", extra="Accept: application/openmetrics-text; version=1.0.0")
    )
    assert (om.header("Content-Type") or "").startswith("application/openmetrics-text")
    assert om.body.rstrip().endswith(b"# EOF")


def test_prometheus_client_imported_only_when_enabled(tmp_path: Path, bundle: Path) -> None:
    """A provider without metrics never imports prometheus_client (start-up time and memory)."""
    script = f"""
import asyncio, sys
from spire_oidc.daemon import start
from tests.integration.support import file_config
from spire_oidc.config.model import HealthChecksConfig
from pathlib import Path

async def main(metrics):
    p = await start(file_config(Path({str(bundle)!r}), health_checks=HealthChecksConfig(bind_port=0, bind_host="127.0.0.1", metrics=metrics)))
    await p.stop()
    return "prometheus_client" in sys.modules

print(asyncio.run(main(False)), asyncio.run(main(True)))
"""
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.splitlines()[-1].split() == ["False", "True"], out.stderr


def _at(year: int):  # type: ignore[no-untyped-def]
    import datetime

    return datetime.datetime(year, 1, 1, tzinfo=datetime.UTC)


async def test_key_first_served_follows_the_served_set(run_provider: Start, tmp_path: Path) -> None:
    """Each served kid carries the time it was first served; a kid that leaves the set loses its series, a kept kid keeps its time."""
    path = tmp_path / "bundle.json"
    k1, k2, k3 = ec_key(), ec_key(), ec_key()
    path.write_bytes(bundle_bytes([public_jwk("k1", k1), public_jwk("k2", k2)]))
    p = await run_provider(file_config(path, health_checks=metrics_checks()))
    await wait_for(lambda: p.store.current is not None, what="keys")
    m = await scrape(p)
    name = "spire_oidc_key_first_served_timestamp_seconds"
    first_k2 = value(m, name, kid="k2")
    assert abs(first_k2 - time.time()) < 60 and value(m, name, kid="k1") == first_k2
    path.write_bytes(bundle_bytes([public_jwk("k2", k2), public_jwk("k3", k3)]))
    await wait_for(lambda: p.store.updates >= 2, what="the second key set")
    m = await scrape(p)
    assert (name, (("kid", "k1"),)) not in m
    assert value(m, name, kid="k2") == first_k2
    assert value(m, name, kid="k3") > first_k2
    assert sorted(labels for n, labels in m if n == name) == [(("kid", "k2"),), (("kid", "k3"),)]


async def test_health_listener_counts_its_own_requests(run_provider: Start, bundle: Path) -> None:
    """Requests to the health listener are counted by path and code, unknown paths as `other`."""
    p = await run_provider(file_config(bundle, health_checks=metrics_checks()))
    await wait_for(lambda: p.store.current is not None, what="keys")
    health = health_target(p)
    assert (await raw_http(health, get("/ready"))).status == 200
    assert (await raw_http(health, get("/live"))).status == 200
    assert (await raw_http(health, get("/live"))).status == 200
    assert (await raw_http(health, get("/scan/me"))).status == 404
    await scrape(p)  # counted once answered: visible in the next scrape
    m = await scrape(p)
    name = "spire_oidc_health_requests_total"
    assert value(m, name, path="/ready", code="200") == 1
    assert value(m, name, path="/live", code="200") == 2
    assert value(m, name, path="other", code="404") == 1
    assert value(m, name, path="/metrics", code="200") == 1

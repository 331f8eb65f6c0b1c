"""ACME failure handling and renewal against Pebble: CA down at start-up, external account
binding, corrupted cache files, and renewal under load with every response verified."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import structlog

from spire_oidc.acme.certs import decode_entry
from spire_oidc.config.model import HealthChecksConfig
from spire_oidc.core.clock import FakeClock
from spire_oidc.daemon import Provider, start
from tests.acme_support.fixtures import (
    NAME,
    KeepAliveClient,
    PebbleFactory,
    acme_config,
    client_context,
    dns,
    fetch,
    pebble_factory,
    wait_for_certificate,
)
from tests.acme_support.pebble import EAB_HMAC, EAB_KID, free_port
from tests.integration.support import Starter, get, raw_http, wait_for

pytestmark = pytest.mark.integration
__all__ = ["dns", "pebble_factory"]


async def test_ca_down_at_startup_keeps_retrying_and_serves_when_it_returns(
    pebble_factory: PebbleFactory, tmp_path: Path, logs: list[dict[str, Any]]
) -> None:
    """With the CA unreachable the name waits (health ?verbose says so) and is retried with
    backoff (on a fake clock: the delay slept is the transient schedule's first one and the one
    logged); once the CA answers, the certificate is issued and served."""
    pebble = await pebble_factory(start=False)
    health_port = free_port()
    config = acme_config(pebble, tmp_path)
    config = type(config)(
        **{
            **config.__dict__,
            "health_checks": HealthChecksConfig(bind_port=health_port, bind_host="127.0.0.1"),
        }
    )
    # A minute ahead of real time, so that the CA's fresh certificate is already valid on it.
    clock = FakeClock(start=time.time() + 60.0)
    provider: Provider = await start(config, clock=clock)
    try:
        assert provider.acme is not None
        manager = provider.acme.manager
        await wait_for(lambda: manager.failures >= 1, 5.0, "a failed attempt")
        ready = await raw_http(("127.0.0.1", health_port), get("/ready?verbose"))
        reasons = json.loads(ready.body)["reasons"]
        waiting = [r for r in reasons if r.startswith(f"acme {NAME}: waiting for a certificate")]
        assert waiting and "attempt 1 failed" in waiting[0], reasons
        await clock.wait_for_sleepers(1)
        assert 0.9 <= clock.slept[0] <= 1.0, clock.slept
        failed = [e for e in logs if e["event"] == "acme_certificate_failed"]
        assert failed[0]["next_attempt_in_seconds"] == round(clock.slept[0], 1)
        await pebble.start()
        # The retry, then the order's polls, run as fast as the CA answers.
        await clock.run_until(lambda: manager.installed >= 1, step=2.0, within=20.0)
        got = await wait_for_certificate(
            pebble.tls_port, client_context(await pebble.root_pem()), timeout=15.0
        )
        assert got.status == 200
        assert provider.state.waiting == {}
        assert manager.failures >= 1
    finally:
        await provider.stop()


async def test_external_account_binding_required_by_the_ca(
    pebble_factory: PebbleFactory, run_provider: Starter, tmp_path: Path
) -> None:
    """A CA that requires EAB issues once acme.eab carries the key id and HMAC key it issued."""
    pebble = await pebble_factory(eab_required=True)
    config = acme_config(pebble, tmp_path, eab_key_id=EAB_KID, eab_hmac_key=EAB_HMAC)
    await run_provider(config)
    got = await wait_for_certificate(pebble.tls_port, client_context(await pebble.root_pem()))
    assert got.status == 200


async def test_eab_refused_by_the_ca_is_logged_with_its_problem_document(
    pebble_factory: PebbleFactory, run_provider: Starter, tmp_path: Path
) -> None:
    """A wrong EAB key fails with the CA's problem document in the log; a missing one says so."""
    pebble = await pebble_factory(eab_required=True)
    wrong = acme_config(
        pebble, tmp_path, eab_key_id=EAB_KID, eab_hmac_key="d3Jvbmcta2V5LXdyb25nLWtleQ"
    )
    with structlog.testing.capture_logs() as logs:
        provider: Provider = await run_provider(wrong)
        assert provider.acme is not None
        manager = provider.acme.manager
        await wait_for(lambda: manager.failures >= 1, 5.0, "a refused registration")
        await provider.stop()
    failed = [e for e in logs if e["event"] == "acme_certificate_failed"]
    assert failed[0]["problem"]["type"].startswith("urn:ietf:params:acme:error:")
    assert failed[0]["transient"] is False and failed[0]["next_attempt_in_seconds"] >= 50
    missing = acme_config(pebble, tmp_path / "other")
    with structlog.testing.capture_logs() as logs:
        provider = await run_provider(missing)
        assert provider.acme is not None
        manager = provider.acme.manager
        await wait_for(lambda: manager.failures >= 1, 5.0, "a refused registration")
    failed = [e for e in logs if e["event"] == "acme_certificate_failed"]
    assert "requires external account binding" in failed[0]["error"]
    assert f"acme {NAME}" in provider.state.waiting


async def test_corrupted_cache_files_are_reported_and_replaced(
    pebble_factory: PebbleFactory, run_provider: Starter, tmp_path: Path
) -> None:
    """A garbage certificate entry is logged and replaced by a new order; a garbage account key
    is set aside as ``acme_account+key.invalid`` and a new one created; start-up goes on."""
    pebble = await pebble_factory()
    config = acme_config(pebble, tmp_path)
    assert config.acme is not None
    cache = Path(config.acme.cache_dir)
    cache.mkdir(mode=0o700)
    (cache / NAME).write_bytes(b"-----BEGIN EC PRIVATE KEY-----\ngarbage\n")
    (cache / "acme_account+key").write_bytes(b"not a key")
    with structlog.testing.capture_logs() as logs:
        await run_provider(config)
        got = await wait_for_certificate(pebble.tls_port, client_context(await pebble.root_pem()))
    events = {e["event"] for e in logs}
    assert {"acme_cache_entry_unusable", "acme_account_key_invalid"} <= events
    assert (cache / "acme_account+key.invalid").read_bytes() == b"not a key"
    entry = decode_entry(
        (cache / NAME).read_bytes(), NAME, now=got.cert.not_valid_before_utc.timestamp() + 1
    )
    assert entry.leaf == got.cert


async def test_renewal_under_load_swaps_without_a_failed_request(
    pebble_factory: PebbleFactory, run_provider: Starter, tmp_path: Path
) -> None:
    """With 12 s certificates the renewal happens at autocert's time while clients keep
    requesting: every new connection verifies, a kept-alive connection survives the swap."""
    pebble = await pebble_factory(validity=12)
    provider: Provider = await run_provider(acme_config(pebble, tmp_path))
    assert provider.acme is not None
    manager = provider.acme.manager
    ctx = client_context(await pebble.root_pem())
    first = await wait_for_certificate(pebble.tls_port, ctx)
    renew_at = manager.renew_at[NAME]
    lifetime = (
        first.cert.not_valid_after_utc.timestamp() - first.cert.not_valid_before_utc.timestamp()
    )
    assert (
        renew_at <= first.cert.not_valid_after_utc.timestamp() - lifetime / 3 + lifetime / 30 + 0.01
    )
    kept = KeepAliveClient(pebble.tls_port, ctx)
    await kept.connect()
    serials: set[int] = set()
    errors: list[str] = []
    statuses: list[int] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 25.0
    renewed_at: float | None = None

    async def new_connections() -> None:
        while loop.time() < deadline and (renewed_at is None or loop.time() < renewed_at + 1.0):
            try:
                got = await fetch(pebble.tls_port, ctx, path="/keys")
                serials.add(got.cert.serial_number)
                statuses.append(got.status)
            except Exception as exc:  # every failure is a test failure, recorded with its cause
                errors.append(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(0.01)

    async def keep_alive() -> None:
        while loop.time() < deadline and (renewed_at is None or loop.time() < renewed_at + 1.0):
            statuses.append(await kept.get())
            await asyncio.sleep(0.05)

    async def watch() -> None:
        nonlocal renewed_at
        await wait_for(lambda: manager.installed >= 2, 25.0, "the renewal")
        renewed_at = loop.time()

    await asyncio.gather(new_connections(), new_connections(), keep_alive(), watch())
    kept.close()
    assert errors == []
    assert manager.installed >= 2, "no renewal within the test's time"
    assert len(serials) >= 2 and first.cert.serial_number in serials
    assert set(statuses) == {200} and len(statuses) > 50
    assert kept.cert == first.cert  # the kept connection still used the old certificate
    assert manager.orders >= 2 and manager.failures == 0

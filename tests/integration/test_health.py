"""Health checks on their own listener (spire-behavior.md §6, DESIGN decision 11)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from spire_oidc.config.model import Config, HealthChecksConfig
from spire_oidc.core.clock import FakeClock
from spire_oidc.core.keys import KeySet
from spire_oidc.core.state import ProcessState
from spire_oidc.core.store import KeyStore
from spire_oidc.daemon import Provider
from spire_oidc.http.health import HealthHandler, freshness_threshold
from spire_oidc.http.public_errors import public_error
from tests.integration.support import file_config, get, raw_http, wait_for
from tests.keyfactory import bundle_bytes, ec_key, public_jwk

pytestmark = pytest.mark.integration

Start = Callable[[Config], Awaitable[Provider]]


@pytest.mark.parametrize(
    ("poll", "threshold"), [(1, 180), (10, 180), (35, 180), (36, 180), (60, 300), (3600, 18000)]
)
def test_threshold_is_max_3m_5p(poll: float, threshold: float) -> None:
    """ready's window is max(3 min, 5 x poll_interval) (SPIRE's documented rule, not its bug)."""
    assert freshness_threshold(poll) == threshold


def _handler(clock: FakeClock, store: KeyStore, state: ProcessState) -> HealthHandler:
    return HealthHandler(
        HealthChecksConfig(),
        store=store,
        poll_interval=0,
        source_kind="server_api",
        clock=clock,
        state=state,
    )


def test_ready_semantics_like_spire_table() -> None:
    """HealthCheckHandler table: ready needs keys polled within the threshold; live is process-only."""
    clock = FakeClock()
    store = KeyStore(set_key_use=False, clock=clock)
    state = ProcessState()
    h = _handler(clock, store, state)
    assert not h.is_ready()  # never polled
    store.publish(KeySet())
    assert h.is_ready()  # polled now
    clock.advance(5 * 60)
    assert not h.is_ready()  # polled 5 minutes ago
    store.publish(KeySet())
    assert h.is_ready()
    state.shutting_down = True
    assert not h.is_ready()


async def test_health_listener(run_provider: Start, tmp_path: Path) -> None:
    """ready is 500 until keys load, then 200; live is 200; empty bodies; verbose JSON; 404/405."""
    bundle = tmp_path / "b.json"
    hc = HealthChecksConfig(bind_port=0, ready_path="/ready", live_path="/live")
    p = await run_provider(file_config(bundle, health_checks=hc))
    host, _, port = p.health_addresses[0].rpartition(":")
    target = (host.strip("[]"), int(port))
    r = await raw_http(target, get("/ready"))
    assert (r.status, r.body) == (500, b"")
    r = await raw_http(target, get("/live"))
    assert (r.status, r.body) == (200, b"")
    assert r.header("Content-Length") == "0" and r.header("Content-Type") is None
    r = await raw_http(target, get("/ready?verbose"))
    facts = json.loads(r.body)
    assert facts["ready"] is False and "no key set has been loaded yet" in facts["reasons"]

    bundle.write_bytes(bundle_bytes([public_jwk("k", ec_key())]))
    await wait_for(lambda: p.store.current is not None, what="keys")
    r = await raw_http(target, get("/ready"))
    assert (r.status, r.body) == (200, b"")
    r = await raw_http(target, get("/ready", method="HEAD"))
    assert r.status == 200
    r = await raw_http(target, get("/ready?verbose=1"))
    facts = json.loads(r.body)
    assert facts["ready"] is True and facts["key_count"] == 1 and facts["source"] == "file"
    assert "kids" not in facts
    assert (await raw_http(target, get("/nope"))).status == 404
    r = await raw_http(target, get("/live", extra="Content-Length: 0\r\n", method="POST"))
    assert r.status == 405

    # The upstream breaks: live stays 200 while the last good keys are served.
    bundle.write_text("garbage")
    await wait_for(lambda: p.store.last_error is not None, what="error")
    assert (await raw_http(target, get("/live"))).status == 200
    p.state.shutting_down = True
    assert (await raw_http(target, get("/ready"))).status == 500


async def test_verbose_ready_names_no_path_or_kid(run_provider: Start, tmp_path: Path) -> None:
    """?verbose on the unauthenticated health listener shows a fixed error summary, never the
    bundle path, a kid or upstream text (issue 12.10); the full text stays in the store/log."""
    secret_dir = tmp_path / "secret-dir-name"
    secret_dir.mkdir()
    bundle = secret_dir / "bundle.json"
    bundle.write_bytes(bundle_bytes([public_jwk("kid-secret-1", ec_key())]))
    hc = HealthChecksConfig(bind_port=0, ready_path="/ready", live_path="/live")
    p = await run_provider(file_config(bundle, health_checks=hc))
    host, _, port = p.health_addresses[0].rpartition(":")
    target = (host.strip("[]"), int(port))
    await wait_for(lambda: p.store.current is not None, what="keys")
    cases = [
        (b'{"keys": [', "bundle file: not valid JSON"),
        (b"[]", "bundle file: not a JSON object"),
        (None, "bundle file: cannot open (No such file or directory)"),
    ]
    for content, summary in cases:
        if content is None:
            bundle.unlink()
        else:
            bundle.write_bytes(content)
        await wait_for(
            lambda s=summary: public_error(p.store.last_error) == s, what="the reported error"
        )
        assert str(bundle) in (p.store.last_error or "")  # the raw text does name the path
        body = (await raw_http(target, get("/ready?verbose"))).body.decode()
        facts = json.loads(body)
        assert facts["last_error"] == summary, facts
        assert "secret-dir-name" not in body and "kid-secret-1" not in body
        assert str(tmp_path) not in body

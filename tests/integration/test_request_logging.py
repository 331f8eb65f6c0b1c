"""Request logging keeps the fast path; the Infisical discovery-URL trap is named in a warning."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from spire_oidc.config.model import Config
from spire_oidc.daemon import Provider
from spire_oidc.http.adapter import FastServer
from tests.integration.support import file_config, get, raw_http, tcp_target, wait_for
from tests.keyfactory import bundle_bytes, ec_key, public_jwk

pytestmark = pytest.mark.integration

Start = Callable[[Config], Awaitable[Provider]]
TRAP = "/.well-known/openid_configuration"


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "bundle.json"
    path.write_bytes(bundle_bytes([public_jwk("kid-a", ec_key())]))
    return path


async def test_log_requests_keeps_the_fast_path(
    run_provider: Start, bundle: Path, logs: list[dict[str, Any]]
) -> None:
    """With log_requests both paths log one line per request with the same fields."""
    p = await run_provider(file_config(bundle, log_requests=True))
    await wait_for(lambda: p.store.current is not None, what="keys")
    server = p.main_runner.server
    assert isinstance(server, FastServer)
    target = tcp_target(p)
    agent = "User-Agent: relying-party/1.0\r\n"
    assert (await raw_http(target, get("/keys", extra=agent))).status == 200
    assert server.fast_requests == 1  # answered on the fast path, not handed over
    assert (await raw_http(target, get("/nope", extra=agent))).status == 404
    requests = [e for e in logs if e["event"] == "request"]
    assert [(e["method"], e["path"], e["status"]) for e in requests] == [
        ("GET", "/keys", 200),
        ("GET", "/nope", 404),
    ]
    fields = {"event", "log_level", "method", "path", "status", "remote", "user_agent"}
    for e in requests:
        assert set(e) == fields | {"duration_ms"}, e
        assert e["remote"] == "127.0.0.1" and e["user_agent"] == "relying-party/1.0"
        assert 0 <= e["duration_ms"] < 5000


async def test_infisical_discovery_url_is_named(
    run_provider: Start, bundle: Path, logs: list[dict[str, Any]]
) -> None:
    """Infisical's underscore URL stays a 404 (as in SPIRE), with a rate-limited warning naming
    the issuer to configure as the discovery URL."""
    p = await run_provider(file_config(bundle))
    await wait_for(lambda: p.store.current is not None, what="keys")
    target = tcp_target(p)
    for path in (TRAP + "/.well-known/openid-configuration", TRAP, TRAP):
        resp = await raw_http(target, get(path, "domain.test:8443"))
        assert resp.status == 404 and resp.body == b"404 page not found\n"
    warnings = [e for e in logs if e["event"] == "infisical_discovery_url_misconfigured"]
    assert len(warnings) == 1, warnings  # rate-limited
    assert warnings[0]["log_level"] == "warning"
    assert warnings[0]["configure_discovery_url"] == "https://domain.test:8443"
    assert warnings[0]["path"] == TRAP + "/.well-known/openid-configuration"


async def test_infisical_warning_never_echoes_a_foreign_host(
    run_provider: Start, bundle: Path, logs: list[dict[str, Any]]
) -> None:
    """For a host outside the allow-list the warning names no host from the request."""
    p = await run_provider(file_config(bundle))
    await wait_for(lambda: p.store.current is not None, what="keys")
    assert (await raw_http(tcp_target(p), get(TRAP, "evil.test"))).status == 404
    (warning,) = [e for e in logs if e["event"] == "infisical_discovery_url_misconfigured"]
    assert "evil" not in str(warning)
    assert warning["configure_discovery_url"] == "https://<your domain>"

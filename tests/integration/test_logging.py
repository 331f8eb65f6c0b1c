"""Logging: formats, log_path permissions, request lines, no key material (spire-behavior.md §7)."""

from __future__ import annotations

import io
import json
import logging
import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from spire_oidc.config.model import Config
from spire_oidc.daemon import Provider
from spire_oidc.logs import setup_logging
from tests.integration.support import file_config, get, raw_http, tcp_target, wait_for
from tests.keyfactory import bundle_bytes, ec_key, public_jwk

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("restore_logging")]

Start = Callable[[Config], Awaitable[Provider]]


async def test_json_log_file_and_request_lines(run_provider: Start, tmp_path: Path) -> None:
    """log_path is created 0640; JSON lines carry snake_case events; requests logged; no keys."""
    log_path = tmp_path / "odp.log"
    setup_logging(level="debug", fmt="json", path=str(log_path))
    assert stat.S_IMODE(os.stat(log_path).st_mode) == 0o640
    bundle = tmp_path / "b.json"
    jwk = public_jwk("kid-logged", ec_key())
    bundle.write_bytes(bundle_bytes([jwk]))
    p = await run_provider(file_config(bundle, log_requests=True))
    await wait_for(lambda: p.store.current is not None, what="keys")
    r = await raw_http(tcp_target(p), get("/keys", extra="User-Agent: probe/1\r\n"))
    assert r.status == 200
    await p.stop()
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    events = {line["event"] for line in lines}
    assert {"source_started", "keys_updated", "request", "shutdown_complete"} <= events
    req = next(line for line in lines if line["event"] == "request")
    assert req["method"] == "GET" and req["path"] == "/keys" and req["status"] == 200
    assert req["user_agent"] == "probe/1" and req["level"] == "info" and "duration_ms" in req
    text = log_path.read_text()
    assert "kid-logged" in text
    assert jwk["x"] not in text and jwk["y"] not in text  # never key material


def test_text_format_and_level() -> None:
    """The text renderer prints the event and its fields; the level filters."""
    buf = io.StringIO()
    setup_logging(level="warn", fmt="", stream=buf)
    import structlog

    log = structlog.get_logger("t")
    log.info("hidden_event")
    log.warning("shown_event", kid="k1")
    out = buf.getvalue()
    assert "hidden_event" not in out
    assert "shown_event" in out and "kid=k1" in out and "[warning" in out


def test_client_errors_logged_without_traceback() -> None:
    """aiohttp's 'Error handling request' for a client's bad request is one line, no traceback."""
    from aiohttp.http_exceptions import BadHttpMessage

    buf = io.StringIO()
    setup_logging(level="info", fmt="json", stream=buf)
    try:
        raise BadHttpMessage("Missing 'Host' header in request.")
    except BadHttpMessage:
        logging.getLogger("aiohttp.server").exception("Error handling request from %s", "127.0.0.1")
    line = json.loads(buf.getvalue().strip())
    assert line["event"] == "bad_request" and line["status"] == 400
    assert "Traceback" not in buf.getvalue()

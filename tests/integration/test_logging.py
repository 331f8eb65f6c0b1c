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


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_library_loggers_render_through_structlog(fmt: str) -> None:
    """grpc, acme and urllib3 stdlib records (even with a handler of their own) use our format."""
    stray = io.StringIO()
    acme_log = logging.getLogger("acme.client")
    logging.getLogger("acme").addHandler(logging.StreamHandler(stray))
    buf = io.StringIO()
    setup_logging(level="debug", fmt=fmt, stream=buf)
    logging.getLogger("grpc._cython.cygrpc").warning("grpc said %s", "hi")
    acme_log.info("acme said")
    logging.getLogger("urllib3.connectionpool").debug("urllib3 said")
    assert stray.getvalue() == ""  # the library's own handler was removed
    lines = buf.getvalue().splitlines()
    assert len(lines) == 3
    if fmt == "json":
        records = [json.loads(line) for line in lines]
        assert [r["logger"] for r in records] == [
            "grpc._cython.cygrpc",
            "acme.client",
            "urllib3.connectionpool",
        ]
        assert records[0]["event"] == "grpc said hi" and records[0]["level"] == "warning"
    else:
        assert "grpc said hi [grpc._cython.cygrpc]" in lines[0] and "[warning" in lines[0]
        assert "acme said [acme.client]" in lines[1]


def test_text_traceback_lines_are_indented_and_escaped() -> None:
    """A traceback stays multi-line in the text format, but every line of it is indented and
    escaped, so an exception message cannot forge a log line or send terminal escapes."""
    buf = io.StringIO()
    setup_logging(level="info", fmt="text", stream=buf)
    import structlog

    try:
        raise ValueError("bad\x1b[2J\n2026-01-01T00:00:00Z [info     ] forged")
    except ValueError:
        structlog.get_logger("t").exception("boom")
    lines = buf.getvalue().splitlines()
    assert "boom" in lines[0]
    assert all(line.startswith("  ") for line in lines[1:]) and len(lines) > 3
    assert "\x1b" not in buf.getvalue() and "bad\\x1b[2J" in buf.getvalue()


def test_grpc_env_defaults_keep_explicit_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """GRPC_VERBOSITY/GRPC_TRACE get defaults (NONE for json, else ERROR; empty trace), but a
    value the user set is never overridden."""
    from spire_oidc import logs

    monkeypatch.setattr(logs, "_grpc_env_set", {})
    monkeypatch.delenv("GRPC_VERBOSITY", raising=False)
    monkeypatch.setenv("GRPC_TRACE", "http")
    logs.grpc_env_defaults()
    assert os.environ["GRPC_VERBOSITY"] == "ERROR" and os.environ["GRPC_TRACE"] == "http"
    logs.grpc_env_defaults("json")  # our own default follows the log format
    assert os.environ["GRPC_VERBOSITY"] == "NONE" and os.environ["GRPC_TRACE"] == "http"
    monkeypatch.setenv("GRPC_VERBOSITY", "DEBUG")
    logs.grpc_env_defaults("json")
    assert os.environ["GRPC_VERBOSITY"] == "DEBUG"

"""Logging: structlog on top of the stdlib, so aiohttp's and gRPC's records render the same way.

``log_format``: ``text`` (the default) or ``json``; ``log_level``: logrus level names;
``log_path``: a file opened in append mode with mode 0640 (reopened automatically when logrotate
moves it). Event names are stable snake_case; key material is never logged (kids only).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from typing import TextIO

import structlog
from aiohttp.http_exceptions import HttpProcessingError

_LEVELS = {
    "panic": logging.CRITICAL,
    "fatal": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": logging.DEBUG,
}


def level_number(name: str) -> int:
    """The stdlib level of a logrus level name (case-insensitive; unknown -> INFO)."""
    return _LEVELS.get(name.lower(), logging.INFO)


class _QuietClientErrors(logging.Filter):
    """aiohttp logs a traceback for every malformed request; a client error is not ours."""

    def __init__(self, debug: bool) -> None:
        super().__init__()
        self._debug = debug

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            if self._debug:
                return True
            record.exc_info = None
            record.msg = "bad_request"
            record.args = None
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.__dict__["error"] = str(exc.message).strip()
            record.__dict__["status"] = exc.code
        return True


def _add_extras(
    _: object, __: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    record = event_dict.get("_record")
    if isinstance(record, logging.LogRecord):
        for key in ("error", "status"):
            if key in record.__dict__ and key not in event_dict:
                event_dict[key] = record.__dict__[key]
    return event_dict


def setup_logging(
    *, level: str = "info", fmt: str = "", path: str = "", stream: TextIO | None = None
) -> None:
    """Configure structlog and the stdlib root logger once, for the whole process."""
    lvl = level_number(level)
    renderer: structlog.typing.Processor
    if fmt.lower() == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=True)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0)
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    handler: logging.Handler
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        os.close(fd)
        handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    else:
        handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, _add_extras],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info
                if fmt.lower() == "json"
                else structlog.processors.ExceptionPrettyPrinter(),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(lvl)
    server_log = logging.getLogger("aiohttp.server")
    for flt in list(server_log.filters):
        server_log.removeFilter(flt)
    server_log.addFilter(_QuietClientErrors(debug=lvl <= logging.DEBUG))
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


_access_log = structlog.get_logger("spire_oidc.access")


def log_request(
    method: str, path: str, status: int, remote: str | None, user_agent: str, seconds: float
) -> None:
    """One info line per answered request (``log_requests``), from either HTTP path."""
    _access_log.info(
        "request",
        method=method,
        path=path,
        status=status,
        remote=remote,
        user_agent=user_agent,
        duration_ms=round(seconds * 1000, 3),
    )

"""Logging: structlog on top of the stdlib, so aiohttp's and gRPC's records render the same way.

``log_format``: ``text`` (the default) or ``json``; ``log_level``: logrus level names;
``log_path``: a file opened in append mode with mode 0640 (reopened automatically when logrotate
moves it). Event names are stable snake_case; key material is never logged (kids only).

Every string in a log line (event, field names and values, inside lists and mappings too) has its
control and line-separator characters escaped (:func:`escape_controls`), in both formats, so a
client-chosen header value or TLS server name cannot forge a line or drive a terminal.
Records from other libraries' stdlib loggers (``grpc``, ``acme``, ``urllib3``, ``aiohttp``,
Python warnings) are rendered by the same formatter; gRPC's C core, which writes to stderr on its
own, is kept quiet by :func:`grpc_env_defaults` (set before gRPC is first imported).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
from collections.abc import MutableMapping
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


# C0 and C1 controls and DEL (category Cc), U+2028/U+2029 (Zl/Zp), the bidi embedding, override
# and isolate controls (which reorder what a terminal shows), lone surrogates (undecodable bytes).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_CONTROL_KEEP_NEWLINE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
# Multi-line by design (tracebacks): line feeds are kept, every other control is escaped.
_MULTILINE_FIELDS = frozenset({"exception", "stack"})


def _escape_char(match: re.Match[str]) -> str:
    cp = ord(match.group())
    if cp == 0x0A:
        return "\\n"
    if cp == 0x0D:
        return "\\r"
    if cp == 0x09:
        return "\\t"
    return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}"


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control and line-separator character written as an escape."""
    pattern = _CONTROL_KEEP_NEWLINE if keep_newlines else _CONTROL
    return pattern.sub(_escape_char, text) if pattern.search(text) else text


def _escape_value(value: object) -> object:
    if isinstance(value, str):
        return escape_controls(value)
    if isinstance(value, (bytes, bytearray)):
        return escape_controls(value.decode("latin-1"))
    if isinstance(value, BaseException):
        return escape_controls(str(value))
    if isinstance(value, tuple):
        return tuple(_escape_value(v) for v in value)
    if isinstance(value, (list, set, frozenset)):
        return [_escape_value(v) for v in value]
    if isinstance(value, MutableMapping):
        return {_escape_value(k): _escape_value(v) for k, v in value.items()}
    return value


class EscapeFields:
    """Processor: escape controls in every key and value (the last step before rendering).

    Tracebacks (``exception``, ``stack``) keep their line feeds; with ``indent`` (the text format)
    each of their lines is indented, so no text inside them can start a line of its own.
    """

    def __init__(self, *, indent: bool) -> None:
        self._indent = indent

    def __call__(
        self, _: object, __: str, event_dict: structlog.typing.EventDict
    ) -> structlog.typing.EventDict:
        out: structlog.typing.EventDict = {}
        for key, value in event_dict.items():
            if key in _MULTILINE_FIELDS and isinstance(value, str):
                text = escape_controls(value, keep_newlines=True)
                out[key] = "  " + text.replace("\n", "\n  ") if self._indent else text
            else:
                out[escape_controls(key)] = _escape_value(value)
        return out


# gRPC's C core writes its own lines (``I1203 ... chttp2_transport.cc:1403] ... Got goaway``)
# straight to stderr. It reads these variables once, when gRPC is first imported.
_GRPC_ENV = ("GRPC_VERBOSITY", "GRPC_TRACE")
_grpc_env_set: dict[str, str] = {}  # what we set (and may still change); the user's is kept


def grpc_env_defaults(fmt: str = "") -> None:
    """Default GRPC_VERBOSITY and GRPC_TRACE (empty) unless the user set them explicitly.

    ``json``: ``NONE`` (a JSON log stream must stay parseable; gRPC failures still reach the log
    as the sources' own events with the call's status). Otherwise ``ERROR``. Call before ``grpc``
    is imported: ``spire_oidc.sources`` calls it on import, ``setup_logging`` with the format.
    """
    wanted = {"GRPC_VERBOSITY": "NONE" if fmt.lower() == "json" else "ERROR", "GRPC_TRACE": ""}
    for key in _GRPC_ENV:
        current = os.environ.get(key)
        if current is None or _grpc_env_set.get(key) == current:
            os.environ[key] = wanted[key]
            _grpc_env_set[key] = wanted[key]


# Libraries whose stdlib records must reach our handler (and no handler of their own).
_LIBRARY_LOGGERS = ("grpc", "acme", "josepy", "urllib3", "aiohttp", "asyncio", "py.warnings")


def _route_library_loggers() -> None:
    for name in _LIBRARY_LOGGERS:
        lib = logging.getLogger(name)
        for old in list(lib.handlers):
            if not isinstance(old, logging.NullHandler):
                lib.removeHandler(old)
        lib.propagate = True
    logging.captureWarnings(True)


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
    grpc_env_defaults(fmt)
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
                structlog.processors.format_exc_info,
                EscapeFields(indent=fmt.lower() != "json"),
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
    _route_library_loggers()
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

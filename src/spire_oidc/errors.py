"""The exception tree of the provider.

::

    ProviderError                 every error this package raises on purpose
    ├── ConfigError               a configuration file is unreadable, malformed or invalid
    ├── StartupError              the provider cannot start (bind failure, bad certificate, ...)
    └── SourceError               an upstream key source failed (one fetch; the last good keys stay)
        └── KeyParseError         one key from upstream is malformed (it is skipped, never served)

Foreign exceptions (``OSError``, ``grpc.RpcError``, ``ssl.SSLError``, ...) are translated into
these at the module that calls the foreign code, with ``raise ... from exc``.
"""

from __future__ import annotations


class ProviderError(Exception):
    """Base class of every error raised on purpose by the provider."""


class ConfigError(ProviderError):
    """A configuration problem.

    ``str(err)`` is SPIRE's wording for the same problem (so operators and SPIRE's tests recognise
    it); ``path``, ``line``, ``column`` and ``key`` add where it is, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        self.key = key

    def describe(self) -> str:
        """One line for the operator: file, position and key first, then SPIRE's message."""
        where: list[str] = []
        if self.path:
            pos = self.path
            if self.line is not None:
                pos += f":{self.line}"
                if self.column is not None:
                    pos += f":{self.column}"
            where.append(pos)
        if self.key:  # always: a key name inside the message may be another key's
            where.append(f"key {self.key}")
        if where:
            return f"{', '.join(where)}: {self.message}"
        return self.message


class StartupError(ProviderError):
    """The provider cannot start: a listener cannot bind, a certificate cannot load, ..."""


class SourceError(ProviderError):
    """One fetch from an upstream key source failed."""


class KeyParseError(SourceError):
    """One key delivered by upstream is malformed or unsupported; it is skipped."""

    def __init__(self, kid: str, reason: str) -> None:
        super().__init__(f"key {kid!r}: {reason}")
        self.kid = kid
        self.reason = reason

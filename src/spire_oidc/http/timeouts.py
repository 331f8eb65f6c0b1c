"""The connection timeouts every listener applies, in one value (SPIRE: ReadHeaderTimeout 10 s)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Timeouts:
    """How long a connection may take at each stage before it is closed.

    ``header`` bounds the wait for a complete request head (from connect, and after each
    response); ``idle`` bounds keep-alive idleness between requests; ``handshake`` bounds a TLS
    handshake (and the ACME ClientHello peek before it); ``shutdown_grace`` is how long in-flight
    responses may take to finish after SIGTERM. Tests pass a shorter value instead of patching
    module constants.
    """

    header: float = 10.0
    idle: float = 10.0
    handshake: float = 10.0
    shutdown_grace: float = 10.0

    def __post_init__(self) -> None:
        for name in ("header", "idle", "handshake", "shutdown_grace"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"timeout {name} must be positive, got {value!r}")


DEFAULT_TIMEOUTS = Timeouts()

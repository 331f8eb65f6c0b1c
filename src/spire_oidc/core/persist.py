"""The last good key set, persisted across restarts (opt-in ``state_dir``).

SPIRE answers 500 after a restart until it reaches SPIRE again; with a state directory the
provider serves the keys it last published (and readiness says the source is down). Only public
keys are written. Persisted keys have a maximum age, so a key SPIRE revoked while the provider was
down is not published forever. Writes are atomic (temporary file, fsync, rename); a corrupted or
foreign file is reported and ignored, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from spire_oidc.core.keys import KeySet, jwk_members, parse_jwks

log = structlog.get_logger(__name__)

STATE_FILE = "last-good-keys.json"
FORMAT_VERSION = 1
MAX_STATE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class PersistedKeys:
    keys: KeySet
    mod_time: float  # when the content last changed upstream
    saved_at: float  # when the source last confirmed these keys (the maximum age counts from it)


def state_path(state_dir: str) -> Path:
    return Path(state_dir) / STATE_FILE


def save(state_dir: str, keys: KeySet, *, mod_time: float, now: float) -> None:
    """Write the key set atomically (dir 0700, file 0600); failures are logged, not raised."""
    doc = {
        "format": FORMAT_VERSION,
        "mod_time": mod_time,
        "saved_at": now,
        "keys": [jwk_members(k, set_key_use=False) for k in keys.keys],
    }
    data = json.dumps(doc, indent=2).encode()
    directory = Path(state_dir)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, directory / STATE_FILE)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        log.error("state_save_failed", path=str(directory / STATE_FILE), error=str(exc))
        return
    log.debug("state_saved", path=str(directory / STATE_FILE), kids=list(keys.kids))


def load(state_dir: str, *, now: float, max_age: float) -> PersistedKeys | None:
    """The persisted key set, or None when absent, too old, or unreadable (logged)."""
    path = state_path(state_dir)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.error("state_load_failed", path=str(path), error=str(exc))
        return None
    try:
        if len(data) > MAX_STATE_BYTES:
            raise ValueError("file too large")
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION:
            raise ValueError("unknown format")
        mod_time, saved_at = doc["mod_time"], doc["saved_at"]
        if not isinstance(mod_time, (int, float)) or not isinstance(saved_at, (int, float)):
            raise ValueError("bad timestamps")
        raw_keys = doc["keys"]
        if not isinstance(raw_keys, list):
            raise ValueError("keys is not a list")
        keys, rejected = parse_jwks(raw_keys, uses=None)
        if rejected:
            raise ValueError(f"{len(rejected)} malformed key(s), e.g. {rejected[0]}")
    except (ValueError, KeyError, TypeError) as exc:
        log.error("state_file_corrupted", path=str(path), error=str(exc), action="ignored")
        return None
    age = now - float(saved_at)
    if age > max_age:
        log.warning(
            "state_too_old",
            path=str(path),
            age_seconds=round(age),
            max_age_seconds=max_age,
            action="not served",
        )
        return None
    return PersistedKeys(KeySet(tuple(keys)), float(mod_time), float(saved_at))


class StateWriter:
    """Persists every new key set off the event loop; the latest snapshot always wins."""

    def __init__(self, state_dir: str, *, now: Callable[[], float]) -> None:
        self._dir = state_dir
        self._now = now
        self._pending: tuple[KeySet, float, float] | None = None
        self._wake = asyncio.Event()

    def offer(self, keys: KeySet, mod_time: float, confirmed_at: float | None = None) -> None:
        """Queue a snapshot for writing: on every change, and periodically to record that the
        source still confirms it (``confirmed_at``, the time the maximum age counts from)."""
        self._pending = (keys, mod_time, self._now() if confirmed_at is None else confirmed_at)
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                await self._flush()
        finally:
            await asyncio.shield(self._flush())

    async def _flush(self) -> None:
        self._wake.clear()
        pending, self._pending = self._pending, None
        if pending is not None:
            keys, mod_time, confirmed_at = pending
            await asyncio.to_thread(save, self._dir, keys, mod_time=mod_time, now=confirmed_at)

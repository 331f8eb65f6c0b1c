"""The last good key set, persisted across restarts (opt-in ``state_dir``).

SPIRE answers 500 after a restart until it reaches SPIRE again; with a state directory the
provider serves the keys it last published (and readiness says the source is down). Only public
keys are written. Persisted keys have a maximum age, so a key SPIRE revoked while the provider was
down is not published forever. Writes are atomic (temporary file, fsync, rename); a corrupted
file is reported and ignored, never fatal.

Planted state (issue 12 §4): the directory's missing components are created 0700 whatever the
umask, and a directory or state file owned by another uid (root is fine) or writable by group or
other is refused (:mod:`spire_oidc.core.private_paths`): at start-up an unsafe or uncreatable
``state_dir`` stops the provider before it binds; an unsafe state file is not loaded, and the
writer does not write into a directory that became unsafe (both logged with the fix).
The file is bounded by :data:`~spire_oidc.core.limits.LIMITS` like any bundle: the writer never
writes a file the reader would refuse (it removes the stale one instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from spire_oidc.core.keys import KeySet, jwk_members, parse_jwks
from spire_oidc.core.limits import LIMITS, KeyLimits
from spire_oidc.core.private_paths import UnsafePathError, ensure_private_dir, open_private_file
from spire_oidc.errors import SourceError, StartupError

log = structlog.get_logger(__name__)

STATE_FILE = "last-good-keys.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class PersistedKeys:
    keys: KeySet
    mod_time: float  # when the content last changed upstream
    saved_at: float  # when the source last confirmed these keys (the maximum age counts from it)


def state_path(state_dir: str) -> Path:
    return Path(state_dir) / STATE_FILE


def prepare(state_dir: str) -> None:
    """Create the state directory's missing components (0700) and check it is private.

    Raises :class:`StartupError` (an :class:`UnsafePathError` naming the path, what is wrong and
    the fix) when it is owned by another uid, writable by group or other, or cannot be created.
    """
    try:
        ensure_private_dir(state_dir, kind="state_dir")
    except OSError as exc:  # an unsafe directory raises UnsafePathError, a StartupError
        raise StartupError(
            f"state_dir {state_dir}: cannot create or read it: {exc.strerror or exc}"
        ) from exc


def save(
    state_dir: str, keys: KeySet, *, mod_time: float, now: float, limits: KeyLimits = LIMITS
) -> None:
    """Write the key set atomically (dir 0700, file 0600); failures are logged, not raised."""
    doc = {
        "format": FORMAT_VERSION,
        "mod_time": mod_time,
        "saved_at": now,
        "keys": [jwk_members(k, set_key_use=False) for k in keys.keys],
    }
    data = json.dumps(doc, indent=2).encode()
    directory = Path(state_dir)
    path = directory / STATE_FILE
    try:
        ensure_private_dir(state_dir, kind="state_dir")
    except UnsafePathError as exc:
        log.error(
            "state_dir_unsafe", path=exc.path, problem=exc.problem, fix=exc.fix, action="not saved"
        )
        return
    except OSError as exc:
        log.error("state_save_failed", path=str(path), error=str(exc))
        return
    too_big = limits.check_bundle_size(len(data))
    if len(keys.keys) > limits.max_keys:
        too_big = f"{len(keys.keys)} keys, more than the limit of {limits.max_keys}"
    if too_big is not None:
        # Keeping the older file would restore older (maybe revoked) keys after a restart.
        with contextlib.suppress(OSError):
            os.unlink(path)
        log.error("state_too_large", path=str(path), error=too_big, action="state file removed")
        return
    try:
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
        log.error("state_save_failed", path=str(path), error=str(exc))
        return
    log.debug("state_saved", path=str(path), kids=list(keys.kids))


def load(
    state_dir: str, *, now: float, max_age: float, limits: KeyLimits = LIMITS
) -> PersistedKeys | None:
    """The persisted key set, or None when absent, too old, unsafe or unreadable (logged).

    The directory is prepared first (:func:`prepare`): an unsafe or uncreatable ``state_dir``
    raises :class:`StartupError`.
    """
    prepare(state_dir)
    path = state_path(state_dir)
    try:
        fd = open_private_file(str(path), kind="state file")
    except FileNotFoundError:
        return None
    except UnsafePathError as exc:
        log.error(
            "state_file_unsafe", path=exc.path, problem=exc.problem, fix=exc.fix, action="ignored"
        )
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            log.error(
                "state_file_unsafe",
                path=str(path),
                problem="state file is a symbolic link",
                fix=f"rm {path}",
                action="ignored",
            )
        else:
            log.error("state_load_failed", path=str(path), error=str(exc))
        return None
    try:
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(limits.max_bundle_bytes + 1)
    except OSError as exc:
        log.error("state_load_failed", path=str(path), error=str(exc))
        return None
    try:
        too_big = limits.check_bundle_size(len(data))
        if too_big is not None:
            raise ValueError(too_big)
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION:
            raise ValueError("unknown format")
        mod_time, saved_at = doc["mod_time"], doc["saved_at"]
        if not isinstance(mod_time, (int, float)) or not isinstance(saved_at, (int, float)):
            raise ValueError("bad timestamps")
        raw_keys = doc["keys"]
        if not isinstance(raw_keys, list):
            raise ValueError("keys is not a list")
        keys, rejected = parse_jwks(raw_keys, uses=None, max_keys=limits.max_keys)
        if rejected:
            raise ValueError(f"{len(rejected)} malformed key(s), e.g. {rejected[0]}")
    except (ValueError, KeyError, TypeError, SourceError) as exc:
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

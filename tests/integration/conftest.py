"""Fixtures: providers started in-process on loopback and stopped after each test."""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import structlog.testing

from spire_oidc.config.model import Config
from spire_oidc.daemon import Provider, start
from tests.fakes.sink import short_socket_dir


@pytest.fixture
async def run_provider() -> AsyncIterator[object]:
    """Start providers for a test; every one is stopped (gracefully) at the end."""
    running: list[Provider] = []

    async def _start(config: Config, **options: Any) -> Provider:
        provider = await start(config, **options)
        running.append(provider)
        return provider

    yield _start
    for provider in running:
        await provider.stop()


@pytest.fixture
def sock_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory short enough for unix socket paths (removed afterwards)."""
    d = short_socket_dir(tmp_path)
    yield d
    if d != tmp_path:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    """structlog events captured as dicts, the configuration restored afterwards."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    try:
        with structlog.testing.capture_logs() as captured:
            yield captured
    finally:
        structlog.configure(**saved)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root logger's handlers and level back after a test that set up logging."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
        if h not in handlers:
            h.close()
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)

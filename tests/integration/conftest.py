"""Fixtures: providers started in-process on loopback and stopped after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from spire_oidc.config import Config
from spire_oidc.daemon import Provider, start


@pytest.fixture
async def run_provider() -> AsyncIterator[object]:
    """Start providers for a test; every one is stopped (gracefully) at the end."""
    running: list[Provider] = []

    async def _start(config: Config) -> Provider:
        provider = await start(config)
        running.append(provider)
        return provider

    yield _start
    for provider in running:
        await provider.stop()

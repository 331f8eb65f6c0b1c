"""Fixtures for the interop suite: one test CA, the signing keys, providers per configuration."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.interop.harness import (
    EXE,
    ProviderProcess,
    SigningKey,
    TLSFiles,
    free_port,
    node_available,
)
from tests.keyfactory import ec_key, rsa_key

StartProvider = Callable[..., ProviderProcess]


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A trustme CA and a serving certificate for 127.0.0.1 / localhost."""
    return TLSFiles.create(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def rsa_signer() -> SigningKey:
    return SigningKey("rsa-1", rsa_key(2048), "RS256")


@pytest.fixture(scope="session")
def ec_signer() -> SigningKey:
    return SigningKey("ec-1", ec_key(ec.SECP256R1()), "ES256")


@pytest.fixture(scope="session")
def node() -> None:
    """The Node relying parties are installed (a failure in CI, a skip elsewhere)."""
    reason = node_available()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def start_provider(
    tmp_path_factory: pytest.TempPathFactory, tls: TLSFiles
) -> Iterator[StartProvider]:
    """Start installed providers (one process per configuration); all are stopped at the end."""
    assert EXE, "oidc-discovery-provider is not installed in this environment"
    running: list[ProviderProcess] = []

    def _start(
        keys: list[SigningKey],
        *,
        extra_config: str = "",
        server_path_prefix: str = "",
        port: int | None = None,
    ) -> ProviderProcess:
        directory: Path = tmp_path_factory.mktemp("provider")
        provider = ProviderProcess(
            directory,
            tls,
            port or free_port(),
            extra_config=extra_config,
            server_path_prefix=server_path_prefix,
        )
        running.append(provider)
        provider.start(keys)
        return provider

    yield _start
    for provider in running:
        provider.stop()

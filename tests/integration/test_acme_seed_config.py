"""The seed config of SPIRE's OIDC federation guide (legacy ``domain``, an ``acme`` block,
``registration_api { socket_path }``) starts, gets its certificate from Pebble and serves the
fake SPIRE server's keys over verified HTTPS."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from spire_oidc.config.model import parse_config
from spire_oidc.daemon import Provider
from tests.acme_support.fixtures import (
    NAME,
    PebbleFactory,
    client_context,
    dns,
    fetch,
    pebble_factory,
    wait_for_certificate,
)
from tests.fakes.fake_server_api import FakeServerAPI, authority
from tests.fakes.keys import ec_key, pkix
from tests.fakes.sink import short_socket_dir
from tests.integration.support import Starter, wait_for

pytestmark = pytest.mark.integration
__all__ = ["dns", "pebble_factory"]

# The guide's shape; only the port (SPIRE's is fixed at 443) is added for the test.
SEED = """
log_level = "INFO"
domain = "{name}"
acme {{
    directory_url = "{directory_url}"
    cache_dir = "{cache_dir}"
    tos_accepted = true
    email = "ops@{name}"
    addr = "127.0.0.1:{port}"
}}
registration_api {{
    socket_path = "{socket_path}"
}}
"""


async def test_federation_guide_seed_config_with_pebble_and_a_spire_server(
    pebble_factory: PebbleFactory,
    run_provider: Starter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The guide's config (legacy keys included) obtains its certificate and serves the
    SPIRE server's JWT authorities; the ACME CA is trusted through REQUESTS_CA_BUNDLE."""
    pebble = await pebble_factory()
    sock_dir = short_socket_dir(tmp_path)
    server = FakeServerAPI(sock_dir / "api.sock")
    server.set_bundle([authority("seed-kid", pkix(ec_key()))])
    await server.start()
    try:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pebble.ca_file))
        text = SEED.format(
            name=NAME,
            directory_url=pebble.directory_url,
            cache_dir=tmp_path / ".acme-cache",
            port=pebble.tls_port,
            socket_path=server.socket_path,
        )
        config = parse_config(text, path="seed.conf")
        assert config.domains == (NAME,)
        provider: Provider = await run_provider(config)
        assert provider.acme is not None and provider.acme.trust.base_source == "REQUESTS_CA_BUNDLE"
        ctx = client_context(await pebble.root_pem())
        discovery = await wait_for_certificate(pebble.tls_port, ctx)
        assert json.loads(discovery.body)["jwks_uri"] == f"https://{NAME}/keys"
        await wait_for(lambda: provider.store.current is not None, 5.0, "the first bundle")
        keys = await fetch(pebble.tls_port, ctx, path="/keys")
        assert keys.status == 200
        assert [k["kid"] for k in json.loads(keys.body)["keys"]] == ["seed-kid"]
    finally:
        await server.stop()
        if sock_dir != tmp_path:
            shutil.rmtree(sock_dir, ignore_errors=True)

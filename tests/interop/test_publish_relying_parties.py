"""Relying parties verify tokens against documents fetched from the object store, not from the
provider: the real provider process (publish-only mode) follows a fake SPIRE agent through a
rotation, and PyJWT's PyJWKClient and Node's jose read discovery and keys from the store's HTTP
endpoint (nginx in front of it, as a CDN in front of a bucket) and verify a token signed with
the new key (and reject one signed with the retired key)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.fake_workload_api import FakeWorkloadAPI
from tests.fakes.sink import short_socket_dir
from tests.integration.publish_support import Agent, Nginx, spawn_provider, stop_provider, wait_kids
from tests.interop.harness import EXE, Case, SigningKey, mint, run_node, verify_pyjwt
from tests.storage_support.fixtures import Bucket, az_container, azurite, s3_bucket, seaweedfs

__all__ = ["az_container", "azurite", "s3_bucket", "seaweedfs"]  # the fixtures, for ruff

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("node")]

AUDIENCE = "publish-test"


@dataclass
class Site:
    """Where the provider publishes and where relying parties read it."""

    url: str  # publish { url }
    env: dict[str, str]  # the store's credentials for the provider process
    nginx: Nginx

    @property
    def issuer(self) -> str:
        return self.nginx.origin + "/prod"


@pytest.fixture(params=["file", "s3", "az"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    """file://: a directory served by nginx; s3:// and az://: a public bucket (SeaweedFS) or
    container (azurite) with nginx in front mapping the issuer's paths to it, as a CDN does."""
    if request.param == "file":
        www = tmp_path / "www"
        www.mkdir()
        url, env, nginx = f"file://{www}", {}, Nginx(tmp_path / "nginx", root=www)
    else:
        fixture = "s3_bucket" if request.param == "s3" else "az_container"
        bucket: Bucket = request.getfixturevalue(fixture)
        url, env = bucket.url, bucket.env
        nginx = Nginx(tmp_path / "nginx", upstream=bucket.public_url)
    try:
        yield Site(url, env, nginx)
    finally:
        nginx.stop()


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Agent]:
    sock_dir = short_socket_dir(tmp_path)
    fake = FakeWorkloadAPI(sock_dir / "agent.sock")
    await fake.start()
    yield Agent(fake)
    await fake.stop()
    if sock_dir != tmp_path:
        shutil.rmtree(sock_dir, ignore_errors=True)


def provider_config(path: Path, agent: Agent, site: Site) -> Path:
    path.write_text(
        f"""log_format = "json"
domains = ["127.0.0.1"]
jwt_issuer = "{site.issuer}"
allow_insecure_scheme = true
workload_api {{
    socket_path = "{agent.fake.socket_path}"
    trust_domain = "example.org"
}}
publish {{ url = "{site.url}" }}
"""
    )
    return path


def verify_all(token: str, issuer: str, ca_file: Path) -> dict[str, str]:
    """library -> "" (accepted) or the reason it rejected ``token``."""
    node = run_node([Case("jose", "jose", issuer, token, audience=AUDIENCE)], ca_file)
    ctx = ssl.create_default_context()
    return {
        "jose": node["jose"],
        "pyjwt": verify_pyjwt(token, issuer=issuer, audience=AUDIENCE, ctx=ctx),
    }


async def test_relying_parties_verify_against_the_store_after_a_rotation(
    agent: Agent, site: Site, tmp_path: Path, tls: object
) -> None:
    """After k1 -> k1+k2 -> k2, PyJWT and jose accept a k2 token and reject a k1 token."""
    assert EXE, "oidc-discovery-provider is not installed in this environment"
    agent.serve("k1")
    conf = provider_config(tmp_path / "provider.conf", agent, site)
    log = tmp_path / "provider.log"
    proc = spawn_provider(EXE, conf, log, site.env)
    keys_url = site.issuer + "/keys"
    try:
        await wait_kids(keys_url, ["k1"], what=log.read_text()[-2000:])
        agent.serve("k1", "k2")
        await wait_kids(keys_url, ["k1", "k2"])
        agent.serve("k2")
        await wait_kids(keys_url, ["k2"])
    finally:
        code = stop_provider(proc)
    assert code == 0, log.read_text()[-3000:]
    new = SigningKey("k2", agent.private["k2"], "ES256")
    old = SigningKey("k1", agent.private["k1"], "ES256")
    ca_file = tls.ca_file  # type: ignore[attr-defined]
    accepted = await asyncio.to_thread(
        verify_all, mint(new, issuer=site.issuer, audience=AUDIENCE), site.issuer, ca_file
    )
    assert accepted == {"jose": "", "pyjwt": ""}
    rejected = await asyncio.to_thread(
        verify_all, mint(old, issuer=site.issuer, audience=AUDIENCE), site.issuer, ca_file
    )
    assert rejected["jose"] == "ERR_JWKS_NO_MATCHING_KEY", rejected
    assert rejected["pyjwt"] == "PyJWKClientError", rejected

"""Shared helpers of the publish integration tests: a fake SPIRE agent whose JWT keys the test
rotates, provider configs that publish, and plain HTTP GETs of published objects."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from spire_oidc.config.model import (
    Config,
    HealthChecksConfig,
    PublishConfig,
    WorkloadAPIConfig,
)
from tests.fakes.fake_workload_api import FakeWorkloadAPI
from tests.fakes.keys import ec_key, jwk, jwks

TD = "spiffe://example.org"
ISSUER = "https://oidc.example.org/prod"
JWKS_PATH = "prod/keys"
DISCOVERY_PATH = "prod/.well-known/openid-configuration"


class Agent:
    """A fake SPIRE agent serving JWT keys by kid; ``rotate`` changes the set and pushes it."""

    def __init__(self, fake: FakeWorkloadAPI) -> None:
        self.fake = fake
        self.private: dict[str, ec.EllipticCurvePrivateKey] = {}

    def serve(self, *kids: str) -> None:
        for kid in kids:
            self.private.setdefault(kid, ec_key())
        self.fake.set_jwks(TD, jwks(*(jwk(k, self.private[k]) for k in kids)))


def publish_config(
    socket_path: str | Path,
    url: str,
    *,
    listener: bool = True,
    health: bool = False,
    **overrides: object,
) -> Config:
    base = Config(
        domains=("localhost",),
        source=WorkloadAPIConfig(
            socket_path=str(socket_path), trust_domain="example.org", poll_interval=0.2
        ),
        insecure_addr="127.0.0.1:0" if listener else "",
        jwt_issuer=ISSUER,
        publish=PublishConfig(url=url),
        health_checks=(
            HealthChecksConfig(bind_port=0, bind_host="127.0.0.1", metrics=True) if health else None
        ),
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def fetch(url: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """One anonymous GET (no raise on 4xx/5xx; status 0 when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()
    except OSError:
        return 0, {}, b""


def kids_of(body: bytes) -> list[str]:
    try:
        return [k["kid"] for k in json.loads(body)["keys"]]
    except (ValueError, KeyError, TypeError):
        return []


async def fetch_kids(url: str) -> list[str]:
    status, _, body = await asyncio.to_thread(fetch, url)
    return kids_of(body) if status == 200 else []

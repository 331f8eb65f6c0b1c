"""Shared helpers of the publish integration tests: a fake SPIRE agent whose JWT keys the test
rotates, provider configs that publish, and plain HTTP GETs of published objects."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
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
from tests.storage_support.servers import free_port, missing, wait_port

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


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    server_tokens off;
    client_body_temp_path {work}/tmp;
    proxy_temp_path {work}/tmp;
    fastcgi_temp_path {work}/tmp;
    uwsgi_temp_path {work}/tmp;
    scgi_temp_path {work}/tmp;
    types {{ }}
    default_type application/json;
    server {{
        listen 127.0.0.1:{port};
        location / {{ {location} }}
    }}
}}
"""


class Nginx:
    """Debian's nginx on loopback in front of the store: ``root`` serves a file:// directory,
    ``upstream`` proxies every path to a bucket's public URL (a CDN in front of the bucket maps
    the issuer's paths the same way). ``master_process off``: one process, no user switch, so
    it reads the store's owner-only files."""

    def __init__(self, work: Path, *, root: Path | None = None, upstream: str = "") -> None:
        if shutil.which("nginx") is None:
            missing("nginx is not installed (apt-get install nginx-light)")
        self.work = work
        (work / "tmp").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        proxy = f"proxy_pass {upstream.rstrip('/')}/;"
        location = f"root {root};" if root is not None else proxy
        conf = work / "nginx.conf"
        conf.write_text(NGINX_CONF.format(work=work, port=self.port, location=location))
        log = open(work / "nginx.out", "ab")  # noqa: SIM115 (owned by the process)
        self.proc = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", str(work)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_port(self.port, self.proc, work / "nginx-error.log")

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def spawn_provider(
    exe: str, config: Path, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """The installed provider as a subprocess (``env`` added to ours), its output in ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [exe, "-config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )


def stop_provider(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then the exit code (killed after 15 s)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


async def wait_kids(url: str, kids: list[str], within: float = 20.0, what: str = "") -> None:
    """Poll the JWKS at ``url`` until it lists exactly ``kids`` (AssertionError after ``within``)."""
    last: list[str] = []
    for _ in range(int(within / 0.05)):
        last = await fetch_kids(url)
        if last == kids:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never listed {kids} (last: {last}) {what}")

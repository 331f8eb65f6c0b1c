"""Three provider replicas (separate ``oidc-discovery-provider -config`` processes) sharing one ACME
storage behind HAProxy, with Pebble as the CA: the harness of tests/integration/test_acme_replicas.py
and bench/acme_replicas.py.

Layout (loopback only): the balancer's frontends on 127.0.0.10, replica N on 127.0.0.1N, the same
two high ports (``tls_port`` for HTTPS and tls-alpn-01, ``http_port`` for http-01) everywhere;
Pebble validates on those ports of the address the DNS gives for the name, which is the
balancer's, so its three concurrent validations land on arbitrary replicas. Each replica logs
JSON to its own file and has health checks (and metrics) on its own port of 127.0.0.1.

What a test reads: :class:`PebbleWatch` (orders, certificates and accounts, with the time each
line appeared), :class:`SerialWatch` (the serial each replica serves, read directly with
SNI = the name and verified against Pebble's root) and :class:`HandshakeLoop` (verified
handshakes and requests through the balancer, new connections and one kept alive).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509

from tests.acme_support.balancer import HAProxy, free_port_on
from tests.acme_support.dns import LoopbackDNS
from tests.acme_support.fixtures import NAME, client_context
from tests.acme_support.pebble import Pebble, free_port
from tests.keyfactory import bundle_bytes, ec_key, public_jwk

FRONTEND = "127.0.0.10"
HOSTS = ("127.0.0.11", "127.0.0.12", "127.0.0.13")
EXE = Path(sys.executable).parent / "oidc-discovery-provider"


class SharedStorage(Protocol):
    """What the replicas share: a storage URL and the environment that reaches it."""

    @property
    def url(self) -> str: ...

    @property
    def env(self) -> dict[str, str]: ...


@dataclass
class SharedDirectory:
    """``file://DIR``: a directory all replicas see (an NFS/EFS volume in production)."""

    path: Path
    kind: str = "file"

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    @property
    def env(self) -> dict[str, str]:
        return {}


def replica_config(
    *,
    host: str,
    tls_port: int,
    http_port: int,
    health_port: int,
    bundle: Path,
    directory_url: str,
    ca_file: Path,
    challenges: tuple[str, ...],
    storage_url: str,
    lock_lease: str,
) -> str:
    """One replica's HCL configuration (only ``addr``/``http_addr``/health port differ)."""
    quoted = ", ".join(f'"{c}"' for c in challenges)
    return (
        f'log_level = "info"\nlog_format = "json"\ndomains = ["{NAME}"]\n'
        f'file {{\n  path = "{bundle}"\n  poll_interval = "1s"\n}}\n'
        f'health_checks {{\n  bind_host = "127.0.0.1"\n  bind_port = {health_port}\n'
        "  metrics = true\n}\n"
        "acme {\n"
        f'  directory_url = "{directory_url}"\n'
        f'  email = "ops@{NAME}"\n'
        "  tos_accepted = true\n"
        f'  addr = "{host}:{tls_port}"\n'
        f'  http_addr = "{host}:{http_port}"\n'
        f'  ca_bundle_path = "{ca_file}"\n'
        f"  challenges = [{quoted}]\n"
        f'  storage = "{storage_url}"\n'
        f'  lock_lease = "{lock_lease}"\n'
        "}\n"
    )


class Replica:
    """One provider process bound to ``host`` (its own log file and health port)."""

    def __init__(self, index: int, host: str, workdir: Path, config: str, env: dict[str, str]):
        self.index, self.host, self.workdir = index, host, workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "provider.conf"
        self.config_path.write_text(config)
        self.health_port = int(re.search(r"bind_port = (\d+)", config).group(1))  # type: ignore[union-attr]
        self.log_path = workdir / "provider.log"
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.killed = False

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self.proc = subprocess.Popen(
                [str(EXE), "-config", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
            )
        finally:
            log.close()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no lock release, no clean-up (a crashed or evicted pod)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
            self.killed = True

    def stop(self) -> int | None:
        """SIGTERM and wait; the exit code (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                return None
        return self.proc.returncode

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The JSON log events (only ``name`` ones when given)."""
        out = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    if name is None or event.get("event") == name:
                        out.append(event)
        return out

    async def http(self, path: str, timeout: float = 3.0) -> tuple[int, str]:
        """GET on the health listener: (status, body); (0, error) when it does not answer."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.health_port), timeout
            )
        except (OSError, TimeoutError) as exc:
            return 0, str(exc)
        try:
            writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            data = await asyncio.wait_for(reader.read(), timeout)
        except (OSError, TimeoutError) as exc:
            return 0, str(exc)
        finally:
            writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        parts = head.split(b" ", 2)
        return (int(parts[1]) if len(parts) > 1 else 0), body.decode(errors="replace")


async def served_certificate(
    host: str, port: int, ctx: ssl.SSLContext, *, timeout: float = 3.0
) -> x509.Certificate:
    """The verified leaf a TLS client gets from ``host:port`` with SNI = the name."""
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=ctx, server_hostname=NAME), timeout
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    return x509.load_der_x509_certificate(der)


def make_replicas(
    workdir: Path,
    *,
    tls_port: int,
    http_port: int,
    directory_url: str,
    ca_file: Path,
    challenges: tuple[str, ...],
    storage: SharedStorage,
    lock_lease: str,
) -> list[Replica]:
    """The three replicas (not started), one key bundle file for all."""
    workdir.mkdir(parents=True, exist_ok=True)
    bundle = workdir / "bundle.json"
    bundle.write_bytes(bundle_bytes([public_jwk("kid-1", ec_key())]))
    out = []
    for i, host in enumerate(HOSTS, start=1):
        config = replica_config(
            host=host,
            tls_port=tls_port,
            http_port=http_port,
            health_port=free_port(),
            bundle=bundle,
            directory_url=directory_url,
            ca_file=ca_file,
            challenges=challenges,
            storage_url=storage.url,
            lock_lease=lock_lease,
        )
        out.append(Replica(i, host, workdir / f"replica{i}", config, storage.env))
    return out


async def wait_live(replicas: list[Replica], timeout: float = 30.0) -> None:
    """Until every replica's ``/live`` answers 200 (the process is up and configured)."""
    deadline = time.monotonic() + timeout
    for replica in replicas:
        while (await replica.http("/live", timeout=1.0))[0] != 200:
            if not replica.alive:
                raise RuntimeError(f"replica {replica.index} exited:\n{replica.log_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"replica {replica.index} not live:\n{replica.log_text()[-3000:]}"
                )
            await asyncio.sleep(0.05)


@dataclass
class Cluster:
    """DNS (the name is the balancer), Pebble validating on the balancer's ports, HAProxy, and
    three replicas (created, not started) sharing ``storage``."""

    workdir: Path
    dns: LoopbackDNS
    pebble: Pebble
    balancer: HAProxy
    replicas: list[Replica]
    tls_port: int
    http_port: int
    ctx: ssl.SSLContext  # a relying party trusting Pebble's root

    def start_replicas(self) -> None:
        """Start every replica at once (a simultaneous cold start)."""
        for replica in self.replicas:
            replica.start()

    def alive(self) -> list[Replica]:
        return [r for r in self.replicas if r.alive]

    def stop(self) -> dict[int, int | None]:
        """Stop the replicas (SIGTERM; their exit codes), the balancer, Pebble and the DNS."""
        codes = {r.index: r.stop() for r in self.replicas if not r.killed}
        self.balancer.stop()
        self.pebble.stop()
        self.dns.stop()
        return codes

    def logs(self) -> str:
        """Every log, for an assertion message."""
        parts = [f"== pebble\n{self.pebble.log_text()[-4000:]}"]
        parts += [f"== replica {r.index}\n{r.log_text()[-4000:]}" for r in self.replicas]
        parts.append(f"== haproxy\n{self.balancer.log_text()[-2000:]}")
        return "\n".join(parts)


async def start_cluster(
    workdir: Path,
    storage: SharedStorage,
    *,
    challenges: tuple[str, ...] = ("tls-alpn-01",),
    validity: int | None = None,
    lock_lease: str = "5s",
) -> Cluster:
    """Everything but the replicas running; ``validity`` (seconds) shortens Pebble's certificates."""
    dns = await LoopbackDNS(address=FRONTEND).start()
    started: list[Pebble | HAProxy] = []
    try:
        tls_port = free_port_on([FRONTEND, *HOSTS])
        http_port = free_port_on([FRONTEND, *HOSTS])
        pebble = Pebble(
            workdir / "pebble",
            dns_port=dns.port,
            validity=validity,
            tls_port=tls_port,
            http_port=http_port,
        )
        started.append(pebble)
        await pebble.start()
        balancer = HAProxy(
            workdir / "haproxy",
            frontend=FRONTEND,
            ports={"tls": tls_port, "http": http_port},
            backends=list(HOSTS),
        )
        started.append(balancer)
        await balancer.start()
        ctx = client_context(await pebble.root_pem())
    except BaseException:
        for item in started:
            item.stop()
        dns.stop()
        raise
    replicas = make_replicas(
        workdir / "replicas",
        tls_port=tls_port,
        http_port=http_port,
        directory_url=pebble.directory_url,
        ca_file=pebble.ca_file,
        challenges=challenges,
        storage=storage,
        lock_lease=lock_lease,
    )
    return Cluster(workdir, dns, pebble, balancer, replicas, tls_port, http_port, ctx)

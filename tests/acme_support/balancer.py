"""Debian's HAProxy as a TCP round-robin balancer in front of provider replicas, on loopback.

One frontend per port on ``frontend`` (e.g. 127.0.0.10), each round-robining to the same port on
every backend address (127.0.0.11-13). ``mode tcp`` (TLS passes through untouched, so SNI and
ALPN reach the replica), ``option redispatch 1`` with ``retries`` and a short connect timeout (a
refused connection is retried on the next replica after ~0.2 s) and **no active health checks**:
with checks, replicas that just started are marked down for a while and the CA's three
concurrent validations land on one replica only (test-servers.md in the shared spec). Every
connection is logged (``option tcplog`` to stdout) so a test can see where connections went.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.acme_support.pebble import terminate


def haproxy_binary() -> str:
    """The haproxy binary; missing fails under CI (scripts/install-haproxy.sh installs it)."""
    path = shutil.which("haproxy")
    if path is None:
        message = "haproxy is not installed: run scripts/install-haproxy.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port_on(hosts: list[str]) -> int:
    """A high TCP port that is free on every one of ``hosts`` (same number on each)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((hosts[0], 0))
            port = int(s.getsockname()[1])
        if all(_bindable(h, port) for h in hosts):
            return port
    raise RuntimeError(f"no common free port on {hosts}")


def render_config(frontend: str, ports: dict[str, int], backends: list[str]) -> str:
    """The haproxy.cfg text: a frontend and a round-robin backend per named port."""
    lines = [
        "global",
        "  log stdout format raw local0",
        "  maxconn 4096",
        "defaults",
        "  mode tcp",
        "  log global",
        "  option tcplog",
        "  option redispatch 1",
        "  retries 3",
        "  timeout connect 200ms",
        "  timeout client 120s",
        "  timeout server 120s",
    ]
    for name, port in ports.items():
        lines += [
            f"frontend fe_{name}",
            f"  bind {frontend}:{port}",
            f"  default_backend be_{name}",
            f"backend be_{name}",
            "  balance roundrobin",
        ]
        # No "check": no active health checks (see the module docstring).
        lines += [f"  server r{i + 1} {host}:{port}" for i, host in enumerate(backends)]
    return "\n".join(lines) + "\n"


# "fe_tls be_tls/r2 0/0/1/2/3 ..." in the raw tcplog line.
_ROUTE = re.compile(r"\bfe_(\w+) be_\w+/(\S+) ")


class HAProxy:
    """One haproxy process (``-db``: foreground) with its own configuration and log."""

    def __init__(
        self, workdir: Path, *, frontend: str, ports: dict[str, int], backends: list[str]
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.frontend, self.ports, self.backends = frontend, dict(ports), list(backends)
        self.config_path = workdir / "haproxy.cfg"
        self.config_path.write_text(render_config(frontend, self.ports, self.backends))
        self.log_path = workdir / "haproxy.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def check_config(self) -> None:
        """``haproxy -c``: the configuration is valid (raises with haproxy's words otherwise)."""
        r = subprocess.run(
            [haproxy_binary(), "-c", "-f", str(self.config_path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if r.returncode != 0:
            raise RuntimeError(f"haproxy -c: {r.stdout}{r.stderr}")

    async def start(self, *, timeout: float = 10.0) -> HAProxy:
        self.check_config()
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self._proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once
                [haproxy_binary(), "-db", "-f", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        for port in self.ports.values():
            while True:
                if self._proc.poll() is not None:
                    raise RuntimeError(f"haproxy exited: {self.log_text()[-2000:]}")
                try:
                    _, writer = await asyncio.wait_for(
                        asyncio.open_connection(self.frontend, port), 1.0
                    )
                    writer.close()
                    break
                except (OSError, TimeoutError):
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._proc is not None:
            terminate(self._proc)
        self._proc = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def routes(self) -> Counter[tuple[str, str]]:
        """How many logged connections went to each (frontend name, server) pair."""
        return Counter(
            (m.group(1), m.group(2))
            for line in self.log_text().splitlines()
            if (m := _ROUTE.search(line))
        )

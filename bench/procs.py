"""Processes for the benchmark: nginx and the provider, pinned, with CPU and memory accounting.

Every server is started in its own session (process group) under ``taskset``; CPU is the
utime + stime of every process in that group read from ``/proc`` (nginx: master + worker).
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def group_pids(pgid: int) -> list[int]:
    """Every live process whose process group is ``pgid``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:  # field 5 (pgrp); fields[0] is field 3 (state)
            pids.append(int(entry))
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of ``pids`` (seconds)."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15
    return total / CLK_TCK


def status_kib(pid: int, key: str) -> int:
    """A ``/proc/PID/status`` memory line (VmRSS, VmHWM) in KiB; 0 when gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def system_cpu() -> tuple[float, float, float]:
    """(busy, irq+softirq, idle) seconds summed over every CPU, from /proc/stat."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in first[1:9])
    return (
        (user + nice + system + irq + softirq + steal) / CLK_TCK,
        (irq + softirq) / CLK_TCK,
        (idle + iowait) / CLK_TCK,
    )


@dataclass
class Server:
    """A server process group started by the benchmark."""

    name: str
    argv: list[str]
    cpu: str  # taskset CPU list
    log: Path
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)

    def start(self) -> None:
        self.started_at = time.perf_counter()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                ["taskset", "-c", self.cpu, *self.argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self.env,
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def pids(self) -> list[int]:
        return group_pids(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pids())

    def peak_rss_kib(self) -> int:
        return sum(status_kib(pid, "VmHWM") for pid in self.pids())

    def rss_kib(self) -> int:
        return sum(status_kib(pid, "VmRSS") for pid in self.pids())

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the group (only the processes this benchmark started), then SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        except ProcessLookupError:
            pass


def http_get(
    port: int,
    path: str,
    *,
    tls: bool,
    host: str = "localhost",
    timeout: float = 2.0,
) -> tuple[int, bytes, bytes]:
    """One GET on a new connection (Connection: close): (status, head, body)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock: socket.socket = raw
    try:
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # a throw-away self-signed benchmark certificate
            sock = ctx.wrap_socket(raw, server_hostname="localhost")
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), head, body


def wait_for_200(
    port: int,
    path: str,
    *,
    tls: bool,
    server: Server,
    timeout: float = 20.0,
    interval: float = 0.002,
) -> float:
    """Poll until ``path`` answers 200; returns the seconds since the server was started."""
    deadline = time.monotonic() + timeout
    while True:
        if not server.alive():
            raise RuntimeError(f"{server.name} exited early; see {server.log}")
        try:
            status, _head, _body = http_get(port, path, tls=tls, timeout=1.0)
            if status == 200:
                return time.perf_counter() - server.started_at
        except (OSError, ValueError, IndexError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} did not answer 200 on {path} in {timeout}s")
        time.sleep(interval)

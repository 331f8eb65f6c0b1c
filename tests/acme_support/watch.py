"""Watchers for the replica tests: Pebble's log, each replica's served serial, and verified
handshakes through the balancer, each with the (monotonic) time things were first seen."""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from tests.acme_support.fixtures import NAME
from tests.acme_support.replicas import FRONTEND, Replica, served_certificate

_ORDER = re.compile(r'Added order "([^"]+)"')
_ISSUED = re.compile(r"Issued certificate serial ([0-9a-f]+) for order (\S+)")
_ACCOUNTS = re.compile(r"There are now (\d+) accounts")


@dataclass
class PebbleWatch:
    """Tails Pebble's log: each order, certificate and account count with the time it appeared."""

    log_path: Path
    orders: list[tuple[float, str]] = field(default_factory=list)
    issued: list[tuple[float, int]] = field(default_factory=list)  # (time, serial)
    accounts: int = 0
    _offset: int = 0
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False

    def poll(self) -> None:
        if not self.log_path.exists():
            return
        with self.log_path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1
        self._offset += end
        now = time.monotonic()
        for line in chunk[:end].decode(errors="replace").splitlines():
            if m := _ORDER.search(line):
                self.orders.append((now, m.group(1)))
            elif m := _ISSUED.search(line):
                self.issued.append((now, int(m.group(1), 16)))
            elif m := _ACCOUNTS.search(line):
                self.accounts = max(self.accounts, int(m.group(1)))

    async def _run(self) -> None:
        while not self._stopping:
            self.poll()
            await asyncio.sleep(0.02)

    def start(self) -> PebbleWatch:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def stop(self) -> None:
        self._stopping = True  # wait_for (3.11) may swallow a cancel: the loop checks this too
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.poll()


@dataclass
class SerialWatch:
    """Reads each replica's served serial directly, every ``interval``; the first time each
    serial was seen per replica, and the last serial seen."""

    replicas: list[Replica]
    port: int
    ctx: ssl.SSLContext
    interval: float = 0.1
    first_seen: dict[int, dict[int, float]] = field(default_factory=dict)
    current: dict[int, int] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stopping: bool = False

    async def _watch(self, replica: Replica) -> None:
        seen = self.first_seen.setdefault(replica.index, {})
        while not self._stopping:
            with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
                cert = await served_certificate(replica.host, self.port, self.ctx)
                seen.setdefault(cert.serial_number, time.monotonic())
                self.current[replica.index] = cert.serial_number
            await asyncio.sleep(self.interval)

    def start(self) -> SerialWatch:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._watch(r)) for r in self.replicas]
        return self

    async def stop(self) -> None:
        self._stopping = True  # wait_for (3.11) may swallow a cancel: loops check this too
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def serving(self, serial: int, replicas: list[Replica] | None = None) -> bool:
        return all(self.current.get(r.index) == serial for r in replicas or self.replicas)

    def last_replica_at(self, serial: int, replicas: list[Replica] | None = None) -> float:
        """When the last of ``replicas`` was first seen serving ``serial``."""
        return max(self.first_seen[r.index][serial] for r in replicas or self.replicas)


@dataclass
class HandshakeLoop:
    """Verified TLS through the balancer: a new connection (handshake + GET /keys) every
    ``interval``, plus one kept-alive connection asking every ``interval``. Failures are kept
    with their time; a loop is only meaningful once a certificate exists."""

    port: int
    ctx: ssl.SSLContext
    interval: float = 0.05
    ok: int = 0
    failures: list[tuple[float, str]] = field(default_factory=list)
    serials: set[int] = field(default_factory=set)
    kept_requests: int = 0
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stopping: bool = False

    async def _once(self) -> None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(FRONTEND, self.port, ssl=self.ctx, server_hostname=NAME), 5.0
        )
        try:
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            self.serials.add(x509.load_der_x509_certificate(der).serial_number)
            writer.write(
                f"GET /keys HTTP/1.1\r\nHost: {NAME}\r\nConnection: close\r\n\r\n".encode()
            )
            data = await asyncio.wait_for(reader.read(), 5.0)
        finally:
            writer.close()
        if not data.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"answer {data[:40]!r}")

    async def _new_connections(self) -> None:
        while not self._stopping:
            try:
                await self._once()
                self.ok += 1
            except Exception as exc:
                self.failures.append((time.monotonic(), f"{type(exc).__name__}: {exc}"))
            await asyncio.sleep(self.interval)

    async def _kept_alive(self) -> None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(FRONTEND, self.port, ssl=self.ctx, server_hostname=NAME), 5.0
        )
        try:
            while not self._stopping:
                try:
                    writer.write(f"GET /keys HTTP/1.1\r\nHost: {NAME}\r\n\r\n".encode())
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
                    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                    await asyncio.wait_for(reader.readexactly(length), 5.0)
                    if not head.startswith(b"HTTP/1.1 200"):
                        raise RuntimeError(f"kept-alive answer {head[:40]!r}")
                    self.kept_requests += 1
                except Exception as exc:
                    self.failures.append((time.monotonic(), f"kept-alive {type(exc).__name__}"))
                    return
                await asyncio.sleep(self.interval)
        finally:
            writer.close()

    async def start(self, *, kept_alive: bool = True) -> HandshakeLoop:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._new_connections())]
        if kept_alive:
            self._tasks.append(loop.create_task(self._kept_alive()))
        return self

    async def stop(self) -> None:
        self._stopping = True  # wait_for (3.11) may swallow a cancel: loops check this too
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

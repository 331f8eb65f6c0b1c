"""Helpers for integration tests: raw HTTP over loopback or unix sockets, provider start-up."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

from spire_oidc.config.model import Config, FileConfig
from spire_oidc.daemon import Provider, start


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def names(self) -> set[str]:
        return {k.lower() for k, _ in self.headers}


async def raw_http(
    target: str | tuple[str, int],
    request: bytes,
    *,
    ssl_ctx: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    timeout: float = 5.0,
) -> RawResponse:
    """Send one raw HTTP/1.x request (Connection: close is added) and parse the answer."""
    if isinstance(target, str):
        reader, writer = await asyncio.open_unix_connection(target)
    else:
        reader, writer = await asyncio.open_connection(
            target[0], target[1], ssl=ssl_ctx, server_hostname=server_hostname
        )
    head, _sep, rest = request.partition(b"\r\n\r\n")
    if b"connection:" not in head.lower():
        head += b"\r\nConnection: close"
    writer.write(head + b"\r\n\r\n" + rest)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), timeout)
    writer.close()
    return parse_response(data, head_only=request.startswith(b"HEAD "))


def parse_response(data: bytes, *, head_only: bool = False) -> RawResponse:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    _version, status, *reason = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    return RawResponse(int(status), reason[0] if reason else "", headers, body)


def get(path: str, host: str = "localhost", extra: str = "", method: str = "GET") -> bytes:
    hdr = f"Host: {host}\r\n" if host is not None else ""
    return f"{method} {path} HTTP/1.1\r\n{hdr}{extra}".rstrip("\r\n").encode() + b"\r\n\r\n"


async def wait_for(cond: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


def file_config(bundle: Path, **overrides: object) -> Config:
    base = Config(
        domains=("localhost", "domain.test"),
        source=FileConfig(path=str(bundle), poll_interval=0.05),
        insecure_addr="127.0.0.1:0",
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def tcp_target(provider: Provider) -> tuple[str, int]:
    host, _, port = provider.addresses[0].rpartition(":")
    return host.strip("[]"), int(port)


async def started(config: Config) -> Provider:
    return await start(config)


Starter = Callable[[Config], Awaitable[Provider]]

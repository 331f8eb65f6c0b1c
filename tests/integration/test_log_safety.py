"""Promise 5 of issue 8: no key material in any log line, even at debug level.

A provider logs JSON at debug level (request lines on) while keys rotate through every source
(a bundle file, the SPIRE agent's Workload API, the SPIRE server's API), upstream messages carry
private JWK members, symmetric and malformed keys, faults are injected, state is persisted and
the TLS certificate pair is replaced (once with a key that does not match). Then every log line,
and everything written to stdout/stderr, is scanned for PEM markers and for the values of every
JWK member (``x``, ``y``, ``n``, ``d``, ``p``, ``q``, ``dp``, ``dq``, ``qi``, ``k``) of the keys
involved, and for their DER bytes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import shutil
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from spire_oidc.acme.listener import PeekSite
from spire_oidc.acme.selector import CertificateTable
from spire_oidc.config.model import (
    Config,
    ServerAPIConfig,
    ServingCertFileConfig,
    WorkloadAPIConfig,
)
from spire_oidc.daemon import Provider
from spire_oidc.http.listeners import bind_tcp
from spire_oidc.logs import setup_logging
from tests.fakes.fake_server_api import FakeServerAPI, authority
from tests.fakes.fake_workload_api import FakeWorkloadAPI
from tests.fakes.keys import pkix
from tests.fakes.sink import short_socket_dir
from tests.integration.support import file_config, get, raw_http, tcp_target, wait_for
from tests.keyfactory import bundle_bytes, ec_key, public_jwk, rsa_key

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("restore_logging")]

Start = Callable[[Config], Awaitable[Provider]]
Private = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

TD = "spiffe://example.org"
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def private_jwk(kid: str, key: Private) -> dict[str, str]:
    """The full JWK of ``key``: public and private members (what must never be published)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        nums = key.private_numbers()
        size = (key.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384"}[key.curve.name]
        return {
            "use": "jwt-svid",
            "kty": "EC",
            "kid": kid,
            "crv": crv,
            "x": _b64(nums.public_numbers.x.to_bytes(size, "big")),
            "y": _b64(nums.public_numbers.y.to_bytes(size, "big")),
            "d": _b64(nums.private_value.to_bytes(size, "big")),
        }
    if isinstance(key, rsa.RSAPrivateKey):
        n = key.private_numbers()
        return {
            "use": "jwt-svid",
            "kty": "RSA",
            "kid": kid,
            "n": _int(n.public_numbers.n),
            "e": _int(n.public_numbers.e),
            "d": _int(n.d),
            "p": _int(n.p),
            "q": _int(n.q),
            "dp": _int(n.dmp1),
            "dq": _int(n.dmq1),
            "qi": _int(n.iqmp),
        }
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {
        "use": "jwt-svid",
        "kty": "OKP",
        "kid": kid,
        "crv": "Ed25519",
        "x": _b64(pub),
        "d": _b64(raw),
    }


class Secrets:
    """Every value that must not appear in a log line."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def add_key(self, kid: str, key: Private) -> dict[str, str]:
        full = private_jwk(kid, key)
        for member in ("x", "y", "n", *PRIVATE_MEMBERS):
            if member in full:
                self.values[f"{kid}.{member}"] = full[member]
        der = pkix(key)
        self.values[f"{kid}.der-b64"] = base64.b64encode(der[-24:]).decode()
        self.values[f"{kid}.der-hex"] = der[-16:].hex()
        self.values[f"{kid}.der-repr"] = repr(der[-12:])[2:-1]
        return full

    def add(self, name: str, value: str) -> None:
        self.values[name] = value

    def found_in(self, text: str) -> list[str]:
        found = [name for name, value in self.values.items() if value in text]
        for marker in ("-----BEGIN", "PRIVATE KEY", "BEGIN CERTIFICATE"):
            if marker in text:
                found.append(marker)
        return found


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_pair(ca: trustme.CA, cert_path: Path, key_path: Path, secrets: Secrets) -> None:
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    cert_path.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
    pem = leaf.private_key_pem.bytes()
    key_path.write_bytes(pem)
    body = b"".join(pem.split(b"\n")[1:-2])  # the base64 between the PEM markers
    secrets.add(f"tls-key-{len(secrets.values)}", body[20:60].decode())


async def test_no_key_material_in_debug_json_logs(
    run_provider: Start, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Through rotations on the file, Workload API and Server API sources, faults, persistence
    and certificate reloads, no log line (JSON, debug level) carries key material."""
    log_path = tmp_path / "odp.log"
    setup_logging(level="debug", fmt="json", path=str(log_path))
    secrets = Secrets()
    sock_dir = short_socket_dir(tmp_path)

    # -- the file source, over TLS, with request logging, persistence and certificate reloads --
    ca = trustme.CA()
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    _write_pair(ca, cert_path, key_path, secrets)
    bundle = tmp_path / "bundle.json"
    generations: list[list[dict[str, str]]] = []
    for g in range(3):
        keys: list[Private] = [
            ec_key(),
            ec_key(ec.SECP384R1()),
            rsa_key(fresh=True) if g == 0 else rsa_key(),
            ed25519.Ed25519PrivateKey.generate(),
        ]
        entries = [secrets.add_key(f"file-{g}-{i}", k) for i, k in enumerate(keys)]
        symmetric = {"use": "jwt-svid", "kty": "oct", "kid": f"oct-{g}", "k": _b64(os.urandom(32))}
        secrets.add(f"oct-{g}.k", symmetric["k"])
        broken = {**entries[0], "kid": f"broken-{g}", "y": entries[1]["y"]}  # not on the curve
        generations.append([*entries, symmetric, broken])
    _write_atomic(bundle, bundle_bytes(generations[0]))
    scf = ServingCertFileConfig(
        cert_file_path=str(cert_path),
        key_file_path=str(key_path),
        addr="127.0.0.1:0",
        host="127.0.0.1",
        port=0,
        file_sync_interval=0.05,
    )
    by_file = await run_provider(
        file_config(
            bundle,
            insecure_addr="",
            serving_cert_file=scf,
            log_requests=True,
            log_format="json",
            log_level="debug",
            state_dir=str(tmp_path / "state"),
        )
    )
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    for g, entries in enumerate(generations):
        _write_atomic(bundle, bundle_bytes(entries))
        await wait_for(
            lambda g=g: (
                by_file.store.current is not None
                and f"file-{g}-0" in by_file.store.current.keys.kids
            ),
            what=f"file generation {g}",
        )
        r = await raw_http(
            tcp_target(by_file), get("/keys"), ssl_ctx=ctx, server_hostname="localhost"
        )
        assert r.status == 200
        served = json.loads(r.body)["keys"]
        assert not any(set(PRIVATE_MEMBERS) & set(k) for k in served)  # public members only
        assert all(k["kid"].startswith("file-") for k in served)
        _write_atomic(bundle, b'{"keys": [' + json.dumps(entries[0]).encode()[:40])  # truncated
        await wait_for(lambda: by_file.store.last_error is not None, what="fault")
    reloads = by_file.reloader.reloads if by_file.reloader else 0
    _write_pair(ca, cert_path, key_path, secrets)
    await wait_for(lambda: by_file.reloader is not None and by_file.reloader.reloads > reloads)
    other = trustme.CA().issue_cert("localhost")
    key_path.write_bytes(other.private_key_pem.bytes())  # does not match: the reload fails
    secrets.add(
        "tls-mismatch", b"".join(other.private_key_pem.bytes().split(b"\n")[1:-2])[20:60].decode()
    )
    await asyncio.sleep(0.2)

    # -- the Workload API: rotations pushed on the stream, private members and garbage --------
    agent = FakeWorkloadAPI(sock_dir / "agent.sock")
    await agent.start()
    server = FakeServerAPI(sock_dir / "server.sock")
    await server.start()
    try:
        wl_keys = [(f"wl-{i}", k) for i, k in enumerate([ec_key(), rsa_key(), ec_key()])]
        full = {kid: secrets.add_key(kid, k) for kid, k in wl_keys}
        agent.set_jwks(TD, json.dumps({"keys": [full["wl-0"], full["wl-1"]]}).encode())
        by_agent = await run_provider(
            file_config(
                bundle,
                log_requests=True,
                source=WorkloadAPIConfig(
                    socket_path=agent.socket_path, trust_domain=TD, poll_interval=0.2
                ),
            )
        )
        await wait_for(lambda: by_agent.store.current is not None, what="agent keys")
        agent.push({TD: json.dumps({"keys": [{**full["wl-2"], "x": "AAAA"}]}).encode()})
        agent.push_garbage(json.dumps(full["wl-2"]).encode())
        agent.set_jwks(TD, json.dumps({"keys": [full["wl-1"], full["wl-2"]]}).encode())
        await wait_for(
            lambda: (
                by_agent.store.current is not None and "wl-2" in by_agent.store.current.keys.kids
            ),
            what="agent rotation",
        )
        assert (await raw_http(tcp_target(by_agent), get("/keys"))).status == 200

        # -- the Server API: PKIX DER authorities, rotations, a malformed key ------------------
        srv_keys = [(f"srv-{i}", k) for i, k in enumerate([ec_key(), rsa_key(), ec_key()])]
        for kid, k in srv_keys:
            secrets.add_key(kid, k)
        server.set_bundle([authority(kid, pkix(k)) for kid, k in srv_keys[:2]])
        by_server = await run_provider(
            file_config(
                bundle,
                log_requests=True,
                source=ServerAPIConfig(address=server.address, poll_interval=0.05),
            )
        )
        await wait_for(lambda: by_server.store.current is not None, what="server keys")
        bad_der = pkix(srv_keys[2][1])[:-5]
        server.set_bundle(
            [authority(kid, pkix(k)) for kid, k in srv_keys[1:]] + [authority("srv-bad", bad_der)]
        )
        await wait_for(
            lambda: (
                by_server.store.current is not None and "srv-2" in by_server.store.current.keys.kids
            ),
            what="server rotation",
        )
        server.garbage = True
        await wait_for(lambda: by_server.store.last_error is not None, what="server fault")
        assert (await raw_http(tcp_target(by_server), get("/keys"))).status == 200
        for provider in (by_server, by_agent, by_file):
            await provider.stop()
    finally:
        await agent.stop()
        await server.stop()
        if sock_dir != tmp_path:
            shutil.rmtree(sock_dir, ignore_errors=True)

    text = log_path.read_text()
    lines = text.splitlines()
    records: list[dict[str, Any]] = [json.loads(line) for line in lines]  # every line is JSON
    events = {r["event"] for r in records}
    levels = {r["level"] for r in records}
    assert "debug" in levels and len(records) > 50
    assert {
        "keys_updated",
        "bundle_key_skipped",
        "bundle_file_load_failed",
        "certificate_reloaded",
        "certificate_reload_failed",
        "request",
        "workload_api_bundle_malformed",
        "server_api_fetch_failed",
    } <= events, events
    for line in lines:
        assert not secrets.found_in(line), (secrets.found_in(line), line[:300])
    out, err = capfd.readouterr()
    assert not secrets.found_in(out + err), secrets.found_in(out + err)
    # The scan is not vacuous: the values it looks for were in what the provider was given.
    assert len(secrets.found_in(json.dumps(generations))) >= 40
    assert secrets.found_in(key_path.read_text())


# -- Issue 12.8: controls and line separators in client-chosen text --------------------------------
# Characters that end a line or drive a terminal: none may reach a log line unescaped.
_RAW_CONTROLS = ("\x1b", "\x07", "\x85", "\u2028", "\u2029", "\x9b", "\r", "\x00", "\u202e")


def _assert_no_raw_controls(text: str, fmt: str) -> list[str]:
    lines = text.split("\n")
    assert lines[-1] == ""
    lines = lines[:-1]
    for line in lines:
        assert not [c for c in _RAW_CONTROLS if c in line], repr(line)
        if fmt == "json":
            assert isinstance(json.loads(line), dict)
    # str.splitlines() also breaks at U+0085, U+2028, U+2029 and other separators: the same lines.
    assert text.splitlines() == lines
    return lines


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_header_line_separators_and_escapes_are_escaped(
    run_provider: Start, tmp_path: Path, fmt: str
) -> None:
    """U+0085, U+2028/2029, ESC sequences and bidi overrides in a header never reach the log raw."""
    buf = io.StringIO()
    setup_logging(level="debug", fmt=fmt, stream=buf)
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(bundle_bytes([public_jwk("kid-a", ec_key())]))
    p = await run_provider(file_config(bundle, log_requests=True, log_format=fmt))
    await wait_for(lambda: p.store.current is not None, what="keys")
    agent = "x\u0085FAKE\u2028line\u2029two\u009b2J\u202eevil".encode()
    request = b"GET /keys HTTP/1.1\r\nHost: localhost\r\nUser-Agent: " + agent + b"\r\n\r\n"
    r = await raw_http(tcp_target(p), request)
    assert r.status == 200
    await p.stop()
    lines = _assert_no_raw_controls(buf.getvalue(), fmt)
    request_lines = [line for line in lines if "FAKE" in line]
    assert len(request_lines) == 1
    escaped = r"x\x85FAKE\u2028line\u2029two\x9b2J\u202eevil"
    if fmt == "json":
        assert json.loads(request_lines[0])["user_agent"] == escaped
    else:
        assert f"user_agent={escaped}" in request_lines[0]


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_acme_sni_terminal_escapes_are_escaped(fmt: str) -> None:
    """A ClientHello whose SNI carries ESC/BEL sequences logs acme_tls_refused with them escaped."""
    buf = io.StringIO()
    setup_logging(level="debug", fmt=fmt, stream=buf)
    evil = b"\x1b[2J\x1b]0;pwned\x07\x1b[1AX.test"
    placeholder = b"a" * (len(evil) - 5) + b".test"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=placeholder.decode())
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read().replace(placeholder, evil)  # same length: every length field holds

    runner = web.ServerRunner(web.Server(lambda r: web.Response()), shutdown_timeout=1.0)
    await runner.setup()
    sock = bind_tcp("127.0.0.1:0")[0]
    port = sock.getsockname()[1]
    peek = PeekSite(runner, sock, CertificateTable(["oidc.test"], wait_timeout=0.2).choose)
    await peek.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(hello)
        await writer.drain()
        with contextlib.suppress(ConnectionResetError):
            await asyncio.wait_for(reader.read(), 5)  # the alert, then close
        writer.close()
        await wait_for(lambda: peek.refused == 1, what="the refusal")
    finally:
        await runner.cleanup()
    lines = _assert_no_raw_controls(buf.getvalue(), fmt)
    refused = [line for line in lines if "acme_tls_refused" in line]
    assert len(refused) == 1
    assert "pwned" in refused[0] and "X.test" in refused[0]

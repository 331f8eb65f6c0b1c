"""SIGHUP on the real process: reopen ``log_path`` after logrotate, force a certificate reload."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme
from cryptography import x509

from tests.keyfactory import bundle_bytes, ec_key, public_jwk

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(cond: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def _peer_serial(port: int, ca: trustme.CA) -> int | None:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=2) as raw,
            ctx.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except OSError:
        return None
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _write(leaf: trustme.LeafCert, cert: Path, key: Path) -> None:
    cert.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())


def test_sighup_reopens_log_and_reloads_certificate(tmp_path: Path) -> None:
    """SIGHUP writes to a fresh log_path after a logrotate move and serves the new certificate pair
    even when the files kept their mtimes; a bad pair on SIGHUP keeps the old one."""
    ca = trustme.CA()
    first, second = ca.issue_cert("localhost"), ca.issue_cert("localhost")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    _write(first, cert, key)
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(bundle_bytes([public_jwk("k", ec_key())]))
    log = tmp_path / "provider.log"
    port = _free_port()
    conf = tmp_path / "provider.conf"
    conf.write_text(
        f"""
log_path = "{log}"
domains = ["localhost"]
serving_cert_file {{
    cert_file_path = "{cert}"
    key_file_path = "{key}"
    addr = "127.0.0.1:{port}"
    file_sync_interval = "1h"
}}
file {{
    path = "{bundle}"
}}
"""
    )
    stderr = tmp_path / "stderr.txt"
    with stderr.open("wb") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "spire_oidc", "-config", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=err_file,
            stderr=err_file,
        )
    try:
        _wait(lambda: _peer_serial(port, ca) is not None, "the TLS listener")
        assert _peer_serial(port, ca) == _serial(first)

        # logrotate (create mode): the file is moved away; the process must write a new one.
        log.rename(tmp_path / "provider.log.1")
        # A new pair whose files keep the old mtimes: only a forced reload picks it up.
        mtimes = (cert.stat().st_mtime_ns, key.stat().st_mtime_ns)
        _write(second, cert, key)
        os.utime(cert, ns=(mtimes[0], mtimes[0]))
        os.utime(key, ns=(mtimes[1], mtimes[1]))

        proc.send_signal(signal.SIGHUP)
        _wait(lambda: log.exists() and "sighup_received" in log.read_text(), "sighup_received")
        _wait(lambda: _peer_serial(port, ca) == _serial(second), "the new certificate")
        assert stat.S_IMODE(log.stat().st_mode) == 0o640
        assert "sighup_received" not in (tmp_path / "provider.log.1").read_text()
        assert "certificate_reloaded" in log.read_text()

        key.write_text("not a key\n")
        proc.send_signal(signal.SIGHUP)
        _wait(lambda: "certificate_reload_failed" in log.read_text(), "certificate_reload_failed")
        assert _peer_serial(port, ca) == _serial(second)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, stderr.read_text()


def _serial(leaf: trustme.LeafCert) -> int:
    return x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()).serial_number

"""Promise 5 of issue 8: TLS configured safely, private files owner-only.

The ``serving_cert_file`` listener is scanned twice: by sslyze (a TLS scanner from PyPI whose
nassl carries a legacy OpenSSL, so it can also offer SSL 2/3, RC4, 3DES and EXPORT suites), and
by Python's own ssl client, which tries every TLS 1.2 suite of the local OpenSSL one at a time.
Only TLS 1.2 and 1.3 with forward-secret AEAD suites may be accepted. sslyze lives in its own
virtualenv (scripts/install-sslyze.sh; it pins an older cryptography than the project's).

File modes: everything the code writes that is private (the persisted state, the demo signing
key, the ACME cache) is owner-only, even under ``umask 0`` and over a planted file.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import stat
import warnings
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme
from structlog.testing import capture_logs

from spire_oidc import demo
from spire_oidc.acme.cache import ACCOUNT_KEY, DirCache
from spire_oidc.config.model import Config, ServingCertFileConfig
from spire_oidc.core import persist
from spire_oidc.core.keys import JWTKey, KeySet
from spire_oidc.daemon import Provider
from tests.integration.support import file_config, tcp_target, wait_for
from tests.keyfactory import bundle_bytes, ec_key, public_jwk, rsa_key
from tests.paths import REPO

pytestmark = pytest.mark.integration

Start = Callable[[Config], Awaitable[Provider]]

SSLYZE = REPO / ".venv" / "tools" / "sslyze" / "bin" / "sslyze"
KEY_TYPES = {"ecdsa": trustme.KeyType.ECDSA, "rsa": trustme.KeyType.RSA}
WEAK_MARKERS = ("RC4", "3DES", "DES", "NULL", "EXPORT", "EXP", "anon", "MD5", "_CBC_", "PSK")


@pytest.fixture(params=sorted(KEY_TYPES))
async def tls_provider(
    request: pytest.FixtureRequest, run_provider: Start, tmp_path: Path
) -> tuple[Provider, trustme.CA]:
    """A provider serving TLS from certificate files (an ECDSA or an RSA certificate)."""
    ca = trustme.CA(key_type=KEY_TYPES[request.param])
    cert = ca.issue_cert("localhost", "127.0.0.1", key_type=KEY_TYPES[request.param])
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_path.write_bytes(b"".join(b.bytes() for b in cert.cert_chain_pems))
    key_path.write_bytes(cert.private_key_pem.bytes())
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(bundle_bytes([public_jwk("k1", ec_key())]))
    scf = ServingCertFileConfig(
        cert_file_path=str(cert_path),
        key_file_path=str(key_path),
        addr="127.0.0.1:0",
        host="127.0.0.1",
        port=0,
    )
    provider = await run_provider(file_config(bundle, insecure_addr="", serving_cert_file=scf))
    await wait_for(lambda: provider.store.current is not None, what="keys")
    return provider, ca


def _sslyze() -> Path:
    if not SSLYZE.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{SSLYZE} is missing: scripts/test.sh runs scripts/install-sslyze.sh")
        pytest.skip("sslyze is not installed (scripts/install-sslyze.sh)")
    return SSLYZE


async def _scan(target: tuple[str, int], out: Path) -> dict[str, Any]:
    """Run sslyze against ``target``; the scan results by command name."""
    commands = [
        *("--certinfo", "--sslv2", "--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2", "--tlsv1_3"),
        *("--compression", "--early_data", "--openssl_ccs", "--fallback", "--heartbleed"),
        *("--robot", "--reneg", "--elliptic_curves", "--ems"),
    ]
    proc = await asyncio.create_subprocess_exec(
        str(_sslyze()),
        *commands,
        f"--json_out={out}",
        f"{target[0]}:{target[1]}{{localhost}}",  # host:port{SNI name}
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, output.decode(errors="replace")[-2000:]
    report = json.loads(out.read_text())
    (server,) = report["server_scan_results"]
    assert server["scan_status"] == "COMPLETED", server
    results: dict[str, Any] = {}
    for name, attempt in server["scan_result"].items():
        if attempt["status"] == "NOT_SCHEDULED":
            continue
        assert attempt["status"] == "COMPLETED", (name, attempt.get("error_trace"))
        results[name] = attempt["result"]
    return results


async def test_sslyze_finds_only_tls12_and_13_with_forward_secret_aead_suites(
    tls_provider: tuple[Provider, trustme.CA], tmp_path: Path
) -> None:
    """sslyze sees no SSL 2/3 or TLS 1.0/1.1, only ECDHE AEAD suites in TLS 1.2, no compression,
    no 0-RTT, secure renegotiation only, and none of the known OpenSSL vulnerabilities."""
    provider, _ca = tls_provider
    r = await _scan(tcp_target(provider), tmp_path / "sslyze.json")

    for version in ("ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1"):
        assert r[f"{version}_cipher_suites"]["accepted_cipher_suites"] == [], version
    tls12 = r["tls_1_2_cipher_suites"]["accepted_cipher_suites"]
    tls13 = r["tls_1_3_cipher_suites"]["accepted_cipher_suites"]
    assert tls12 and tls13
    for accepted in tls12 + tls13:
        suite = accepted["cipher_suite"]
        name = suite["name"]
        assert not suite["is_anonymous"], name
        assert not any(marker in name for marker in WEAK_MARKERS), name
        assert name.startswith(("TLS_ECDHE_", "TLS_AES_", "TLS_CHACHA20_")), name
        assert "_GCM_" in name or "CHACHA20_POLY1305" in name, name  # AEAD only
        assert suite["key_size"] >= 128, name
        ephemeral = accepted["ephemeral_key"]
        assert ephemeral is not None and ephemeral["type_name"] == "ECDH", name  # forward secret
    rejected_12 = {
        s["cipher_suite"]["name"] for s in r["tls_1_2_cipher_suites"]["rejected_cipher_suites"]
    }
    # The scanner really offered the weak families (its legacy OpenSSL has them) and was refused.
    for family in ("RC4", "3DES", "NULL", "EXPORT", "anon", "_CBC_"):
        assert any(family in name for name in rejected_12), family

    assert r["tls_compression"]["supports_compression"] is False
    assert r["tls_1_3_early_data"]["supports_early_data"] is False
    assert r["openssl_ccs_injection"]["is_vulnerable_to_ccs_injection"] is False
    assert r["heartbleed"]["is_vulnerable_to_heartbleed"] is False
    assert r["tls_fallback_scsv"]["supports_fallback_scsv"] is True
    assert r["robot"]["robot_result"] in (
        "NOT_VULNERABLE_NO_ORACLE",
        "NOT_VULNERABLE_RSA_NOT_SUPPORTED",
    )
    reneg = r["session_renegotiation"]
    assert reneg["supports_secure_renegotiation"] is True
    assert reneg["is_vulnerable_to_client_renegotiation_dos"] is False
    assert r["tls_extended_master_secret"]["supports_ems_extension"] is True
    curves = {c["name"] for c in r["elliptic_curves"]["supported_curves"]}
    assert curves and curves <= {"X25519", "X448", "secp256r1", "secp384r1", "secp521r1"}
    deployments = r["certificate_info"]["certificate_deployments"]
    assert deployments and deployments[0]["received_certificate_chain"]


# -- the same with Python's ssl client ---------------------------------------------------------------
def _client_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(ctx)
    return ctx


def _handshake(target: tuple[str, int], ctx: ssl.SSLContext) -> tuple[str, str] | None:
    """(version, cipher) of a handshake with ``ctx``, or None when the server refuses it."""
    with socket.create_connection(target, timeout=5) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                cipher = tls.cipher()
                assert cipher is not None
                return cipher[1], cipher[0]
        except (ssl.SSLError, ConnectionError):
            return None


def _suites_of_local_openssl() -> list[dict[str, Any]]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    return [c for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"]


def _python_scan(target: tuple[str, int], ca: trustme.CA) -> dict[str, object]:
    """Try every TLS <= 1.2 suite alone, old protocol versions, and TLS 1.3 (blocking)."""
    accepted: dict[str, str] = {}
    refused: list[str] = []
    for suite in _suites_of_local_openssl():
        ctx = _client_context(ca)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(f"{suite['name']}:@SECLEVEL=0")
        result = _handshake(target, ctx)
        if result is None:
            refused.append(suite["name"])
        else:
            accepted[suite["name"]] = suite["description"]
    old: dict[str, tuple[str, str] | None] = {}
    for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        ctx = _client_context(ca)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ctx.maximum_version = version
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        old[version.name] = _handshake(target, ctx)
    ctx = _client_context(ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return {"accepted": accepted, "refused": refused, "old": old, "tls13": _handshake(target, ctx)}


async def test_python_ssl_client_scan_accepts_only_forward_secret_aead_suites(
    tls_provider: tuple[Provider, trustme.CA],
) -> None:
    """Every TLS 1.2 suite of the local OpenSSL tried alone: only ECDHE + AEAD ones are accepted;
    NULL, anonymous, static-RSA and CBC suites, TLS 1.0 and TLS 1.1 are refused; TLS 1.3 works."""
    provider, ca = tls_provider
    scan = await asyncio.to_thread(_python_scan, tcp_target(provider), ca)
    accepted = scan["accepted"]
    assert isinstance(accepted, dict) and accepted
    for description in accepted.values():
        assert "Kx=ECDH" in description and "Mac=AEAD" in description, description
        assert "Au=None" not in description, description
    refused = scan["refused"]
    assert isinstance(refused, list)
    # Each weak family the local OpenSSL has was really tried, and refused.
    for family in ("NULL", "ADH-", "AECDH-", "CAMELLIA", "PSK"):
        assert any(family in name for name in refused), f"no {family} suite was tried"
    assert any(name.startswith("DHE-") for name in refused)  # finite-field DHE
    assert "AES128-GCM-SHA256" in refused  # static RSA key exchange: no forward secrecy
    assert {"ECDHE-ECDSA-AES128-SHA256", "ECDHE-RSA-AES256-SHA384"} <= set(refused)  # CBC
    assert scan["old"] == {"TLSv1": None, "TLSv1_1": None}
    assert scan["tls13"] is not None and scan["tls13"][0] == "TLSv1.3"


# -- private files -------------------------------------------------------------------------------------
@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_persisted_state_is_owner_only(tmp_path: Path) -> None:
    """The state directory is created 0700 and the state file written 0600, even under umask 0,
    and holds public members only."""
    state = tmp_path / "state"
    key = rsa_key()
    keys = KeySet((JWTKey(kid="k1", public_key=key.public_key()),))
    with umask(0):
        persist.save(str(state), keys, mod_time=1.0, now=2.0)
        persist.save(str(state), keys, mod_time=1.0, now=3.0)  # the replacement too
    assert _mode(state) == 0o700
    assert _mode(state / persist.STATE_FILE) == 0o600
    assert [p.name for p in state.iterdir()] == [persist.STATE_FILE]  # no temporary file left
    doc = json.loads((state / persist.STATE_FILE).read_text())
    assert all(not ({"d", "p", "q", "dp", "dq", "qi", "k"} & set(k)) for k in doc["keys"])


def test_demo_signing_key_is_owner_only_even_over_a_planted_file(tmp_path: Path) -> None:
    """The demo signing key is 0600 under umask 0, even when a world-readable temporary file or
    a symlink was planted where the key is staged."""
    directory = tmp_path / "demo"
    directory.mkdir()
    files = demo.demo_files(str(directory))
    planted = files.key.with_name(files.key.name + ".tmp")
    planted.write_bytes(b"")
    os.chmod(planted, 0o644)
    with umask(0):
        demo.ensure_demo(str(directory))
    assert _mode(files.key) == 0o600
    assert b"PRIVATE KEY" in files.key.read_bytes()

    files.key.unlink()
    elsewhere = tmp_path / "elsewhere.pem"
    planted.symlink_to(elsewhere)
    with umask(0):
        demo.ensure_demo(str(directory))
    assert _mode(files.key) == 0o600 and not elsewhere.exists()


def test_acme_cache_is_owner_only(tmp_path: Path) -> None:
    """The ACME cache directory is created 0700 and every entry written 0600 under umask 0, also
    over an existing world-readable entry; a permissive existing directory is warned about."""
    cache_dir = tmp_path / "acme"
    cache = DirCache(str(cache_dir))
    with umask(0):
        cache.put(ACCOUNT_KEY, b"-----BEGIN EC PRIVATE KEY-----\n...\n")
        (cache_dir / "localhost").write_bytes(b"old")
        os.chmod(cache_dir / "localhost", 0o644)
        cache.put("localhost", b"-----BEGIN EC PRIVATE KEY-----\n...\n")
    assert _mode(cache_dir) == 0o700
    for entry in cache_dir.iterdir():
        assert _mode(entry) == 0o600, entry
    assert sorted(p.name for p in cache_dir.iterdir()) == [ACCOUNT_KEY, "localhost"]

    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    with capture_logs() as logs:
        DirCache(str(loose)).put("x", b"secret")
    assert any(e["event"] == "acme_cache_dir_permissive" for e in logs), logs
    assert _mode(loose / "x") == 0o600

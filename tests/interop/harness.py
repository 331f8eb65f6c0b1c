"""Interop harness: the installed provider as a subprocess over TLS, JWT-SVID minting, and the
relying-party verifiers (PyJWT in-process, the Node libraries in one process per batch).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jwt
import trustme

from tests.keyfactory import PrivateKey, bundle_bytes, public_jwk
from tests.paths import REPO

EXE = shutil.which("oidc-discovery-provider", path=str(Path(sys.executable).parent)) or ""
NODE_DIR = REPO / "tests" / "interop" / "node"
NODE_LIBRARIES = ("jose", "infisical", "openid-client")
SUBJECT = "spiffe://example.org/ns/prod/sa/api"
AUDIENCE = "api://AzureADTokenExchange"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class TLSFiles:
    """A test CA and a serving certificate for ``127.0.0.1`` and ``localhost``."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def create(cls, directory: Path) -> TLSFiles:
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        directory.mkdir(parents=True, exist_ok=True)
        files = cls(directory / "ca.pem", directory / "tls.crt", directory / "tls.key")
        ca.cert_pem.write_to_path(str(files.ca_file))
        files.cert_file.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
        files.key_file.write_bytes(leaf.private_key_pem.bytes())
        return files

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: PrivateKey
    alg: str


def write_bundle(path: Path, keys: Iterable[SigningKey]) -> None:
    """Write a SPIFFE bundle atomically (the file source must never read half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(bundle_bytes([public_jwk(k.kid, k.private) for k in keys]))
    os.replace(tmp, path)


@dataclass
class ProviderProcess:
    """The installed ``oidc-discovery-provider`` serving a bundle file over TLS on loopback."""

    directory: Path
    tls: TLSFiles
    port: int
    extra_config: str = ""
    server_path_prefix: str = ""
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.directory / "provider.log"

    @property
    def bundle(self) -> Path:
        return self.directory / "bundle.json"

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        """The issuer the provider serves for Host 127.0.0.1:port."""
        return self.origin + self.server_path_prefix

    def config_text(self) -> str:
        prefix = (
            f'server_path_prefix = "{self.server_path_prefix}"\n' if self.server_path_prefix else ""
        )
        return (
            'log_format = "json"\n'
            'domains = ["127.0.0.1", "localhost"]\n'
            f"{prefix}{self.extra_config}\n"
            "serving_cert_file {\n"
            f'    cert_file_path = "{self.tls.cert_file}"\n'
            f'    key_file_path = "{self.tls.key_file}"\n'
            f'    addr = "127.0.0.1:{self.port}"\n'
            "}\n"
            "file {\n"
            f'    path = "{self.bundle}"\n'
            '    poll_interval = "50ms"\n'
            "}\n"
        )

    def start(self, keys: Sequence[SigningKey]) -> None:
        write_bundle(self.bundle, keys)
        config = self.directory / "provider.conf"
        config.write_text(self.config_text())
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [EXE, "-config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_for_kids([k.kid for k in keys])

    def fetch(self, path: str) -> tuple[int, bytes]:
        req = urllib.request.Request(self.origin + path)
        try:
            with urllib.request.urlopen(req, context=self.tls.client_context(), timeout=5) as r:
                return int(r.status), bytes(r.read())
        except urllib.error.HTTPError as err:
            return int(err.code), err.read()

    def keys_path(self) -> str:
        return (self.server_path_prefix or "") + "/keys"

    def wait_for_kids(self, kids: Sequence[str], timeout: float = 15.0) -> None:
        """Block until ``/keys`` serves exactly ``kids`` (the provider started or re-read)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"provider exited {self.proc.returncode}: {self.log_text()}")
            try:
                status, body = self.fetch(self.keys_path())
            except OSError as exc:
                last = str(exc)
            else:
                if status == 200 and sorted(k["kid"] for k in json.loads(body)["keys"]) == sorted(
                    kids
                ):
                    return
                last = f"{status} {body[:200]!r}"
            time.sleep(0.05)
        raise AssertionError(f"/keys never served {list(kids)} (last: {last}): {self.log_text()}")

    def rotate(self, keys: Sequence[SigningKey]) -> None:
        write_bundle(self.bundle, keys)
        self.wait_for_kids([k.kid for k in keys])

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def mint(
    key: SigningKey,
    *,
    issuer: str,
    audience: str = AUDIENCE,
    subject: str = SUBJECT,
    kid: str | None = None,
    lifetime: int = 300,
    now: float | None = None,
) -> str:
    """A JWT-SVID-shaped token: sub (SPIFFE ID), aud, iss, exp, iat; kid and alg in the header."""
    iat = int(time.time() if now is None else now)
    claims = {"sub": subject, "aud": [audience], "iss": issuer, "exp": iat + lifetime, "iat": iat}
    headers = {"kid": key.kid if kid is None else kid, "typ": "JWT"}
    return jwt.encode(claims, key.private, algorithm=key.alg, headers=headers)  # type: ignore[arg-type]


# -- PyJWT: PyJWKClient on the jwks_uri read from the discovery document --------------------


def verify_pyjwt(token: str, *, issuer: str, audience: str, ctx: ssl.SSLContext) -> str:
    """The empty string when PyJWT accepts the token, else the exception class that rejected it."""
    try:
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        with urllib.request.urlopen(url, context=ctx, timeout=5) as r:
            doc = json.load(r)
        client = jwt.PyJWKClient(doc["jwks_uri"], cache_jwk_set=False, ssl_context=ctx, timeout=5)
        signing_key = client.get_signing_key_from_jwt(token)
        jwt.decode(
            token,
            signing_key.key,
            algorithms=["RS256", "ES256", "ES384"],
            audience=audience,
            issuer=issuer,
        )
    except (jwt.PyJWTError, OSError) as exc:
        return type(exc).__name__
    return ""


# -- Node: one process per batch -------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One verification: which library, what the relying party is configured with, the token."""

    id: str
    library: str
    issuer: str
    token: str
    audience: str = AUDIENCE
    subject: str = ""


def node_available() -> str:
    """The reason the Node side cannot run, or "" when it can."""
    if shutil.which("node") is None:
        return "node is not installed (scripts/install-node-deps.sh installs it)"
    if not (NODE_DIR / "node_modules" / "jose").is_dir():
        return "tests/interop/node/node_modules is missing: run scripts/install-node-deps.sh"
    return ""


def run_node(cases: Sequence[Case], ca_file: Path, timeout: float = 60.0) -> dict[str, str]:
    """Run every case in one Node process; returns case id -> "" (accepted) or the reason."""
    payload = {
        "ca_file": str(ca_file),
        "cases": [
            {
                "id": c.id,
                "library": c.library,
                "issuer": c.issuer,
                "audience": c.audience,
                "token": c.token,
                "subject": c.subject,
            }
            for c in cases
        ],
    }
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(ca_file), "NODE_NO_WARNINGS": "1"}
    proc = subprocess.run(
        ["node", str(NODE_DIR / "verify.mjs")],
        input=json.dumps(payload).encode(),
        capture_output=True,
        timeout=timeout,
        cwd=NODE_DIR,
        env=env,
    )
    if proc.returncode != 0:
        raise AssertionError(f"node exited {proc.returncode}: {proc.stderr.decode()[-3000:]}")
    results = json.loads(proc.stdout)
    return {r["id"]: ("" if r["ok"] else r["reason"]) for r in results}

"""``oidc-discovery-provider demo``: a self-contained provider on a generated key, no SPIRE needed.

On first run it writes into the demo directory a P-256 signing key (0600), a SPIFFE bundle holding
its public half as a JWT authority, and a SPIRE-shaped config (``file`` source,
``insecure_addr = "127.0.0.1:8080"``, ``allow_insecure_scheme = true``). ``demo -mint`` signs a
JWT-SVID with that key, so a token can be verified against the running provider at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from spire_oidc.core.keys import JWTKey, b64url, jwk_members
from spire_oidc.errors import ProviderError

DEMO_ADDR = "127.0.0.1:8080"
DEMO_TRUST_DOMAIN = "example.org"

CONFIG_TEMPLATE = """\
# Written by `oidc-discovery-provider demo`: a SPIRE-shaped config serving a demo key.
log_level = "info"
domains = ["localhost", "127.0.0.1"]
insecure_addr = "{addr}"
allow_insecure_scheme = true

file {{
    path = "{bundle}"
    poll_interval = "5s"
}}
"""


@dataclass(frozen=True)
class DemoFiles:
    directory: Path
    key: Path
    bundle: Path
    config: Path


def demo_files(directory: str) -> DemoFiles:
    d = Path(directory).resolve()
    return DemoFiles(
        d, d / "signing-key.pem", d / "bundle.json", d / "oidc-discovery-provider.conf"
    )


def _write_private(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    # A leftover temporary file keeps its own mode (and maybe someone else's open descriptor):
    # remove it and create a fresh one with ``mode`` (O_EXCL also refuses a planted symlink).
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _kid(key: ec.EllipticCurvePublicKey) -> str:
    # RFC 7638 JWK thumbprint: stable, and unique per key.
    nums = key.public_numbers()
    canon = json.dumps(
        {
            "crv": "P-256",
            "kty": "EC",
            "x": b64url(nums.x.to_bytes(32, "big")),
            "y": b64url(nums.y.to_bytes(32, "big")),
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    digest = hashes.Hash(hashes.SHA256())
    digest.update(canon)
    return b64url(digest.finalize())


_ADDR_LINE = re.compile(r'(?m)^insecure_addr = "([^"\n]*)"$')


class DemoError(ProviderError):
    """The demo directory cannot be used as asked (the message says why and how to reset)."""


def set_demo_addr(files: DemoFiles, addr: str) -> str | None:
    """Point an existing demo config at ``addr``; returns the address it had when it changed,
    None when it already listened there. Only the ``insecure_addr`` line is rewritten, so other
    edits to the config survive."""
    text = files.config.read_text()
    match = _ADDR_LINE.search(text)
    if match is None:
        raise DemoError(
            f"{files.config} has no insecure_addr line to change: edit it by hand, or remove "
            f"{files.directory} to start a fresh demo"
        )
    if match.group(1) == addr:
        return None
    new = text[: match.start(1)] + addr + text[match.end(1) :]
    _write_private(files.config, new.encode(), 0o644)
    return match.group(1)


def ensure_demo(directory: str, *, addr: str = DEMO_ADDR) -> tuple[DemoFiles, bool]:
    """Create the demo files when missing; returns (files, created)."""
    files = demo_files(directory)
    if files.key.exists() and files.bundle.exists() and files.config.exists():
        return files, False
    files.directory.mkdir(parents=True, exist_ok=True)
    if files.key.exists():
        private = load_key(files)
    else:
        private = ec.generate_private_key(ec.SECP256R1())
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(files.key, pem, 0o600)
    public = private.public_key()
    jwk = {**jwk_members(JWTKey(kid=_kid(public), public_key=public), set_key_use=False)}
    jwk.pop("alg", None)
    jwk["use"] = "jwt-svid"
    bundle = {"spiffe_sequence": 1, "keys": [jwk]}
    _write_private(files.bundle, json.dumps(bundle, indent=2).encode() + b"\n", 0o644)
    config = CONFIG_TEMPLATE.format(addr=addr, bundle=files.bundle)
    _write_private(files.config, config.encode(), 0o644)
    return files, True


def demo_issuer(files: DemoFiles) -> str:
    """The issuer the demo provider serves for Host ``localhost:<port>``."""
    from spire_oidc.config.model import load_config

    addr = load_config(str(files.config)).insecure_addr
    return f"http://localhost:{addr.rpartition(':')[2]}"


def load_key(files: DemoFiles) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{files.key} is not an EC private key")
    return key


def mint(
    files: DemoFiles,
    *,
    audience: str,
    subject: str = f"spiffe://{DEMO_TRUST_DOMAIN}/demo/workload",
    issuer: str | None = None,
    ttl: int = 300,
    now: float | None = None,
) -> str:
    """A JWT-SVID (ES256) signed by the demo key."""
    key = load_key(files)
    iat = int(time.time() if now is None else now)
    header = {"alg": "ES256", "kid": _kid(key.public_key()), "typ": "JWT"}
    iss = issuer or demo_issuer(files)
    claims = {"aud": [audience], "exp": iat + ttl, "iat": iat, "iss": iss, "sub": subject}
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

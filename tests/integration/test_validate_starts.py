"""A config that ``validate`` accepts starts: nothing the config alone decides fails at start-up.

The configs are every one the suite's validate tests accept: the examples in ``conf/``, the real
configs of the SPIRE corpus (../shared/spec/configs, read in place) that load, and the configs of
the validate and config tests written inline below. Each is loaded exactly as ``validate``
loads it, then started in-process with :func:`spire_oidc.daemon.start` and stopped.

Substitutions, made on the loaded :class:`Config` after validation (so what was validated is the
file as written), replace only what this machine cannot or must not provide:

* every TCP listener binds ``127.0.0.1`` (or the loopback host the file names) on port 0: the
  files name privileged ports (443, 80) and every interface, and tests bind loopback only;
  a port that is merely busy is not a config error, and port 0 is never busy;
* ``listen_socket_path`` moves into a short temporary directory (the files name ``/run/...``);
* ``serving_cert_file`` points at a freshly issued certificate and key (the files name
  ``/certs/...``, absent here);
* ``acme`` talks to a closed loopback port instead of Let's Encrypt (no network) and caches in
  a temporary directory; issuance then fails in the background, which is not start-up;
* ``state_dir`` moves into a temporary directory;
* ``serving_svid`` listens on loopback and its agent socket moves into the temporary directory
  (no agent there: the SVID stream retries in the background, which is not start-up).

The key sources stay as written: a missing socket or bundle file is retried in the background.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
import trustme

import tests.paths
from spire_oidc.config.gocompat import split_listen_addr
from spire_oidc.config.load import load_config
from spire_oidc.config.model import Config
from spire_oidc.daemon import start
from spire_oidc.errors import ConfigError, StartupError

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

# Configs the unit and CLI validate tests accept (inline there), in file form.
INLINE = {
    "cli-validate": 'domains = ["localhost"]\ninsecure_addr = ":8080"\n'
    'file { path = "/b.json" }\nbogus_key = 1\n',
    "insecure-named-host-service-port": 'domains = ["a.test"]\ninsecure_addr = "localhost:http"\n'
    'file { path = "/b" }\n',
    "insecure-ipv6-loopback": 'domains = ["a.test"]\ninsecure_addr = "[::1]:8080"\n'
    'file { path = "/b" }\nhealth_checks { bind_host = "::1" metrics = true }\n',
    "socket-with-health": 'domains = ["a.test"]\nlisten_socket_path = "/run/odp/s.sock"\n'
    'workload_api { socket_path = "/run/agent.sock" trust_domain = "a.test" }\n'
    "health_checks { bind_port = 8008 }\n",
    "serving-cert-our-keys": 'domains = ["a.test"]\n'
    'serving_cert_file { cert_file_path = "/c" key_file_path = "/k" addr = ":8443" }\n'
    'server_api { address = "unix:/run/s.sock" }\ntrusted_proxies = ["unix", "10.0.0.0/8"]\n'
    'max_connections = 50\nstate_dir = "/var/lib/odp"\nstate_max_age = "1h"\n'
    "discovery_document { signing_algs_from_keys = true }\n",
    "serving-svid": 'domains = ["a.test"]\nserving_svid { addr = ":8443" }\n'
    'workload_api { socket_path = "/run/agent.sock" trust_domain = "a.test" }\n',
    "acme-http01": 'domains = ["a.test"]\nacme { email = "a@b.test" tos_accepted = true '
    'challenges = ["http-01", "tls-alpn-01"] addr = ":8443" http_addr = ":8080" }\n'
    'file { path = "/b" }\n',
}


def _accepted(path: Path) -> bool:
    try:
        load_config(str(path))
    except ConfigError:
        return False  # validate rejects it: the config tests pin why
    return True


def _corpus() -> list[str]:
    """The corpus configs validate accepts (the others never start, by design)."""
    folder = tests.paths.SPEC_CONFIGS
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.iterdir() if p.suffix in (".conf", ".json", ".hcl"))
    return [p.name for p in files if _accepted(p)]


CASES = (
    [f"conf/{p.name}" for p in sorted((REPO / "conf").iterdir()) if p.suffix in (".conf", ".json")]
    + [f"corpus/{name}" for name in _corpus()]
    + [f"inline/{name}" for name in INLINE]
)


def _path(case: str, tmp_path: Path) -> Path:
    kind, name = case.split("/", 1)
    if kind == "conf":
        return REPO / "conf" / name
    if kind == "corpus":
        return tests.paths.spec_configs() / name
    path = tmp_path / f"{name}.conf"
    path.write_text(INLINE[name])
    return path


def _loopback(addr: str) -> tuple[str, str]:
    host, _port = split_listen_addr(addr)
    host = host if host in LOOPBACK else "127.0.0.1"
    return (f"[{host}]:0" if ":" in host else f"{host}:0"), host


def runnable(cfg: Config, tmp_path: Path, sock_dir: Path) -> Config:
    """``cfg`` with the substitutions the module docstring lists."""
    changes: dict[str, object] = {}
    if cfg.insecure_addr:
        changes["insecure_addr"], _ = _loopback(cfg.insecure_addr)
    if cfg.listen_socket_path:
        changes["listen_socket_path"] = str(sock_dir / "odp.sock")
    if cfg.serving_cert_file is not None:
        ca = trustme.CA()
        issued = ca.issue_cert(*cfg.domains)
        cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
        issued.private_key_pem.write_to_path(str(key))
        issued.cert_chain_pems[0].write_to_path(str(cert))
        addr, host = _loopback(cfg.serving_cert_file.addr)
        changes["serving_cert_file"] = replace(
            cfg.serving_cert_file,
            cert_file_path=str(cert),
            key_file_path=str(key),
            addr=addr,
            host=host,
            port=0,
        )
    if cfg.acme is not None:
        addr, host = _loopback(cfg.acme.addr)
        http_addr, http_host = _loopback(cfg.acme.http_addr)
        changes["acme"] = replace(
            cfg.acme,
            directory_url="https://127.0.0.1:9/directory",
            cache_dir=str(tmp_path / "acme"),
            addr=addr,
            host=host,
            port=0,
            http_addr=http_addr,
            http_host=http_host,
            http_port=0,
        )
    if cfg.serving_svid is not None:
        addr, host = _loopback(cfg.serving_svid.addr)
        socket_path = str(sock_dir / "agent.sock")
        changes["serving_svid"] = replace(
            cfg.serving_svid, addr=addr, host=host, port=0, socket_path=socket_path
        )
    if cfg.health_checks is not None:
        host = cfg.health_checks.bind_host
        changes["health_checks"] = replace(
            cfg.health_checks, bind_host=host if host in LOOPBACK else "127.0.0.1", bind_port=0
        )
    if cfg.state_dir:
        changes["state_dir"] = str(tmp_path / "state")
    return replace(cfg, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", CASES)
async def test_every_accepted_config_starts(case: str, tmp_path: Path, sock_dir: Path) -> None:
    """A config validate accepts binds every listener and starts; only busy ports may fail."""
    path = _path(case, tmp_path)
    cfg = load_config(str(path))  # collection kept only the configs validate accepts
    provider = None
    try:
        provider = await start(runnable(cfg, tmp_path, sock_dir))
        assert provider.addresses, "no main listener"
        if cfg.health_checks is not None:
            assert provider.health_addresses, "no health listener"
    except StartupError as exc:
        if "address already in use" in str(exc):
            pytest.skip(f"a port is busy: {exc}")
        raise
    finally:
        if provider is not None:
            await provider.stop()
    if cfg.listen_socket_path:
        assert not os.path.exists(sock_dir / "odp.sock")

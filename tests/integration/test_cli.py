"""The command line as a subprocess: SPIRE's flags, exit codes and usage (spire-behavior.md §1)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.keyfactory import bundle_bytes, ec_key, public_jwk

pytestmark = pytest.mark.integration

EXE = shutil.which("oidc-discovery-provider", path=str(Path(sys.executable).parent)) or ""


def run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def test_console_script_is_installed() -> None:
    """The console script oidc-discovery-provider is installed next to the interpreter."""
    assert EXE, "oidc-discovery-provider is not installed in this environment"


def test_version() -> None:
    """-version and --version print the version and exit 0."""
    from spire_oidc import __version__

    for flag in ("-version", "--version", "-version=true"):
        r = run(flag)
        assert (r.returncode, r.stdout) == (0, f"{__version__}\n")


def test_unexpected_arguments() -> None:
    """Positional arguments print SPIRE's error and usage on stderr and exit 1."""
    for args in (
        ["unexpected"],
        ["-config", "test.conf", "unexpected"],
        ["-config", "x", "validate"],
    ):
        r = run(*args)
        assert r.returncode == 1
        assert f"Error: unexpected arguments: [{args[-1]}]" in r.stderr
        for text in (
            "Usage of ",
            "-config string",
            'configuration file (default "oidc-discovery-provider.conf")',
            "-expandEnv",
            "expand environment variables in config file",
            "-version",
            "print version",
        ):
            assert text in r.stderr


def test_unknown_flag_exits_2() -> None:
    """An unknown flag is Go's 'flag provided but not defined' with exit 2."""
    r = run("-bogus")
    assert r.returncode == 2
    assert r.stderr.startswith("flag provided but not defined: -bogus\nUsage of ")


def test_help_exits_0() -> None:
    """-h prints the usage and exits 0."""
    r = run("-h")
    assert r.returncode == 0 and "Usage of " in r.stderr and "validate" in r.stderr


def test_missing_config() -> None:
    """A missing config file is 'unable to load configuration: open ...' and exit 1."""
    r = run("-config", "/nope.conf")
    assert r.returncode == 1
    assert "unable to load configuration: open /nope.conf: no such file or directory" in r.stderr
    assert "Traceback" not in r.stderr


def test_default_config_path_is_cwd_relative(tmp_path: Path) -> None:
    """Without -config, oidc-discovery-provider.conf in the working directory is read."""
    r = run(cwd=tmp_path)
    assert r.returncode == 1
    assert "open oidc-discovery-provider.conf: no such file or directory" in r.stderr


def _write_config(tmp_path: Path, body: str) -> Path:
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(bundle_bytes([public_jwk("k1", ec_key())]))
    conf = tmp_path / "odp.conf"
    conf.write_text(body.replace("@BUNDLE@", str(bundle)))
    return conf


def test_validate(tmp_path: Path) -> None:
    """validate prints 'configuration is valid'; -json prints the effective config; errors exit 1."""
    conf = _write_config(
        tmp_path,
        'domains = ["localhost"]\ninsecure_addr = ":8080"\nfile { path = "@BUNDLE@" }\nbogus_key = 1\n',
    )
    r = run("validate", "-config", str(conf))
    assert (r.returncode, r.stdout) == (0, "configuration is valid\n")
    assert "bogus_key" in r.stderr
    r = run("validate", "-config", str(conf), "-json")
    assert r.returncode == 0
    eff = json.loads(r.stdout)
    assert eff["domains"] == ["localhost"] and eff["file"]["poll_interval"] == 10
    assert eff["server_api"] is None and eff["acme"] is None
    bad = tmp_path / "bad.conf"
    bad.write_text('domains = ["localhost"]\nfile { path = "x" }\n')
    r = run("validate", "-config", str(bad))
    assert r.returncode == 1
    assert (
        "either acme, serving_cert_file, insecure_addr or listen_socket_path must be configured"
        in r.stderr
    )


@pytest.mark.parametrize(
    ("addr", "message"),
    [
        ("8080", "listen tcp: address 8080: missing port in address"),
        (":99999", "listen tcp: address 99999: invalid port"),
        ("localhost:abc", "listen tcp: lookup tcp/abc: unknown port"),
    ],
)
def test_validate_rejects_what_start_up_would(tmp_path: Path, addr: str, message: str) -> None:
    """validate fails on a listen address start-up would refuse, naming file, line and key."""
    conf = _write_config(
        tmp_path, f'domains = ["localhost"]\ninsecure_addr = "{addr}"\nfile {{ path = "x" }}\n'
    )
    r = run("validate", "-config", str(conf))
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == f"{conf}:2:17, key insecure_addr: {message}\n"


def test_validate_says_what_a_key_expects(tmp_path: Path) -> None:
    """A type error keeps SPIRE's text and says what the key takes, as the CLI prints it."""
    conf = _write_config(tmp_path, 'domains = "localhost"\n')
    r = run("validate", "-config", str(conf))
    assert r.returncode == 1
    assert r.stderr == (
        f"{conf}:1:11, key domains: unable to decode configuration: At 1:11: unknown slice type: "
        '*ast.LiteralType (expected a list of strings, e.g. domains = ["oidc.example.org"])\n'
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(port_or_sock: int | str, path: str, host: str = "localhost") -> tuple[int, bytes]:
    if isinstance(port_or_sock, int):
        s = socket.create_connection(("127.0.0.1", port_or_sock), timeout=5)
    else:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        try:
            s.connect(port_or_sock)
        except OSError:
            s.close()
            raise
    with s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _wait_http(
    target: int | str, proc: subprocess.Popen[str], path: str = "/keys"
) -> tuple[int, bytes]:
    deadline = time.monotonic() + 15
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"provider exited early: {proc.communicate()}")
        try:
            status, body = _http(target, path)
            if status == 200:
                return status, body
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("provider did not serve in time")
        time.sleep(0.05)


@pytest.mark.parametrize("mode", ["tcp", "unix"])
def test_end_to_end_serve_and_sigterm(tmp_path: Path, mode: str) -> None:
    """The installed console script serves real requests (TCP or unix socket) and exits 0 on SIGTERM."""
    port = _free_port()
    sock = tmp_path / "odp.sock"
    listener = (
        f'insecure_addr = "127.0.0.1:{port}"' if mode == "tcp" else f'listen_socket_path = "{sock}"'
    )
    conf = _write_config(
        tmp_path,
        f'domains = ["localhost"]\n{listener}\nlog_format = "json"\nlog_requests = true\n'
        'file {\n  path = "@BUNDLE@"\n  poll_interval = "1s"\n}\n',
    )
    proc = subprocess.Popen(
        [EXE, "-config", str(conf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        target: int | str = port if mode == "tcp" else str(sock)
        status, body = _wait_http(target, proc)
        assert json.loads(body)["keys"][0]["kid"] == "k1"
        status, body = _http(target, "/.well-known/openid-configuration")
        assert status == 200 and json.loads(body)["issuer"] == "https://localhost"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    events = [json.loads(line)["event"] for line in out.splitlines() if line.startswith("{")]
    assert "source_started" in events and "request" in events and "shutdown_complete" in events
    assert "Traceback" not in out + err


def test_bind_failure_is_one_line_exit_1(tmp_path: Path) -> None:
    """A port already in use stops start-up with a clear error and exit 1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        conf = _write_config(
            tmp_path,
            f'domains = ["localhost"]\ninsecure_addr = "127.0.0.1:{port}"\nfile {{ path = "@BUNDLE@" }}\n',
        )
        r = run("-config", str(conf))
    assert r.returncode == 1
    assert f"listen tcp 127.0.0.1:{port}: bind: address already in use" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_expand_env(tmp_path: Path) -> None:
    """-expandEnv substitutes ${VAR} before parsing."""
    conf = _write_config(
        tmp_path, 'domains = ["${ODP_DOMAIN}"]\ninsecure_addr = ":1"\nfile { path = "@BUNDLE@" }\n'
    )
    env = {**os.environ, "ODP_DOMAIN": "expanded.test"}
    r = run("validate", "-config", str(conf), "-expandEnv", "-json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["domains"] == ["expanded.test"]


def test_demo_mint(tmp_path: Path) -> None:
    """demo writes its files once; demo -mint prints an ES256 JWT-SVID that verifies with the demo key."""
    import jwt

    from spire_oidc import demo

    files, created = demo.ensure_demo(str(tmp_path / "d"))
    assert created and oct(files.key.stat().st_mode & 0o777) == "0o600"
    assert demo.ensure_demo(str(tmp_path / "d"))[1] is False
    r = run("demo", "-dir", str(tmp_path / "d"), "-mint", "-audience", "my-aud")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    header = jwt.get_unverified_header(token)
    jwk = json.loads(files.bundle.read_text())["keys"][0]
    assert header["kid"] == jwk["kid"] and header["alg"] == "ES256"
    key = jwt.PyJWK({k: v for k, v in jwk.items() if k != "use"}, algorithm="ES256")
    claims = jwt.decode(
        token, key.key, algorithms=["ES256"], audience="my-aud", issuer="http://localhost:8080"
    )
    assert claims["sub"].startswith("spiffe://")


def test_demo_serves_and_minted_token_verifies(tmp_path: Path) -> None:
    """The README's first command: demo serves, and a minted JWT-SVID verifies via discovery + JWKS."""
    import jwt

    port = _free_port()
    d = str(tmp_path / "demo")
    proc = subprocess.Popen(
        [EXE, "demo", "-dir", d, "-addr", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        _wait_http(port, proc)
        _status, body = _http(port, "/.well-known/openid-configuration", host=f"localhost:{port}")
        discovery = json.loads(body)
        assert discovery["issuer"] == f"http://localhost:{port}"
        assert discovery["jwks_uri"] == f"http://localhost:{port}/keys"
        r = run("demo", "-dir", d, "-mint", "-audience", "aud-1")
        token = r.stdout.strip()
        client = jwt.PyJWKClient(discovery["jwks_uri"])
        key = client.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token, key.key, algorithms=["ES256"], audience="aud-1", issuer=discovery["issuer"]
        )
        assert claims["aud"] == ["aud-1"]
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert f"http://localhost:{port}/keys" in out


def test_demo_addr_applies_to_an_existing_demo(tmp_path: Path) -> None:
    """demo -addr on an existing demo directory moves its listener there and says so."""
    first, second = _free_port(), _free_port()
    d = str(tmp_path / "demo")
    from spire_oidc import demo

    files, _ = demo.ensure_demo(d, addr=f"127.0.0.1:{first}")
    key_before = files.key.read_bytes()
    proc = subprocess.Popen(
        [EXE, "demo", "-dir", d, "-addr", f"127.0.0.1:{second}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        _wait_http(second, proc)
        status, _body = _http(second, "/keys", host=f"localhost:{second}")
        assert status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert f"from 127.0.0.1:{first} to 127.0.0.1:{second}" in out
    assert files.key.read_bytes() == key_before  # the key (and tokens minted with it) survive


def test_flag_given_follows_go_flag_rules() -> None:
    """_flag_given sees -addr only where Go's flag package would parse it as a flag."""
    from spire_oidc.cli import DEMO_FLAGS, _flag_given

    assert _flag_given(DEMO_FLAGS, ["-addr", "x"], "addr")
    assert _flag_given(DEMO_FLAGS, ["--addr=x"], "addr")
    assert _flag_given(DEMO_FLAGS, ["-dir", "d", "-addr", "x"], "addr")
    assert not _flag_given(DEMO_FLAGS, ["-dir", "-addr"], "addr")  # -addr is -dir's value
    assert not _flag_given(DEMO_FLAGS, ["-mint", "--", "-addr", "x"], "addr")
    assert not _flag_given(DEMO_FLAGS, [], "addr")

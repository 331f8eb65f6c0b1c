"""scripts/bootstrap.sh (the README commands' installer) and the runtime dependency set."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from tests.paths import REPO


def _fake_checkout(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of bootstrap.sh and pyproject.toml with a .venv whose python logs its calls."""
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "bootstrap.sh", root / "scripts" / "bootstrap.sh")
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    bindir = root / ".venv" / "bin"
    bindir.mkdir(parents=True)
    calls = tmp_path / "calls.log"
    python = bindir / "python"
    python.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    python.chmod(0o755)
    script = bindir / "oidc-discovery-provider"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    return root, calls


def _bootstrap(root: Path, *extras: str) -> None:
    subprocess.run(
        ["bash", str(root / "scripts" / "bootstrap.sh"), *extras],
        check=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )


def test_second_bootstrap_skips_pip(tmp_path: Path) -> None:
    """A second run with the same pyproject.toml and extras does not call pip again (the
    README's first command starts at once); a changed pyproject.toml or extras set does."""
    root, calls = _fake_checkout(tmp_path)
    _bootstrap(root)
    first = calls.read_text().count("-m pip install")
    assert first >= 1
    _bootstrap(root)
    assert calls.read_text().count("-m pip install") == first
    _bootstrap(root, "dev")  # another extras set installs
    after_dev = calls.read_text().count("-m pip install")
    assert after_dev > first
    with (root / "pyproject.toml").open("a") as f:
        f.write("\n# changed\n")
    _bootstrap(root)
    assert calls.read_text().count("-m pip install") > after_dev


def test_uvloop_is_a_runtime_dependency_off_windows() -> None:
    """A plain install brings uvloop on Linux and macOS (the fast loop by default), not on
    Windows, where asyncio's loop stays the fallback."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    reqs = [Requirement(d) for d in deps if Requirement(d).name == "uvloop"]
    assert len(reqs) == 1 and reqs[0].marker is not None
    assert reqs[0].marker.evaluate({"sys_platform": "linux"})
    assert reqs[0].marker.evaluate({"sys_platform": "darwin"})
    assert not reqs[0].marker.evaluate({"sys_platform": "win32"})


def test_license_file_matches_the_declared_license() -> None:
    """LICENSE holds the Apache License 2.0 text that pyproject.toml declares."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text

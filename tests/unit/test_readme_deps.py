"""README.md names every runtime dependency declared in pyproject.toml (and says why)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# A PEP 508 requirement starts with the distribution name (letters, digits, ".", "_", "-").
_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _normalise(name: str) -> str:
    """PEP 503 normalisation: case and runs of ``-``, ``_``, ``.`` do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_dependencies() -> list[str]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    names = []
    for requirement in data["project"]["dependencies"]:
        m = _NAME.match(requirement)
        assert m, f"unparsable requirement {requirement!r}"
        names.append(m.group(1))
    return names


def readme_code_spans() -> set[str]:
    """Every inline code span of README.md, normalised as a distribution name."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return {_normalise(span) for span in re.findall(r"`([^`\n]+)`", text)}


def test_pyproject_declares_runtime_dependencies() -> None:
    """The list the README is checked against is the real one (not empty, names parsed)."""
    names = runtime_dependencies()
    assert "aiohttp" in names
    assert all(_NAME.fullmatch(n) for n in names)


@pytest.mark.parametrize("name", runtime_dependencies())
def test_readme_names_each_runtime_dependency(name: str) -> None:
    """Each [project].dependencies entry appears in README.md as `name`, in backticks."""
    assert _normalise(name) in readme_code_spans(), (
        f"README.md does not mention the runtime dependency `{name}`: add it to the "
        "dependency list with one line on why it is needed"
    )

"""Debian's prometheus and promtool for the observability tests, and the shipped files they check.

Missing binaries skip the tests on a developer machine and fail them under CI
(scripts/install-prometheus.sh installs both).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.paths import REPO

PROM_DIR = REPO / "packaging" / "prometheus"
RULES = PROM_DIR / "spire-oidc-rules.yml"
RULES_TEST = PROM_DIR / "tests" / "spire-oidc-rules.test.yml"
SCRAPE_CONFIG = PROM_DIR / "prometheus.yml"
DASHBOARD = REPO / "packaging" / "grafana" / "spire-oidc.json"
K8S_RULE = REPO / "packaging" / "kubernetes" / "prometheus-rule.yaml"
OPERATIONS = REPO / "docs" / "operations.md"

# Grafana's variables, replaced by values PromQL accepts before promtool parses an expression.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$job": ".*", "$instance": ".*"}
# Words in an expression that name a metric (ours, the process collector's, Prometheus's `up`).
METRIC_WORD = re.compile(r"\b(?:spire_oidc_[a-z0-9_]+|process_[a-z0-9_]+|python_[a-z0-9_]+)\b")


def binary(name: str) -> str:
    """The path of ``name``; missing skips the test, or fails it under CI."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed: run scripts/install-prometheus.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run promtool (bounded in time) and return its result, stdout and stderr as text."""
    return subprocess.run(
        [binary("promtool"), *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )


def rule_groups(path: Path = RULES) -> list[dict[str, object]]:
    groups = yaml.safe_load(path.read_text())["groups"]
    assert isinstance(groups, list)
    return groups


def alert_rules() -> list[dict[str, object]]:
    """Every alerting rule of the shipped rule file."""
    return [r for g in rule_groups() for r in g["rules"] if "alert" in r]  # type: ignore[attr-defined]


def dashboard_expressions() -> Iterator[str]:
    """Every PromQL expression of the Grafana dashboard's panels (rows included)."""
    dash = json.loads(DASHBOARD.read_text())

    def walk(panels: list[dict[str, object]]) -> Iterator[str]:
        for panel in panels:
            for target in panel.get("targets", []):  # type: ignore[attr-defined]
                yield target["expr"]
            yield from walk(panel.get("panels", []))  # type: ignore[arg-type]

    yield from walk(dash["panels"])


def as_promql(expr: str) -> str:
    """A dashboard expression with Grafana's variables replaced by plain PromQL."""
    for name, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    return expr


def markdown_anchors(text: str) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings."""
    anchors = set()
    for line in text.splitlines():
        m = re.match(r"#{1,6} (.+)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors

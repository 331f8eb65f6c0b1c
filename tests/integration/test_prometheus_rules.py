"""The shipped Prometheus alert rules, checked and unit-tested with Debian's promtool."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.integration.prometheus_support import (
    K8S_RULE,
    OPERATIONS,
    RULES,
    RULES_TEST,
    SCRAPE_CONFIG,
    alert_rules,
    markdown_anchors,
    promtool,
    rule_groups,
)

pytestmark = pytest.mark.integration

REQUIRED = {
    "SpireOIDCSourceStale",
    "SpireOIDCNoKeys",
    "SpireOIDCKeysRevoked",
    "SpireOIDCCertificateFileExpiresSoon",
    "SpireOIDCAcmeCertificateExpiresSoon",
    "SpireOIDCAcmeFailures",
    "SpireOIDCUpstreamErrors",
}


def test_promtool_check_rules_accepts_the_rule_file() -> None:
    """promtool check rules accepts the shipped alert rules."""
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_check_config_accepts_the_scrape_config() -> None:
    """promtool check config accepts the shipped scrape config (and the rule file it loads)."""
    result = promtool("check", "config", str(SCRAPE_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_fire_and_stay_silent() -> None:
    """promtool test rules passes: each alert fires on its series and stays silent on the others."""
    result = promtool("test", "rules", str(RULES_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_cover_every_alert() -> None:
    """Every shipped alert has a firing case and a silent case in the promtool tests."""
    tests = yaml.safe_load(RULES_TEST.read_text())["tests"]
    fired, silent = set(), set()
    for case in tests:
        for t in case["alert_rule_test"]:
            (fired if t["exp_alerts"] else silent).add(t["alertname"])
    names = {str(r["alert"]) for r in alert_rules()}
    assert names >= REQUIRED
    assert fired == names and silent == names


def test_promtool_unit_tests_catch_a_broken_rule(tmp_path: Path) -> None:
    """The promtool tests fail when a rule loses its precision (revocation taken for any empty /keys)."""
    broken = RULES.read_text().replace(
        "spire_oidc_keys_loaded == 1 and spire_oidc_keys_served == 0", "spire_oidc_keys_served == 0"
    )
    assert broken != RULES.read_text()
    (tmp_path / "spire-oidc-rules.yml").write_text(broken)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "t.yml").write_text(RULES_TEST.read_text())
    result = promtool("test", "rules", str(tmp_path / "tests" / "t.yml"))
    assert result.returncode != 0
    assert "SpireOIDCKeysRevoked" in result.stdout + result.stderr


def test_every_alert_says_what_relying_parties_see_and_links_its_runbook() -> None:
    """Each alert has a severity, a summary, a description and a runbook_url whose anchor exists in docs/operations.md."""
    anchors = markdown_anchors(OPERATIONS.read_text())
    for rule in alert_rules():
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert annotations["summary"] and annotations["description"], rule["alert"]
        assert "relying parties" in annotations["description"].lower(), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")  # type: ignore[index]
        doc, _, anchor = annotations["runbook_url"].partition("#")
        assert doc == "docs/operations.md", rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: no heading for #{anchor} in {OPERATIONS.name}"


def test_kubernetes_prometheus_rule_holds_the_same_groups() -> None:
    """packaging/kubernetes' PrometheusRule wraps exactly the rule groups of packaging/prometheus."""
    docs = [d for d in yaml.safe_load_all(K8S_RULE.read_text()) if d]
    assert len(docs) == 1
    rule = docs[0]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["kind"] == "PrometheusRule"
    assert rule["metadata"]["name"]
    assert rule["spec"]["groups"] == rule_groups()

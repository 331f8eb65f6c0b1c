"""The Grafana dashboard and the alert rules: valid JSON, PromQL that parses, and only exported metrics."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from spire_oidc.config.model import Config, HealthChecksConfig
from spire_oidc.daemon import Provider
from tests.integration.prometheus_support import (
    DASHBOARD,
    METRIC_WORD,
    alert_rules,
    as_promql,
    dashboard_expressions,
    promtool,
)
from tests.integration.support import file_config, get, raw_http, wait_for
from tests.keyfactory import bundle_bytes, ec_key, public_jwk

pytestmark = pytest.mark.integration

Start = Callable[[Config], Awaitable[Provider]]
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}
WANTED_ON_DASHBOARD = {
    "spire_oidc_keys_served",
    "spire_oidc_keys_last_change_age_seconds",
    "spire_oidc_key_first_served_timestamp_seconds",
    "spire_oidc_source_healthy",
    "spire_oidc_http_requests_total",
    "spire_oidc_http_request_duration_seconds_bucket",
    "spire_oidc_certificate_expiry_timestamp_seconds",
    "spire_oidc_acme_orders_total",
    "spire_oidc_acme_failures_total",
    "process_resident_memory_bytes",
}


def every_expression() -> list[tuple[str, str]]:
    """(where, PromQL) for each dashboard query (variables replaced) and each alert rule."""
    exprs = [(f"dashboard #{i}", as_promql(e)) for i, e in enumerate(dashboard_expressions())]
    exprs += [(f"alert {r['alert']}", str(r["expr"])) for r in alert_rules()]
    return exprs


def check_as_recording_rules(tmp_path: Path, exprs: list[str]) -> tuple[int, str]:
    rules = [{"record": f"check:expr_{i}", "expr": e} for i, e in enumerate(exprs)]
    path = tmp_path / "exprs.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "exprs", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    return result.returncode, result.stdout + result.stderr


def test_dashboard_is_grafana_dashboard_json() -> None:
    """The dashboard is a current-schema Grafana dashboard whose panels query the `datasource` variable."""
    dash = json.loads(DASHBOARD.read_text())
    assert dash["schemaVersion"] >= 39 and dash["uid"] and dash["title"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        assert panel["type"] in ("row", "stat", "timeseries"), panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        assert all(t["datasource"] == panel["datasource"] for t in panel["targets"])


def test_every_expression_parses_with_promtool(tmp_path: Path) -> None:
    """Each dashboard query and alert expression parses as PromQL (promtool check rules on recording rules)."""
    exprs = every_expression()
    assert len(exprs) > 20
    code, output = check_as_recording_rules(tmp_path, [e for _, e in exprs])
    assert code == 0, output
    assert f"SUCCESS: {len(exprs)} rules found" in output
    code, output = check_as_recording_rules(tmp_path, ["rate(spire_oidc_keys_served[5m]"])
    assert code != 0, "promtool accepted a broken expression: the check above proves nothing"


async def test_expressions_reference_only_exported_metrics(
    run_provider: Start, tmp_path: Path
) -> None:
    """Every metric named in the dashboard and the rules is in a real /metrics scrape of a running provider."""
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(bundle_bytes([public_jwk("k1", ec_key())]))
    checks = HealthChecksConfig(bind_port=0, bind_host="127.0.0.1", metrics=True)
    p = await run_provider(file_config(bundle, health_checks=checks))
    await wait_for(lambda: p.store.current is not None, what="keys")
    host, _, port = p.health_addresses[0].rpartition(":")
    r = await raw_http((host, int(port)), get("/metrics"))
    assert r.status == 200
    exported: set[str] = set()
    for family in text_string_to_metric_families(r.body.decode()):
        exported.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
    assert "spire_oidc_acme_failures_total" in exported  # families without samples count too

    used: dict[str, str] = {}
    for where, expr in every_expression():
        for name in METRIC_WORD.findall(expr):
            used.setdefault(name, where)
    unknown = {name: where for name, where in used.items() if name not in exported}
    assert not unknown, f"not exported by the provider: {unknown}"
    dashboard_names = {n for e in dashboard_expressions() for n in METRIC_WORD.findall(e)}
    assert dashboard_names >= WANTED_ON_DASHBOARD, WANTED_ON_DASHBOARD - dashboard_names

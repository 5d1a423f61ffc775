"""deploy/prometheus: the config and alert rules pass promtool, and their unit tests pass."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from mloop.config import DataQualityConfig
from tests.deploy.conftest import REPO
from tests.deploy.exported_metrics import unknown_references
from tests.helpers.servers import require_executable

PROMETHEUS = REPO / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
REQUIRED_ALERTS = {
    "MloopHighLatency",
    "MloopHighErrorRate",
    "MloopDataDrift",
    "MloopQualityDecay",
    "MloopNoChampion",
    "MloopPredictionLogDropping",
    "MloopStreamLagHigh",
    "MloopStreamDeadLetters",
    "MloopDataQuality",
    "MloopFeatureNullRate",
    "MloopFeatureUnreadable",
    "MloopFeatureOutOfContract",
    "MloopFeatureUnseenCategories",
}


def promtool() -> str:
    return require_executable("promtool", "prometheus")


def run_promtool(*args: str, cwd: Path = PROMETHEUS) -> str:
    done = subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def alert_rules() -> list[dict[str, object]]:
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_checks_the_rules() -> None:
    assert "SUCCESS" in run_promtool("check", "rules", str(ALERTS))


def test_promtool_checks_the_scrape_config() -> None:
    assert "SUCCESS" in run_promtool("check", "config", "prometheus.yml")


def test_promtool_unit_tests_of_every_alert_pass() -> None:
    output = run_promtool("test", "rules", "tests/alerts_test.yml")
    assert "SUCCESS" in output
    tested = yaml.safe_load((PROMETHEUS / "tests" / "alerts_test.yml").read_text(encoding="utf-8"))
    covered = {case["alertname"] for test in tested["tests"] for case in test.get("alert_rule_test", [])}
    assert covered == {rule["alert"] for rule in alert_rules()}, "every alert needs a promtool unit test"


def test_the_required_alerts_exist_with_severity_and_summary() -> None:
    rules = alert_rules()
    assert REQUIRED_ALERTS <= {rule["alert"] for rule in rules}
    for rule in rules:
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, rule  # type: ignore[index]
        assert rule["annotations"]["summary"], rule  # type: ignore[index]


def test_the_stream_alerts_hold_as_asked() -> None:
    """Lag above a threshold for 10 minutes; dead letters at any rate for 15; one alert per source, not per pod."""
    rules = {rule["alert"]: rule for rule in alert_rules()}
    lag, dead = rules["MloopStreamLagHigh"], rules["MloopStreamDeadLetters"]
    assert lag["for"] == "10m" and dead["for"] == "15m"
    assert "mloop_stream_lag" in str(lag["expr"]) and str(lag["expr"]).strip().endswith("> 10000")
    assert 'mloop_stream_events_total{outcome="dead_letter"}' in str(dead["expr"])
    assert str(dead["expr"]).strip().endswith("> 0")
    for rule in (lag, dead):
        assert "by (job, namespace, source)" in str(rule["expr"]), rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]  # type: ignore[index]


def test_the_data_quality_alerts_hold_per_feature_at_the_monitor_defaults() -> None:
    """One alert per feature (the window-level one per server), at the thresholds of monitor.data_quality."""
    defaults = DataQualityConfig()
    rules = {rule["alert"]: rule for rule in alert_rules()}
    expected = {
        "MloopFeatureNullRate": ("mloop_data_reference_null_rate", defaults.max_null_rate_increase),
        "MloopFeatureUnreadable": ('mloop_data_coercions{outcome="failed"}', defaults.max_coercion_failure_share),
        "MloopFeatureOutOfContract": ("mloop_data_window_rows", defaults.max_out_of_contract_share),
        "MloopFeatureUnseenCategories": ("mloop_data_window_rows", defaults.max_unseen_share),
    }
    for name, (metric, threshold) in expected.items():
        expr = " ".join(str(rules[name]["expr"]).split())
        assert expr.startswith("max by (job, instance, feature) (") and metric in expr, name
        assert float(expr.rsplit(">", 1)[1]) == threshold, name
        assert rules[name]["for"] == "10m" and rules[name]["annotations"]["description"], name  # type: ignore[index]
    quality = rules["MloopDataQuality"]
    assert str(quality["expr"]).strip() == "max by (job, instance) (mloop_data_quality_issues) > 0"
    assert quality["labels"]["severity"] == "warning"  # type: ignore[index]


def test_every_rule_names_only_metrics_and_labels_the_server_exports(exported: dict[str, set[str]]) -> None:
    for rule in alert_rules():
        assert unknown_references(str(rule["expr"]), exported) == [], rule["alert"]

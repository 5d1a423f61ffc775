"""The whole loop on a slice of Ames: train, serve (real uvicorn), replay, monitor, retrain, promote."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from tests.helpers.servers import mlflow_server

from mloop.demo.runner import DemoResult, run_demo
from mloop.registry import audit
from mloop.registry.versions import CHAMPION, alias_version, list_versions

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    return run_demo(tmp_path_factory.mktemp("e2e") / "demo", traffic_limit=1000)


def test_monitoring_saw_every_window_with_labels(demo: DemoResult) -> None:
    assert len(demo.windows) == 5
    assert all(w.n_labelled == w.n_rows for w in demo.windows)
    assert any(w.drift.dataset_drift for w in demo.windows)
    assert all("rmse" in w.quality for w in demo.windows)
    # Every window is also estimated from its rows alone, as it would be before its labels arrived.
    assert all({"rmse", "mae"} <= w.estimated_quality.keys() for w in demo.windows)
    gaps = [abs(w.estimated_quality["rmse"] - w.quality["rmse"]) / w.quality["rmse"] for w in demo.windows]
    assert sum(gaps) / len(gaps) < 0.3, gaps


def test_a_retrained_version_won_the_gate_and_is_served_without_restart(demo: DemoResult) -> None:
    project = demo.project
    assert demo.promoted, "no retrained model was promoted"
    champion = alias_version(project, CHAMPION)
    assert champion is not None and champion.version == demo.promoted[-1] != "1"
    gate = json.loads(champion.tags["mloop.gate"])
    assert gate["promote"] is True and gate["champion_value"] > gate["challenger_value"]
    # The running server switched to it: answers before the first promotion came from version 1.
    assert demo.final_version == champion.version
    first_new = demo.served_versions.index(demo.promoted[0])
    assert set(demo.served_versions[:first_new]) == {"1"}


def test_every_decision_is_audited_and_every_version_has_lineage(demo: DemoResult) -> None:
    project = demo.project
    events = audit.read(project.audit_log)
    promotions = [e["version"] for e in events if e["event"] == "promote"]
    assert promotions[0] == "1" and promotions[1:] == demo.promoted
    assert any(e["event"] == "retrain" for e in events)
    for version in list_versions(project):
        assert {"mloop.data_hash", "mloop.contract_hash", "mloop.metric.rmse"} <= version.tags.keys()
        if version.version != "1":
            assert version.tags["mloop.base_data_hash"] == list_versions(project)[0].tags["mloop.data_hash"]
    report = (project.workspace / "report.html").read_text()
    assert report.count("<svg") >= 2 and "estimated rmse" in report


def test_the_mlflow_server_the_demo_points_to_shows_runs_versions_and_tags(demo: DemoResult, tmp_path: Path) -> None:
    """What `mlflow ui --backend-store-uri …` (printed by the demo) serves, read through its REST API."""
    with mlflow_server(demo.project.tracking_uri, tmp_path / "mlflow.log", timeout=90) as server:
        base = server.url
        versions = httpx.get(
            f"{base}/api/2.0/mlflow/model-versions/search", params={"filter": "name='house-prices'"}, timeout=30
        ).json()["model_versions"]
        assert len(versions) == len(list_versions(demo.project))
        tags = {t["key"] for t in versions[0].get("tags", [])}
        assert {"mloop.data_hash", "mloop.gate", "mloop.metric.rmse"} <= tags
        experiments = httpx.get(
            f"{base}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "house-prices"}, timeout=30
        ).json()
        runs = httpx.post(
            f"{base}/api/2.0/mlflow/runs/search",
            json={"experiment_ids": [experiments["experiment"]["experiment_id"]]},
            timeout=30,
        ).json()["runs"]
        assert len(runs) == len(versions)
        assert all(r["inputs"].get("dataset_inputs") for r in runs)
        page = httpx.get(base, timeout=30)
        assert page.status_code == 200 and "<html" in page.text.lower()

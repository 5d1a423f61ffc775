"""deploy/grafana: provisioned dashboards are well-formed and query only what the server and the stream
consumer export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import REPO
from tests.deploy.exported_metrics import unknown_references

GRAFANA = REPO / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def graphs(board: dict[str, Any]) -> list[dict[str, Any]]:
    """The panels that query (rows only group the panels below them)."""
    return [panel for panel in board["panels"] if panel["type"] != "row"]


def test_a_service_and_a_model_dashboard_are_provisioned() -> None:
    assert {load(p)["uid"] for p in DASHBOARDS} == {"mloop-service", "mloop-model"}
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "mloop.yaml").read_text())["providers"]
    assert providers[0]["type"] == "file" and providers[0]["options"]["path"]
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    assert sources["datasources"][0]["type"] == "prometheus"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_structure(path: Path) -> None:
    board = load(path)
    assert board["title"] and board["schemaVersion"] >= 36 and board["panels"]
    variables = {v["name"] for v in board["templating"]["list"]}
    assert {"datasource", "instance"} <= variables
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    occupied: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"panel {panel['title']!r} overlaps another"
        occupied |= cells
        if panel["type"] == "row":
            assert grid["x"] == 0 and grid["w"] == 24 and grid["h"] == 1, panel["title"]
            assert "targets" not in panel and not panel.get("collapsed"), panel["title"]
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)) and all(t["expr"].strip() for t in panel["targets"])


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_query_names_a_metric_the_server_exports(path: Path, exported: dict[str, set[str]]) -> None:
    board = load(path)
    queries = [t["expr"] for panel in graphs(board) for t in panel["targets"]]
    queries += [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    for expr in queries:
        assert "mloop_" in expr, expr
        assert unknown_references(expr, exported) == [], expr


def test_the_check_catches_unknown_metrics_and_labels(exported: dict[str, set[str]]) -> None:
    assert unknown_references("rate(mloop_requests_totl[5m])", exported) == ["metric mloop_requests_totl"]
    assert unknown_references('mloop_feature_drift{feature="a",stat="psi"}', exported) == [
        "label mloop_feature_drift.stat"
    ]
    assert unknown_references('sum(rate(mloop_request_duration_seconds_bucket{endpoint="/"}[1m]))', exported) == []


def test_the_service_dashboard_has_a_streaming_row() -> None:
    """Events by outcome, consumer lag and batch duration p50/p99, under a "Streaming" row below the server's."""
    board = load(GRAFANA / "dashboards" / "mloop-service.json")
    (row,) = [p for p in board["panels"] if p["type"] == "row"]
    assert row["title"] == "Streaming"
    below = [p for p in graphs(board) if p["gridPos"]["y"] > row["gridPos"]["y"]]
    above = [p for p in graphs(board) if p["gridPos"]["y"] < row["gridPos"]["y"]]
    assert above and all("mloop_stream_" not in t["expr"] for p in above for t in p["targets"])
    exprs = {p["title"]: [t["expr"] for t in p["targets"]] for p in below}
    assert len(exprs) == 3 and all("mloop_stream_" in e for es in exprs.values() for e in es), exprs
    (events,) = [es for es in exprs.values() if any("mloop_stream_events_total" in e for e in es)]
    assert events[0].startswith("sum by (outcome) (rate(")
    (lag,) = [es for es in exprs.values() if any("mloop_stream_lag" in e for e in es)]
    assert lag[0].startswith("max by (source) (")  # every consumer of a group reports the group's lag
    (durations,) = [es for es in exprs.values() if any("mloop_stream_batch_duration_seconds_bucket" in e for e in es)]
    assert [e.split(",")[0] for e in durations] == ["histogram_quantile(0.5", "histogram_quantile(0.99"]


def test_the_model_dashboard_has_a_data_quality_row() -> None:
    """Features with issues, null rate above training, and out-of-contract, unseen and coerced values per feature."""
    board = load(GRAFANA / "dashboards" / "mloop-model.json")
    (row,) = [p for p in board["panels"] if p["type"] == "row"]
    assert row["title"] == "Data quality"
    below = [p for p in graphs(board) if p["gridPos"]["y"] > row["gridPos"]["y"]]
    exprs = " ".join(t["expr"] for p in below for t in p["targets"])
    for metric in (
        "mloop_data_quality_issues",
        "mloop_data_null_rate",
        "mloop_data_reference_null_rate",
        "mloop_data_out_of_contract",
        "mloop_data_unseen_categories",
        "mloop_data_coercions",
    ):
        assert metric in exprs, metric
    assert all("mloop_data_" in t["expr"] for p in below for t in p["targets"])
    above = [p for p in graphs(board) if p["gridPos"]["y"] < row["gridPos"]["y"]]
    assert above and all("mloop_data_" not in t["expr"] for p in above for t in p["targets"])

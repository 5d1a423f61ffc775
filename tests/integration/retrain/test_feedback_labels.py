"""Float labels sent to a real server's POST /v1/feedback for an integer target: the integral ones are
retrained on as integers, a fractional one is named, counted and left out, and the retrain completes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest
from tests.helpers.projects import early_sales, train_champion, write_project
from tests.helpers.servers import run_server
from tests.helpers.traffic import as_records

from mloop.data.contract import load_contract
from mloop.data.snapshot import load_snapshot
from mloop.registry import audit
from mloop.registry.versions import CHAMPION, alias_version
from mloop.retrain.controller import retrain, retraining_data

pytestmark = pytest.mark.integration

TRAIN_ROWS = 400
TRAFFIC_ROWS = 30


def test_float_labels_for_an_integer_target(
    tmp_path: Path, ames: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    project = train_champion(write_project(tmp_path / "ames", early_sales(ames, TRAIN_ROWS), "labels-test"))
    contract = load_contract(project.contract_path)
    assert contract.columns["Sale_Price"].dtype == "integer"
    champion = alias_version(project, CHAMPION)
    assert champion is not None
    before = retraining_data(project, champion)  # nothing served yet: the training data alone
    assert not project.predictions_db.exists()
    assert (len(before.frame), before.production_rows, before.rejected_labels) == (TRAIN_ROWS, 0, [])

    traffic = ames[ames["Year_Sold"] >= 2009].head(TRAFFIC_ROWS).reset_index(drop=True)
    with run_server(project, tmp_path) as server, server.client() as client:
        answer = client.post("/v1/predict", json=as_records(traffic, contract))
        assert answer.status_code == 200, answer.text
        request_ids = answer.json()["request_ids"]
        labels = [float(price) for price in traffic["Sale_Price"]]  # 215000.0: JSON numbers as a client sends them
        labels[3] += 0.5  # a fractional price for an integer target
        fed = client.post(
            "/v1/feedback",
            json=[{"request_id": rid, "label": y} for rid, y in zip(request_ids, labels, strict=True)],
        )
        assert fed.status_code == 200, fed.text

    with caplog.at_level(logging.WARNING, logger="mloop.retrain.controller"):
        result = retrain(project)

    assert result.version is not None and result.gate is not None  # trained and gated, not broken
    [rejected] = result.rejected_labels
    assert (rejected.request_id, rejected.label) == (request_ids[3], labels[3])
    assert any(
        request_ids[3] in record.getMessage() and "not an integer" in record.getMessage() for record in caplog.records
    )

    assert result.snapshot is not None
    data = load_snapshot(project.snapshots_dir, result.snapshot.hash).read()
    assert len(data) == TRAIN_ROWS + TRAFFIC_ROWS - 1
    assert pd.api.types.is_integer_dtype(data["Sale_Price"])
    fresh = data["Sale_Price"].iloc[TRAIN_ROWS:].tolist()
    assert fresh == [int(y) for i, y in enumerate(labels) if i != 3]

    [entry] = [e for e in audit.read(project.audit_log) if e.get("event") == "retrain"]
    assert entry["production_rows"] == TRAFFIC_ROWS - 1
    assert entry["rejected_labels"] == 1
    assert json.dumps(entry["rejected_label_examples"][0]["request_id"]) == json.dumps(request_ids[3])

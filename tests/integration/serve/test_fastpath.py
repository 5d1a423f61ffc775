"""The compiled fast path against a real server: verified at load, equal to the pipeline, or not used."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.helpers.projects import MAX_BATCH
from tests.helpers.servers import run_server
from tests.helpers.traffic import as_records, post

from mloop.data.contract import coerce_frame
from mloop.project import Project
from mloop.registry.versions import CHAMPION, alias_version
from mloop.serve import model_holder
from mloop.serve.fastpath import MAX_RELATIVE_ERROR

pytestmark = pytest.mark.integration


def _fast_path_gauge(text: str, version: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "mloop_fast_path" and sample.labels == {"version": version}:
                return float(sample.value)
    raise AssertionError("mloop_fast_path is not exported")


def test_model_reports_the_verified_fast_path(client: httpx.Client, champion: Any) -> None:
    fast = client.get("/v1/model").json()["fast_path"]
    assert fast["enabled"] is True, fast
    assert 0 <= fast["max_relative_error"] <= MAX_RELATIVE_ERROR and fast["verified_rows"] > 0
    assert _fast_path_gauge(client.get("/metrics").text, champion[2]) == 1.0


def test_every_csv_row_served_equals_the_pipeline_offline(
    client: httpx.Client, project: Project, champion: Any
) -> None:
    pipeline, contract, _ = champion
    rows = pd.read_csv(project.root / "train.csv")
    rows.loc[rows.index[:5], "Neighborhood"] = "Atlantis"  # unknown categories, as the encoder sees them
    nullable = [c for c in contract.features if contract.columns[c].nullable]
    rows.loc[rows.index[5:8], nullable] = np.nan  # every nullable field null
    want = np.asarray(pipeline.predict(coerce_frame(rows, contract)), dtype=float)
    records = as_records(rows, contract)

    served: list[float] = []
    for start in range(0, len(records), MAX_BATCH):
        response = post(client, "/v1/predict", records[start : start + MAX_BATCH])
        assert response.status_code == 200, response.text
        served.extend(response.json()["predictions"])

    assert len(served) == len(rows) >= 500
    assert np.array_equal(np.asarray(served), want), np.max(np.abs(np.asarray(served) - want))


def test_disabled_fast_path_serves_the_plain_pipeline_and_says_so(
    project: Project, champion: Any, csv_rows: pd.DataFrame, tmp_path: Path
) -> None:
    with run_server(project, tmp_path, env={"MLOOP_SERVE__FAST_PATH": "false"}) as srv, srv.client() as http:
        fast = http.get("/v1/model").json()["fast_path"]
        response = post(http, "/v1/predict", as_records(csv_rows, champion[1]))
        gauge = _fast_path_gauge(http.get("/metrics").text, champion[2])
    assert fast["enabled"] is False and "serve.fast_path" in fast["reason"]
    assert gauge == 0.0
    want = champion[0].predict(coerce_frame(csv_rows, champion[1]))
    assert response.json()["predictions"] == pytest.approx(np.asarray(want).tolist(), rel=1e-12)


def test_a_fast_path_that_differs_on_the_holdout_is_refused(
    project: Project, champion: Any, csv_rows: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    monkeypatch.setattr(model_holder, "verify", lambda *args: 0.02)
    info = alias_version(project, CHAMPION)
    assert info is not None

    with caplog.at_level(logging.WARNING, logger="mloop.serve.model_holder"):
        loaded = model_holder.load_version(project, info)

    assert loaded.fast is None
    assert not loaded.fast_path.enabled and loaded.fast_path.max_relative_error == 0.02
    assert "plain pipeline" in caplog.text and "0.02" in caplog.text
    scored = loaded.score_records(as_records(csv_rows, champion[1]))
    want = champion[0].predict(coerce_frame(csv_rows, champion[1]))
    assert scored.predictions == pytest.approx(np.asarray(want).tolist(), rel=1e-12)

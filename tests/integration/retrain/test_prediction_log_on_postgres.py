"""With ``MLOOP_MONITOR__PREDICTIONS_URL`` set, `monitor` and `retrain` read the prediction log from the real
local PostgreSQL: the champion's own predictions on later sales, some labelled, and no SQLite file in sight."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.helpers.projects import early_sales, train_champion, write_project
from tests.helpers.traffic import as_records
from tests.postgres_schema import fresh_schema

from mloop.data.contract import load_contract
from mloop.data.predictions import PredictionRow
from mloop.data.predictions_pg import PgPredictionStore
from mloop.monitor.runner import monitor
from mloop.registry.versions import CHAMPION, alias_version, load_model
from mloop.retrain.controller import evaluate_policy, labelled_production_rows, retraining_data

pytestmark = pytest.mark.integration

TRAIN_ROWS = 400
TRAFFIC_ROWS = 60
LABELLED = 40


@pytest.fixture
def pg_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with fresh_schema() as (url, _):
        monkeypatch.setenv("MLOOP_MONITOR__PREDICTIONS_URL", url)
        yield url


def test_monitor_and_retrain_read_the_log_from_postgresql(tmp_path: Path, pg_url: str, ames: pd.DataFrame) -> None:
    project = write_project(tmp_path / "ames", early_sales(ames, TRAIN_ROWS), "pg-log")
    assert project.config.monitor.predictions_url == pg_url
    train_champion(project)
    champion = alias_version(project, CHAMPION)
    assert champion is not None
    features = load_contract(project.contract_path).features

    # The champion's real predictions on later sales, logged as the server logs them.
    traffic = ames[ames["Year_Sold"] >= 2009].head(TRAFFIC_ROWS).reset_index(drop=True)
    predictions = load_model(project, champion.version).predict(traffic[features])
    records = as_records(traffic, features)
    store = project.prediction_store()
    assert isinstance(store, PgPredictionStore)
    store.write_many(
        PredictionRow(f"r{i}", f"2026-02-01T00:{i // 60:02d}:{i % 60:02d}.000000+00:00", champion.version, r, p, 1.0)
        for i, (r, p) in enumerate(zip(records, predictions, strict=True))
    )
    prices = traffic["Sale_Price"].tolist()
    assert store.attach_labels([(f"r{i}", prices[i]) for i in range(LABELLED)]) == []

    window = monitor(project, write=False)
    assert (window.n_rows, window.n_labelled) == (TRAFFIC_ROWS, LABELLED)
    errors = traffic["Sale_Price"].head(LABELLED).to_numpy() - np.asarray(predictions[:LABELLED])
    expected = math.sqrt(float(np.mean(errors**2)))
    assert window.quality["rmse"] == pytest.approx(expected, rel=1e-9)

    production = labelled_production_rows(project, features)
    assert production.index.tolist() == [f"r{i}" for i in range(LABELLED)]
    assert production["Sale_Price"].tolist() == prices[:LABELLED]
    assert production["Gr_Liv_Area"].tolist() == traffic["Gr_Liv_Area"].head(LABELLED).tolist()
    assert retraining_data(project, champion).production_rows == LABELLED

    decision = evaluate_policy(project, champion, window)
    assert f"only {LABELLED} labelled production rows" in " ".join(decision.blockers)

    assert not project.predictions_db.exists()  # everything above came from PostgreSQL

"""Shadow rows in the prediction log, on a real SQLite file and on the local PostgreSQL: kept apart from the
served rows every reader sees, and paired with the served rows they shadowed."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mloop.data.predictions import (
    PAIR_COLUMNS,
    SHADOW_SUFFIX,
    PredictionLog,
    PredictionRow,
    PredictionStore,
    pairs_sql,
    where_sql,
)
from mloop.data.predictions_pg import PgPredictionStore
from tests.postgres_schema import fresh_schema


def row(request_id: str, second: int, version: str, prediction: Any) -> PredictionRow:
    return PredictionRow(
        request_id, f"2026-01-01T00:00:{second:02d}.000000+00:00", version, {"area": 1.0}, prediction, 1.0
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PredictionLog]:
    if request.param == "sqlite":
        yield PredictionStore(tmp_path / "predictions.db")
        return
    with fresh_schema() as (url, _):
        yield PgPredictionStore(url)


@pytest.fixture
def logged(store: PredictionLog) -> PredictionLog:
    """Version 1 served a, b, c; version 2 (the challenger) shadowed a and b, then served d once promoted."""
    store.write_many(
        [
            row("a", 0, "1", 100.0),
            row("a" + SHADOW_SUFFIX, 1, "2", 110.0),
            row("b", 2, "1", 200.0),
            row("b" + SHADOW_SUFFIX, 3, "2", 190.0),
            row("c", 4, "1", 300.0),
            row("d", 5, "2", 400.0),
        ]
    )
    assert store.attach_labels([("a", 105.0), ("d", 390.0)]) == []
    return store


def test_reads_and_counts_leave_shadow_rows_out_unless_asked_for_them(logged: PredictionLog) -> None:
    assert logged.read(model_version="2")["request_id"].tolist() == ["d"]
    assert logged.count(model_version="2") == 1 and logged.count() == 4
    assert logged.read(last=2)["request_id"].tolist() == ["c", "d"]
    assert logged.read(labelled_only=True)["request_id"].tolist() == ["a", "d"]

    shadow = logged.read(model_version="2", shadow=True)
    assert shadow["request_id"].tolist() == ["a:shadow", "b:shadow"] and shadow["prediction"].tolist() == [110.0, 190.0]
    assert logged.count(model_version="2", shadow=True) == 2 and logged.count(model_version="1", shadow=True) == 0
    assert logged.read(shadow=True, last=1)["request_id"].tolist() == ["b:shadow"]
    assert logged.count(since="2026-01-01T00:00:02", shadow=True) == 1


def test_pairs_join_each_shadow_row_to_the_row_it_shadowed(logged: PredictionLog) -> None:
    pairs = logged.read_pairs("2")

    assert list(pairs.columns) == list(PAIR_COLUMNS)
    assert pairs["request_id"].tolist() == ["a", "b"]
    assert pairs["champion_version"].tolist() == ["1", "1"] and pairs["challenger_version"].tolist() == ["2", "2"]
    assert pairs["champion_prediction"].tolist() == [100.0, 200.0]
    assert pairs["challenger_prediction"].tolist() == [110.0, 190.0]
    assert pairs["label"].tolist() == [105.0, None]  # the label fed back for the served request
    assert logged.read_pairs("2", last=1)["request_id"].tolist() == ["b"]
    assert logged.read_pairs("2", champion_version="1", since="2026-01-01T00:00:02")["request_id"].tolist() == ["b"]
    assert logged.read_pairs("2", champion_version="7").empty
    assert logged.read_pairs("1").empty and list(logged.read_pairs("1").columns) == list(PAIR_COLUMNS)


def test_a_negative_last_is_refused(logged: PredictionLog) -> None:
    with pytest.raises(ValueError, match="last must be zero or more"):
        logged.read_pairs("2", last=-1)


def test_the_filters_keep_sqlite_on_its_indexes(tmp_path: Path) -> None:
    store = PredictionStore(tmp_path / "predictions.db")
    with sqlite3.connect(store.path) as conn:
        where, params = where_sql("2", None, False)
        plan = conn.execute(f"EXPLAIN QUERY PLAN SELECT * FROM predictions{where} ORDER BY ts DESC LIMIT 5", params)
        assert "USING INDEX predictions_version_ts" in " ".join(str(step[3]) for step in plan)
        select, params = pairs_sql("rowid", "2", "1", None, 100)
        steps = " | ".join(str(step[3]) for step in conn.execute(f"EXPLAIN QUERY PLAN {select}", params))
    assert "SEARCH s USING INDEX predictions_version_ts" in steps
    assert "SEARCH c USING INDEX sqlite_autoindex_predictions_1 (request_id=?)" in steps  # the primary key

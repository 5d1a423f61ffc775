"""The prediction log stores: every behaviour test runs on a real SQLite file and on the local PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mloop.data.predictions import COLUMNS, PredictionLog, PredictionRow, PredictionStore
from mloop.data.predictions_pg import PgPredictionStore
from mloop.errors import DuplicateRequestId, PredictionLogError
from tests.postgres_schema import fresh_schema


def row(request_id: str, ts: str, version: str = "1", prediction: Any = 100.0, **features: Any) -> PredictionRow:
    return PredictionRow(request_id, ts, version, features or {"area": 1.0, "kind": "a"}, prediction, 2.5)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PredictionLog]:
    """The same behaviour is owed by both stores: a SQLite file, or a table in a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield PredictionStore(tmp_path / "log" / "predictions.db")
        return
    with fresh_schema() as (url, _):
        yield PgPredictionStore(url)


def test_rows_come_back_with_features_as_columns_and_json_decoded(store: PredictionLog) -> None:
    store.write_many(
        [
            row("a", "2026-01-01T00:00:00.000000+00:00", area=1.5, kind=None, rooms=3),
            row("b", "2026-01-01T00:00:01.000000+00:00", prediction="yes", area=None, kind="x", rooms=4),
        ]
    )

    frame = store.read()

    assert list(frame.columns[:7]) == [
        "request_id",
        "ts",
        "model_version",
        "prediction",
        "latency_ms",
        "label",
        "label_ts",
    ]
    assert set(frame.columns[7:]) == {"area", "kind", "rooms"}
    assert frame["request_id"].tolist() == ["a", "b"]
    assert frame["prediction"].tolist() == [100.0, "yes"]
    assert frame["area"].iloc[0] == 1.5 and np.isnan(frame["area"].iloc[1])
    assert pd.isna(frame["kind"].iloc[0]) and frame["kind"].iloc[1] == "x"  # JSON null is NaN, not None
    assert frame["rooms"].tolist() == [3, 4]
    assert frame["label"].tolist() == [None, None] and frame["latency_ms"].tolist() == [2.5, 2.5]


def test_empty_log_reads_as_an_empty_frame(store: PredictionLog) -> None:
    frame = store.read()
    assert frame.empty and "request_id" in frame.columns
    assert store.count() == 0


def test_order_is_time_then_insertion(store: PredictionLog) -> None:
    same = "2026-01-01T00:00:05.000000+00:00"
    store.write_many([row("late", "2026-01-01T00:00:09.000000+00:00"), row("x", same), row("y", same)])
    store.write_many([row("early", "2026-01-01T00:00:01.000000+00:00"), row("z", same)])

    assert store.read()["request_id"].tolist() == ["early", "x", "y", "z", "late"]
    assert store.read(last=2)["request_id"].tolist() == ["z", "late"]
    assert store.read(last=0).empty


def test_filters_by_version_time_and_label(store: PredictionLog) -> None:
    store.write_many(
        [
            row("a", "2026-01-01T00:00:00.000000+00:00", version="1"),
            row("b", "2026-01-02T00:00:00.000000+00:00", version="2"),
            row("c", "2026-01-03T00:00:00.000000+00:00", version="2"),
        ]
    )
    assert store.attach_labels([("c", 7.0)]) == []

    assert store.read(model_version="2")["request_id"].tolist() == ["b", "c"]
    assert store.read(since="2026-01-02")["request_id"].tolist() == ["b", "c"]  # no zone: UTC
    assert store.read(since="2026-01-02T01:00:00+02:00")["request_id"].tolist() == ["b", "c"]
    assert store.read(labelled_only=True)["request_id"].tolist() == ["c"]
    assert store.read(model_version="2", last=1)["request_id"].tolist() == ["c"]
    assert store.count() == 3 and store.count(model_version="1") == 1 and store.count(labelled_only=True) == 1
    assert store.count(since="2026-01-03") == 1


def test_labels_are_attached_all_or_nothing(store: PredictionLog) -> None:
    store.write_many([row("a", "2026-01-01T00:00:00.000000+00:00"), row("b", "2026-01-01T00:00:01.000000+00:00")])

    assert store.attach_labels([("a", 1.0), ("nope", 2.0), ("b", 3.0), ("gone", 4.0)]) == ["nope", "gone"]
    assert store.count(labelled_only=True) == 0

    assert store.attach_labels([("a", 10), ("b", "cat")]) == []
    frame = store.read()
    assert frame["label"].tolist() == [10, "cat"]
    assert all(pd.Timestamp(ts).tz is not None for ts in frame["label_ts"])


def test_a_batch_with_a_repeated_request_id_writes_nothing(store: PredictionLog) -> None:
    store.write_many([row("a", "2026-01-01T00:00:00.000000+00:00")])
    with pytest.raises(DuplicateRequestId, match="request_id"):
        store.write_many([row("b", "2026-01-01T00:00:01.000000+00:00"), row("a", "2026-01-01T00:00:02.000000+00:00")])
    assert store.read()["request_id"].tolist() == ["a"]


def test_reopening_keeps_rows_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "predictions.db"
    PredictionStore(path).write_many([row("a", "2026-01-01T00:00:00.000000+00:00")])

    reopened = PredictionStore(path)

    assert reopened.count() == 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        columns = [r[1] for r in conn.execute("PRAGMA table_info(predictions)")]
        indexes = [r[1] for r in conn.execute("PRAGMA index_list(predictions)")]
    assert tuple(columns) == COLUMNS
    assert "predictions_version_ts" in indexes


def test_a_foreign_table_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "predictions.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE predictions (id INTEGER, value REAL)")
        conn.execute("INSERT INTO predictions VALUES (1, 2.0)")
    conn.close()

    with pytest.raises(PredictionLogError, match=r"predictions\.db.*\(id, value\)"):
        PredictionStore(path)

    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT * FROM predictions").fetchall() == [(1, 2.0)]
    conn.close()


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "predictions.db"
    path.write_bytes(b"this is not a database, just some text padding it out " * 20)
    with pytest.raises(PredictionLogError, match="predictions.db"):
        PredictionStore(path)
    assert path.read_bytes().startswith(b"this is not a database")


def test_numpy_values_and_nan_are_stored_as_json(store: PredictionLog) -> None:
    store.write_many([row("a", "2026-01-01T00:00:00.000000+00:00", prediction=np.float64(1.25), area=float("nan"))])
    frame = store.read()
    assert frame["prediction"].iloc[0] == 1.25 and np.isnan(frame["area"].iloc[0])


def test_replaying_rows_skips_those_already_stored(store: PredictionLog) -> None:
    first = row("a", "2026-01-01T00:00:00.000000+00:00")
    store.write_many([first])
    with pytest.raises(DuplicateRequestId):
        store.write_many([first])
    again = [first, row("b", "2026-01-01T00:00:01.000000+00:00")]
    assert store.write_many(again, skip_existing=True) == 2
    assert store.read()["request_id"].tolist() == ["a", "b"]


def test_a_row_survives_a_spill_line() -> None:
    original = PredictionRow("r", "2026-01-01T00:00:00.000000+00:00", "3", {"x": None, "k": "v"}, np.float64(1.5), 2.0)
    back = PredictionRow.from_json(original.to_json())
    assert back == PredictionRow("r", original.ts, "3", {"x": None, "k": "v"}, 1.5, 2.0)

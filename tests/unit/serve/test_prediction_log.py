"""The non-blocking prediction log writer, writing to a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop.data.predictions import PredictionRow, PredictionStore, utc_now
from mloop.serve.prediction_log import PredictionLogWriter


def rows(*ids: str) -> list[PredictionRow]:
    return [PredictionRow(i, utc_now(), "1", {"x": 1.0}, 2.0, 0.5) for i in ids]


@pytest.fixture
def store(tmp_path: Path) -> PredictionStore:
    return PredictionStore(tmp_path / "predictions.db")


def test_logged_rows_are_stored_after_flush(store: PredictionStore) -> None:
    writer = PredictionLogWriter(store, batch_size=7)
    writer.start()
    try:
        ids = [f"r{i}" for i in range(100)]
        for request_id in ids[:50]:
            assert writer.log(rows(request_id)[0])
        assert writer.log_many(rows(*ids[50:])) == 50
        assert writer.flush(timeout=10)
        assert store.read()["request_id"].tolist() == ids
        assert writer.pending == 0 and writer.dropped == 0
    finally:
        writer.close()


def test_close_writes_everything_still_queued(store: PredictionStore) -> None:
    writer = PredictionLogWriter(store)
    writer.log_many(rows(*[f"r{i}" for i in range(500)]))  # queued before the thread even starts
    writer.start()
    writer.close()
    assert store.count() == 500


def test_a_full_buffer_drops_and_counts_instead_of_blocking(store: PredictionStore) -> None:
    drops: list[int] = []
    writer = PredictionLogWriter(store, on_drop=drops.append, capacity=2)  # not started: nothing drains
    assert writer.log_many(rows("a", "b", "c", "d")) == 2
    assert not writer.log(rows("e")[0])
    assert (writer.dropped, drops) == (3, [2, 1])
    assert not writer.flush(timeout=0.05)  # no thread, so it cannot finish; it must not hang
    writer.start()
    writer.close()
    assert store.read()["request_id"].tolist() == ["a", "b"]


def test_rows_logged_after_close_are_dropped(store: PredictionStore) -> None:
    writer = PredictionLogWriter(store)
    writer.start()
    writer.close()
    assert writer.log_many(rows("late")) == 0 and writer.dropped == 1
    assert store.count() == 0


def test_one_bad_row_does_not_cost_the_batch(store: PredictionStore) -> None:
    store.write_many(rows("taken"))
    writer = PredictionLogWriter(store)
    writer.log_many(rows("a", "taken", "b"))  # one batch, with a request_id already stored
    writer.start()
    writer.close()
    assert store.read()["request_id"].tolist() == ["taken", "a", "b"]
    assert writer.dropped == 1

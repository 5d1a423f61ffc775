"""The non-blocking prediction log writer, writing to a real SQLite store."""

from __future__ import annotations

import time
from collections.abc import Callable
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


def test_flush_upto_a_mark_waits_for_the_rows_before_it_only(store: PredictionStore) -> None:
    import threading

    release = threading.Event()

    class Gated:
        """Writes the first batch at once and holds every later one until released."""

        def __init__(self) -> None:
            self.batches = 0

        def write_many(self, batch: list[PredictionRow], skip_existing: bool = False) -> int:
            self.batches += 1
            if self.batches > 1:
                release.wait(10)
            return store.write_many(batch, skip_existing=skip_existing)

    writer = PredictionLogWriter(Gated(), batch_size=3, linger=0.0)  # type: ignore[arg-type]
    writer.start()
    try:
        writer.log_many(rows("a", "b", "c"))
        mark = writer.accepted
        assert writer.flush(10, upto=mark)
        writer.log_many(rows("d", "e", "f"))
        assert writer.flush(10, upto=mark)  # the later rows, still held, are not waited for
        assert not writer.flush(0.2)  # a plain flush waits for them too
        release.set()
        assert writer.flush(10)
        assert store.read()["request_id"].tolist() == ["a", "b", "c", "d", "e", "f"]
    finally:
        release.set()
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


def _break(db: Path) -> Path:
    """The store goes away: the file is moved aside and a directory stands in its place."""
    away = db.with_name(db.name + ".away")
    db.rename(away)
    db.mkdir()
    return away


def _repair(db: Path, away: Path) -> None:
    db.rmdir()
    away.rename(db)


def _wait(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_rows_spill_while_the_store_is_down_and_are_replayed(store: PredictionStore, tmp_path: Path) -> None:
    spilled: list[int] = []
    writer = PredictionLogWriter(store, spill_dir=tmp_path / "spill", on_spill=spilled.append, batch_size=10)
    writer.start()
    try:
        writer.log_many(rows("before"))
        assert writer.flush(10)
        away = _break(store.path)
        ids = [f"r{i}" for i in range(25)]
        writer.log_many(rows(*ids))
        assert writer.flush(10)  # spilled rows are safe on disk, so the flush completes
        assert writer.spilled == 25 and sum(spilled) == 25 and writer.dropped == 0
        assert list((tmp_path / "spill").glob("*.jsonl"))
        _repair(store.path, away)
        assert _wait(lambda: writer.spilled == 0)
        assert sorted(store.read()["request_id"]) == sorted(["before", *ids])
        assert not list((tmp_path / "spill").glob("*.jsonl"))
    finally:
        writer.close()
    assert writer.dropped == 0


def test_a_store_failing_slowly_is_not_tried_for_every_batch(store: PredictionStore, tmp_path: Path) -> None:
    class Hanging:
        """A store whose writes hang until a timeout, then fail (a database that stopped answering)."""

        def __init__(self) -> None:
            self.attempts = 0
            self.down = True

        def write_many(self, batch: list[PredictionRow], skip_existing: bool = False) -> int:
            self.attempts += 1
            if self.down:
                time.sleep(0.3)
                raise OSError("timed out")
            return store.write_many(batch, skip_existing=skip_existing)

    hanging = Hanging()
    writer = PredictionLogWriter(hanging, spill_dir=tmp_path / "spill", batch_size=10, linger=0.0)  # type: ignore[arg-type]
    writer.start()
    try:
        ids = [f"r{i}" for i in range(200)]
        started = time.monotonic()
        for start in range(0, 200, 10):
            writer.log_many(rows(*ids[start : start + 10]))
            time.sleep(0.005)
        assert writer.flush(10)
        # 20 batches in well under 20 x 0.3 s: after the first failure they went straight to disk
        assert time.monotonic() - started < 3 and hanging.attempts < 8
        assert writer.spilled == 200 and writer.dropped == 0
        hanging.down = False
        assert _wait(lambda: writer.spilled == 0)  # the next replay finds the store back
    finally:
        writer.close()
    assert sorted(store.read()["request_id"]) == sorted(ids) and writer.dropped == 0


def test_rows_still_spilled_at_close_are_replayed_by_the_next_writer(store: PredictionStore, tmp_path: Path) -> None:
    away = _break(store.path)
    writer = PredictionLogWriter(store, spill_dir=tmp_path / "spill")
    writer.log_many(rows("a", "b", "c"))
    writer.start()
    writer.close()  # the store is still down: the rows stay on disk
    assert writer.dropped == 0 and len(list((tmp_path / "spill").glob("*.jsonl"))) == 1
    _repair(store.path, away)

    again = PredictionLogWriter(store, spill_dir=tmp_path / "spill")
    again.start()
    try:
        assert _wait(lambda: store.count() == 3)
    finally:
        again.close()
    assert sorted(store.read()["request_id"]) == ["a", "b", "c"] and again.dropped == 0


def test_spill_files_of_a_dead_process_are_adopted(store: PredictionStore, tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    spill.mkdir()
    orphan = b"".join(row.to_json() + b"\n" for row in rows("x", "y"))
    (spill / f"{2**22 + 12345}-lost.jsonl").write_bytes(orphan)  # above the largest pid Linux hands out
    store.write_many(rows("x"))  # a row may have been written before its process died: replay skips it
    writer = PredictionLogWriter(store, spill_dir=spill)
    writer.start()
    try:
        assert _wait(lambda: store.count() == 2)
    finally:
        writer.close()
    assert sorted(store.read()["request_id"]) == ["x", "y"] and not list(spill.iterdir())

"""The prediction log on the real local PostgreSQL: the table it makes, what it refuses, how it fails when the
database goes away (through a TCP relay this test stops and starts), and the server's writer losing nothing."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.helpers.servers import free_port
from tests.postgres_schema import Relay, admin_connection, fresh_schema, postgres_relay

from mloop.data.predictions import (
    PredictionLog,
    PredictionRow,
    PredictionStore,
    open_prediction_store,
)
from mloop.data.predictions_pg import PgPredictionStore, safe_url
from mloop.errors import DuplicateRequestId, PredictionLogError
from mloop.project import Project
from mloop.serve.prediction_log import PredictionLogWriter

pytestmark = pytest.mark.integration


def row(request_id: str, second: int, version: str = "1", **features: object) -> PredictionRow:
    ts = f"2026-01-01T00:00:{second:02d}.000000+00:00"
    return PredictionRow(request_id, ts, version, features or {"area": float(second), "kind": "a"}, second * 10.0, 1.5)


@pytest.fixture
def schema() -> Iterator[tuple[str, str]]:
    with fresh_schema() as found:
        yield found


@pytest.fixture
def relay() -> Iterator[Relay]:
    with postgres_relay() as relay:
        yield relay


def _via(relay: Relay, schema: str) -> str:
    return relay.url(schema)


# ------------------------------------------------------------------------------------------ the table


def test_the_table_orders_time_as_text_bytes_and_is_indexed(schema: tuple[str, str]) -> None:
    url, name = schema
    PgPredictionStore(url).write_many([row("a", 1)])
    reopened = PgPredictionStore(url)  # a second start keeps the rows and changes nothing
    assert reopened.count() == 1

    with admin_connection() as admin:
        columns = admin.execute(
            "SELECT column_name, collation_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'predictions' ORDER BY ordinal_position",
            (name,),
        ).fetchall()
        indexes = {r[0] for r in admin.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s", (name,))}
    assert [c for c, _ in columns] == [
        "request_id",
        "ts",
        "model_version",
        "features",
        "prediction",
        "latency_ms",
        "label",
        "label_ts",
        "seq",
    ]
    assert dict(columns)["ts"] == "C"  # byte order, as SQLite compares text, whatever the database's locale
    assert "predictions_version_ts" in indexes


def test_both_stores_return_the_same_frames(schema: tuple[str, str], tmp_path: Path) -> None:
    url, _ = schema
    stores: list[PredictionLog] = [PredictionStore(tmp_path / "predictions.db"), PgPredictionStore(url)]
    rows = [
        row("late", 9, version="2", area=3.5, kind=None, rooms=2),
        row("x", 5, area=None, kind="b"),
        row("y", 5, version="2", area=1.0, kind="a", request_id_feature=7),
        row("early", 1),
    ]
    for store in stores:
        store.write_many(rows[:2])
        store.write_many(rows[2:])
        assert store.attach_labels([("x", 1.5), ("late", "cat")]) == []

    sqlite, pg = stores
    queries: list[dict[str, Any]] = [
        {},
        {"last": 2},
        {"model_version": "2"},
        {"since": "2026-01-01T00:00:05"},
        {"labelled_only": True},
        {"model_version": "1", "last": 1},
    ]
    for query in queries:
        left, right = sqlite.read(**query), pg.read(**query)
        # label_ts is the moment each store was labelled; everything else must match exactly
        pd.testing.assert_frame_equal(left.drop(columns="label_ts"), right.drop(columns="label_ts"))
        assert left["label_ts"].isna().tolist() == right["label_ts"].isna().tolist()
    assert pg.read()["request_id"].tolist() == ["early", "x", "y", "late"]


def test_a_foreign_table_is_refused_and_left_alone(schema: tuple[str, str]) -> None:
    url, name = schema
    with admin_connection() as admin:
        admin.execute(f'CREATE TABLE "{name}".predictions (id INTEGER, value REAL)')
        admin.execute(f'INSERT INTO "{name}".predictions VALUES (1, 2.0)')

    with pytest.raises(PredictionLogError, match=r"127\.0\.0\.1.*\(id, value\)"):
        PgPredictionStore(url)

    with admin_connection() as admin:
        assert admin.execute(f'SELECT * FROM "{name}".predictions').fetchall() == [(1, 2.0)]


def test_replicas_starting_together_all_open_the_log(schema: tuple[str, str]) -> None:
    url, _ = schema
    with ThreadPoolExecutor(max_workers=6) as pool:
        stores = list(pool.map(lambda _: PgPredictionStore(url), range(6)))
    for n, store in enumerate(stores):
        store.write_many([row(f"r{n}", n)])
    assert stores[0].count() == 6


def test_labels_from_many_threads_all_land(schema: tuple[str, str]) -> None:
    url, _ = schema
    store = PgPredictionStore(url)
    store.write_many([row(f"r{n}", n % 60) for n in range(200)])
    with ThreadPoolExecutor(max_workers=4) as pool:
        unknown = list(pool.map(lambda n: store.attach_labels([(f"r{n}", n), (f"r{199 - n}", -n)]), range(100)))
    assert unknown == [[]] * 100
    assert store.count(labelled_only=True) == 200


# ------------------------------------------------------------------------------------- failures


def test_an_unreachable_database_is_a_store_error_without_the_password() -> None:
    port = free_port()
    url = f"postgresql+psycopg://mloop:s3cr%40t-pw@127.0.0.1:{port}/predictions"
    with pytest.raises(PredictionLogError) as raised:
        PgPredictionStore(url)
    message = str(raised.value)
    assert not isinstance(raised.value, DuplicateRequestId)  # the writer spills on this, it does not drop
    assert "127.0.0.1" in message and "/predictions" in message
    assert "s3cr" not in message and "mloop:" not in message
    assert safe_url(url) == f"postgresql+psycopg://127.0.0.1:{port}/predictions"


def test_a_database_that_goes_away_fails_each_call_and_comes_back(schema: tuple[str, str], relay: Relay) -> None:
    store = PgPredictionStore(_via(relay, schema[1]))
    store.write_many([row("a", 1)])

    relay.stop()
    for call in (
        lambda: store.write_many([row("b", 2)]),
        lambda: store.attach_labels([("a", 1.0)]),
        lambda: store.read(),
        lambda: store.count(),
    ):
        with pytest.raises(PredictionLogError, match=f"127.0.0.1:{relay.port}") as raised:
            call()
        assert not isinstance(raised.value, DuplicateRequestId)

    relay.start()
    assert store.write_many([row("a", 1), row("b", 2)], skip_existing=True) == 2
    assert store.read()["request_id"].tolist() == ["a", "b"]


def test_the_servers_writer_spills_while_postgresql_is_down_and_loses_nothing(
    schema: tuple[str, str], relay: Relay, tmp_path: Path
) -> None:
    store = PgPredictionStore(_via(relay, schema[1]))
    writer = PredictionLogWriter(store, spill_dir=tmp_path / "spill", linger=0.0)  # type: ignore[arg-type]
    writer.start()
    try:
        writer.log_many([row(f"up{n}", n % 60) for n in range(50)])
        assert writer.flush(timeout=30)
        relay.stop()
        writer.log_many([row(f"down{n}", n % 60) for n in range(120)])
        assert writer.flush(timeout=30)
        assert writer.spilled == 120  # kept on disk, not dropped
        relay.start()
        writer.log_many([row(f"back{n}", n % 60) for n in range(30)])
        assert writer.flush(timeout=30)
    finally:
        writer.close(timeout=60)  # the last replay happens here at the latest

    assert writer.dropped == 0 and writer.spilled == 0
    logged = set(PgPredictionStore(_via(relay, schema[1])).read()["request_id"])
    expected = {f"up{n}" for n in range(50)} | {f"down{n}" for n in range(120)} | {f"back{n}" for n in range(30)}
    assert logged == expected
    assert not list((tmp_path / "spill").glob("*.jsonl"))


def test_a_statement_stuck_behind_a_lock_times_out_and_the_writer_spills(
    schema: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from mloop.data import predictions_pg

    monkeypatch.setattr(predictions_pg, "STATEMENT_TIMEOUT_MS", 300)
    url, name = schema
    store = PgPredictionStore(url)  # the search_path in the URL's own options still applies
    store.write_many([row("a", 1)])
    writer = PredictionLogWriter(store, spill_dir=tmp_path / "spill", linger=0.0)  # type: ignore[arg-type]
    writer.start()
    try:
        with admin_connection() as admin, admin.transaction():
            admin.execute(f'LOCK TABLE "{name}".predictions IN ACCESS EXCLUSIVE MODE')  # held until the block ends
            started = time.monotonic()
            with pytest.raises(PredictionLogError, match="statement timeout"):
                store.write_many([row("b", 2)])
            assert time.monotonic() - started < 5  # not the lock holder's whole transaction
            writer.log_many([row(f"held{n}", n) for n in range(20)])
            assert writer.flush(timeout=30)
            assert writer.spilled == 20  # kept on disk while the table was locked
    finally:
        writer.close(timeout=60)  # the lock is gone: the spilled rows are replayed
    assert writer.dropped == 0 and writer.spilled == 0
    assert set(store.read()["request_id"]) == {"a"} | {f"held{n}" for n in range(20)}


def test_a_server_that_stops_answering_mid_write_is_cut_off_at_the_deadline(
    schema: tuple[str, str], relay: Relay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from mloop.data import predictions_pg

    monkeypatch.setattr(predictions_pg, "WRITE_DEADLINE_S", 1.0)
    store = PgPredictionStore(_via(relay, schema[1]))
    thaw = threading.Timer(15, relay.freeze, (False,))  # without the deadline the write fails this test, not hangs
    thaw.daemon = True
    thaw.start()
    started = time.monotonic()
    with pytest.raises(PredictionLogError, match="cannot log predictions"):
        with monkeypatch.context() as frozen:  # the server answers the connection, then goes silent
            connect = store._db.connect

            def connect_then_freeze(*args: Any, **kwargs: Any) -> Any:
                conn = connect(*args, **kwargs)
                relay.freeze()
                return conn

            frozen.setattr(store._db, "connect", connect_then_freeze)
            store.write_many([row("a", 1)])
    assert time.monotonic() - started < 10  # the deadline, not TCP's quarter of an hour
    thaw.cancel()
    relay.freeze(False)

    writer = PredictionLogWriter(store, spill_dir=tmp_path / "spill", linger=0.0)  # type: ignore[arg-type]
    writer.start()
    try:
        writer.log_many([row("b", 2)])
        assert writer.flush(timeout=30)
    finally:
        writer.close(timeout=60)
    assert writer.dropped == 0 and set(store.read()["request_id"]) == {"b"}  # "a" was never committed


def test_writes_get_a_statement_timeout_only_where_none_is_configured(schema: tuple[str, str]) -> None:
    url, _ = schema
    store = PgPredictionStore(url)
    with store._transaction(write=True) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("10s",)
    with store._transaction() as conn:  # reads (the monitor's) are not cut short
        assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)
    own = PgPredictionStore(url.replace("options=", "options=-cstatement_timeout%3D1234%20", 1))
    with own._transaction(write=True) as conn:  # the URL's own setting wins, and its search_path still applies
        assert conn.execute("SHOW statement_timeout").fetchone() == ("1234ms",)
    assert own.write_many([row("a", 1)]) == 1 and store.count() == 1


def test_without_psycopg_the_error_names_the_extra(schema: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what an install without mloop[postgres] looks like
    with pytest.raises(PredictionLogError, match=r"mloop\[postgres\]"):
        PgPredictionStore(schema[0])


# --------------------------------------------------------------------------------- choosing a store


def test_the_factory_picks_the_store_from_the_target(schema: tuple[str, str], tmp_path: Path) -> None:
    assert isinstance(open_prediction_store(tmp_path / "p.db"), PredictionStore)
    assert isinstance(open_prediction_store(str(tmp_path / "q.db")), PredictionStore)
    driver_url = schema[0].replace("postgresql://", "postgresql+psycopg://", 1)
    assert isinstance(open_prediction_store(driver_url), PgPredictionStore)
    with pytest.raises(PredictionLogError, match=r"mysql://db\.example:3306/log is not supported") as raised:
        open_prediction_store("mysql://me:hunter2@db.example:3306/log")
    assert "hunter2" not in str(raised.value)


def test_the_project_reads_the_url_from_the_environment(
    schema: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mloop.yaml").write_text("name: p\ntask: regression\ndata: {source: d.csv, target: y}\n")
    local = Project.load(tmp_path / "mloop.yaml")
    assert not local.has_prediction_log()
    assert isinstance(local.prediction_store(), PredictionStore) and local.has_prediction_log()

    monkeypatch.setenv("MLOOP_MONITOR__PREDICTIONS_URL", schema[0])
    shared = Project.load(tmp_path / "mloop.yaml")
    assert shared.has_prediction_log()
    store = shared.prediction_store()
    store.write_many([row("a", 1)])
    assert isinstance(store, PgPredictionStore) and PgPredictionStore(schema[0]).count() == 1
    assert "predictions_url" not in repr(shared.config.monitor)  # a URL may carry a password

"""The prediction log loses nothing: the log database breaks in the middle of a load run, comes back, and
every request id the server answered ends up in it; ``mloop_prediction_log_dropped_total`` stays 0. The
SQLite file is moved away; PostgreSQL is reached through a TCP relay the test stops and starts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.helpers.servers import run_server, wait_for
from tests.helpers.traffic import as_records, post
from tests.postgres_schema import fresh_schema, postgres_relay

from mloop.data.predictions import PredictionStore
from mloop.data.predictions_pg import PgPredictionStore
from mloop.project import Project

pytestmark = pytest.mark.integration

CLIENTS = 4
OUTAGE_SECONDS = 2.0


def _counter(text: str, name: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"{name} is not exported")


class Load:
    """Clients posting single records until stopped; keeps every request id the server returned."""

    def __init__(self, url: str, records: list[dict[str, Any]]) -> None:
        self.url, self.records = url, records
        self.ids: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(i,)) for i in range(CLIENTS)]

    def _client(self, offset: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30.0) as http:
            i = offset
            while not self._stop.is_set():
                response = post(http, "/v1/predict", self.records[i % len(self.records)])
                with self._lock:
                    if response.status_code == 200:
                        self.ids.append(response.json()["request_id"])
                    else:
                        self.failures.append(response.text)
                i += CLIENTS

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def count(self) -> int:
        with self._lock:
            return len(self.ids)


def _break(db: Path) -> Path:
    """The log database goes away: moved aside, with a directory in its place so nothing can open it."""
    away = db.with_name(db.name + ".away")
    db.rename(away)
    db.mkdir()
    return away


def _repair(db: Path, away: Path) -> None:
    db.rmdir()
    away.rename(db)


def _outage_under_load(
    srv: Any, records: list[dict[str, Any]], store: Any, cut: Callable[[], None], restore: Callable[[], None]
) -> None:
    """Clients post through ``cut`` … ``restore`` of the log database; every answered request must be
    logged in ``store``, none dropped, every spilled row replayed."""
    with srv.client() as http:
        with Load(srv.url, records) as load:
            wait_for(lambda: load.count() >= 50, "traffic before the outage")
            cut()
            try:
                during = load.count()
                time.sleep(OUTAGE_SECONDS)
                served_during_outage = load.count() - during
            finally:
                restore()
            wait_for(lambda: load.count() >= during + served_during_outage + 50, "traffic after the outage")

        assert not load.failures and served_during_outage > 0
        wanted = set(load.ids)
        wait_for(lambda: wanted <= set(store.read()["request_id"]), "every request id in the log", timeout=60)
        metrics = http.get("/metrics").text

    assert _counter(metrics, "mloop_prediction_log_dropped_total") == 0
    spilled = _counter(metrics, "mloop_prediction_log_spilled_total")
    assert spilled > 0 and _counter(metrics, "mloop_prediction_log_replayed_total") == spilled


def test_the_log_database_breaks_mid_load_and_every_request_is_logged(
    project: Project, champion: Any, csv_rows: pd.DataFrame, tmp_path: Path
) -> None:
    db = project.predictions_db
    moved: list[Path] = []
    with run_server(project, tmp_path) as srv:
        _outage_under_load(
            srv,
            as_records(csv_rows, champion[1]),
            PredictionStore(db),
            cut=lambda: moved.append(_break(db)),
            restore=lambda: _repair(db, moved.pop()),
        )


def test_postgresql_goes_down_mid_load_and_every_request_is_logged(
    project: Project, champion: Any, csv_rows: pd.DataFrame, tmp_path: Path
) -> None:
    with fresh_schema() as (direct_url, schema), postgres_relay() as relay:
        env = {"MLOOP_MONITOR__PREDICTIONS_URL": relay.url(schema)}
        with run_server(project, tmp_path, env=env) as srv:
            # relay.stop(): every connection cut, new ones refused, as when the database is gone
            _outage_under_load(
                srv, as_records(csv_rows, champion[1]), PgPredictionStore(direct_url), relay.stop, relay.start
            )


def test_rows_spilled_at_shutdown_are_logged_after_a_restart(
    project: Project, champion: Any, csv_rows: pd.DataFrame, tmp_path: Path
) -> None:
    records = as_records(csv_rows, champion[1])
    spill = project.predictions_db.parent / "predictions-spill"
    away = project.predictions_db.with_name(project.predictions_db.name + ".away")
    try:
        with run_server(project, tmp_path) as srv, srv.client() as http:
            _break(project.predictions_db)
            ids = [post(http, "/v1/predict", record).json()["request_id"] for record in records]
        # The server stopped gracefully while the store was down: its rows wait on disk.
        assert list(spill.glob("*.jsonl"))
    finally:
        if away.exists():
            _repair(project.predictions_db, away)

    with run_server(project, tmp_path):
        store = PredictionStore(project.predictions_db)
        wait_for(lambda: set(ids) <= set(store.read()["request_id"]), "the spilled rows replayed at startup")
    assert not list(spill.glob("*.jsonl"))

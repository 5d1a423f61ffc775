"""Micro-batching on a real uvicorn server: concurrent requests share model calls within both bounds.

The server appends one JSON line per micro-batch to ``MLOOP_BATCH_TRACE`` (its rows, requests, the
arrival times of its oldest and newest request and when it closed), so the bounds are checked on what
the batcher did, batch by batch, not inferred from latencies.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.helpers.servers import run_server
from tests.helpers.traffic import as_records

from mloop.data.contract import coerce_frame
from mloop.data.predictions import PredictionStore
from mloop.project import Project

pytestmark = pytest.mark.integration

MAX_ROWS = 4
MAX_WAIT = 0.03
CLIENTS = 16
PER_CLIENT = 15
# Past its deadline a batch closes as soon as the event loop runs its timer; on a loaded machine that
# can take a while. This is the slack allowed for the loop, not a wait the batcher chooses.
LOOP_SLACK = 0.25


def _trace(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _histogram_count(text: str, name: str) -> float:
    return sum(
        s.value for family in text_string_to_metric_families(text) for s in family.samples if s.name == f"{name}_count"
    )


def test_concurrent_requests_are_batched_within_both_bounds(project: Project, champion: Any, tmp_path: Path) -> None:
    pipeline, contract, version = champion
    frame = pd.read_csv(project.root / "train.csv").head(CLIENTS * PER_CLIENT)
    records = as_records(frame, contract)
    want = np.asarray(pipeline.predict(coerce_frame(frame, contract)), dtype=float)
    trace = tmp_path / "batches.jsonl"
    env = {
        "MLOOP_SERVE__MICRO_BATCH_MAX_ROWS": str(MAX_ROWS),
        "MLOOP_SERVE__MICRO_BATCH_MAX_WAIT_MS": str(MAX_WAIT * 1000),
        "MLOOP_BATCH_TRACE": str(trace),
    }

    def client_run(client_index: int, url: str) -> list[tuple[int, dict[str, Any]]]:
        out = []
        with httpx.Client(base_url=url, timeout=30.0) as http:
            for k in range(PER_CLIENT):
                index = client_index * PER_CLIENT + k
                response = http.post("/v1/predict", json=records[index])
                assert response.status_code == 200, response.text
                out.append((index, response.json()))
        return out

    with run_server(project, tmp_path, env=env) as srv:
        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = [a for part in pool.map(client_run, range(CLIENTS), [srv.url] * CLIENTS) for a in part]
        concurrent_batches = len(_trace(trace))
        # Then one client alone: nobody joins, so every batch closes on its deadline with one request.
        with httpx.Client(base_url=srv.url, timeout=30.0) as http:
            alone = [http.post("/v1/predict", json=records[i]).json() for i in range(5)]
            metrics = http.get("/metrics").text

    # Every request got the prediction of its own record (answers are split back correctly).
    got = np.array([answer["prediction"] for _, answer in sorted(answers, key=lambda a: a[0])])
    assert np.array_equal(got, want)
    assert all(answer["model_version"] == version for _, answer in answers)
    assert [a["prediction"] for a in alone] == want[:5].tolist()
    ids = [answer["request_id"] for _, answer in answers] + [a["request_id"] for a in alone]
    assert len(set(ids)) == len(ids)
    stored = set(PredictionStore(project.predictions_db).read(model_version=version)["request_id"])
    assert set(ids) <= stored  # the server flushed its log when it stopped

    batches = _trace(trace)
    busy, quiet = batches[:concurrent_batches], batches[concurrent_batches:]
    assert sum(b["rows"] for b in batches) == len(ids)  # each request scored exactly once
    # Bound 1: no batch is larger than max_rows; and batching did happen under concurrency.
    assert max(b["rows"] for b in batches) == MAX_ROWS
    assert all(b["rows"] == b["requests"] for b in batches)  # single-record requests
    assert sum(b["rows"] for b in busy) / len(busy) > 1.5
    # Bound 2: no request waited in the batcher longer than max_wait (plus the event loop's timer slack);
    # a batch that was not full waited for company until its deadline, not less.
    for batch in batches:
        waited = batch["closed"] - batch["first_arrival"]
        assert waited <= MAX_WAIT + LOOP_SLACK, batch
        if batch["reason"] == "wait":
            assert waited >= MAX_WAIT - 0.005, batch
        else:
            assert batch["reason"] == "full" and batch["rows"] == MAX_ROWS, batch
    assert [(b["rows"], b["reason"]) for b in quiet] == [(1, "wait")] * 5
    assert _histogram_count(metrics, "mloop_micro_batch_rows") == len(batches)
    assert _histogram_count(metrics, "mloop_micro_batch_wait_seconds") == len(batches)


def test_one_row_batches_turn_micro_batching_off(project: Project, champion: Any, tmp_path: Path) -> None:
    """`serve.micro_batch_max_rows: 1`: concurrent requests are each scored on their own, no batch is formed."""
    pipeline, contract, _ = champion
    frame = pd.read_csv(project.root / "train.csv").head(40)
    records = as_records(frame, contract)
    want = np.asarray(pipeline.predict(coerce_frame(frame, contract)), dtype=float)
    trace = tmp_path / "batches.jsonl"
    env = {"MLOOP_SERVE__MICRO_BATCH_MAX_ROWS": "1", "MLOOP_BATCH_TRACE": str(trace)}

    def one(index_url: tuple[int, str]) -> tuple[int, float]:
        index, url = index_url
        answer = httpx.post(f"{url}/v1/predict", json=records[index], timeout=30.0)
        assert answer.status_code == 200, answer.text
        return index, float(answer.json()["prediction"])

    with run_server(project, tmp_path, env=env) as srv:
        with ThreadPoolExecutor(8) as pool:
            got = dict(pool.map(one, [(i, srv.url) for i in range(len(records))]))
    np.testing.assert_allclose([got[i] for i in range(len(records))], want, rtol=1e-9)
    assert not trace.exists() or not _trace(trace), "a micro-batch was formed with micro-batching off"

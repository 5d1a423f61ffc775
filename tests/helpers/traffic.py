"""What a client sends an mloop server: feature records as JSON, predictions, and the labels fed back."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import httpx
import pandas as pd

from mloop.data.contract import Contract

BATCH = 50  # records per /v1/predict request


def as_records(frame: pd.DataFrame, columns: Contract | Iterable[str]) -> list[dict[str, Any]]:
    """JSON-ready records of ``columns`` (a contract: its features): NaN becomes null, as a client would
    send a missing value."""
    names = list(columns.features if isinstance(columns, Contract) else columns)
    rows = frame[names].to_dict("records")
    return [{str(k): None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()} for row in rows]


def post(client: httpx.Client, path: str, body: Any) -> httpx.Response:
    """POST ``body`` as JSON, encoded by ``json.dumps`` exactly as given."""
    return client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


def send_with_labels(
    client: httpx.Client,
    rows: pd.DataFrame,
    columns: Contract | Iterable[str],
    labels: pd.Series,
    batch: int = BATCH,
) -> list[str]:
    """POST ``rows`` to /v1/predict in batches, feed ``labels`` (aligned by position) back through
    /v1/feedback, and return the model version that answered each batch."""
    names = list(columns.features if isinstance(columns, Contract) else columns)
    versions = []
    for start in range(0, len(rows), batch):
        chunk = rows.iloc[start : start + batch]
        answer = client.post("/v1/predict", json=as_records(chunk, names))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        versions.append(str(body["model_version"]))
        fed = [
            {"request_id": rid, "label": float(y)}
            for rid, y in zip(body["request_ids"], labels.iloc[start : start + batch], strict=True)
        ]
        assert client.post("/v1/feedback", json=fed).status_code == 200
    return versions

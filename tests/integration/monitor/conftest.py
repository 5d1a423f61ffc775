"""A served champion whose traffic drifted, and `mloop monitor` results for it (real uvicorn, real MLflow)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pandas as pd
import pytest
from tests.integration.serve.conftest import Server, run_server, write_project

from mloop.data.contract import load_contract
from mloop.pipeline import stages
from mloop.project import Project

TRAIN_ROWS = 800
TRAFFIC_ROWS = 200
BATCH = 50


@dataclass(frozen=True)
class Monitored:
    project: Project
    server: Server
    latest: dict[str, Any]  # what `mloop monitor --json` printed


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    rows = frame[columns].to_dict("records")
    return [{str(k): None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()} for r in rows]


def traffic_windows(ames: pd.DataFrame) -> list[pd.DataFrame]:
    """Two windows of later sales: as they were, then with living and lot areas inflated (a clear drift)."""
    later = ames[ames["Year_Sold"] >= 2008]
    calm = later.head(TRAFFIC_ROWS).copy()
    drifted = later.iloc[TRAFFIC_ROWS : 2 * TRAFFIC_ROWS].copy()
    drifted["Gr_Liv_Area"] = (drifted["Gr_Liv_Area"] * 1.8).round().astype("int64")  # the contract says integer
    drifted["Lot_Area"] = (drifted["Lot_Area"] * 2.5).round().astype("int64")
    return [calm, drifted]


def _send(client: httpx.Client, window: pd.DataFrame, features: list[str]) -> None:
    for start in range(0, len(window), BATCH):
        chunk = window.iloc[start : start + BATCH]
        answer = client.post("/v1/predict", json=_records(chunk, features))
        assert answer.status_code == 200, answer.text
        labels = [
            {"request_id": rid, "label": float(y)}
            for rid, y in zip(answer.json()["request_ids"], chunk["Sale_Price"], strict=True)
        ]
        assert client.post("/v1/feedback", json=labels).status_code == 200


def _mloop_monitor(project: Project) -> dict[str, Any]:
    command = [sys.executable, "-m", "mloop", "-c", str(project.root / "mloop.yaml"), "monitor", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="session")
def monitored(tmp_path_factory: pytest.TempPathFactory, ames: pd.DataFrame) -> Iterator[Monitored]:
    """A served champion after two monitored windows of traffic, the second one drifted."""
    root = tmp_path_factory.mktemp("monitor")
    train = ames[ames["Year_Sold"] <= 2007].head(TRAIN_ROWS).reset_index(drop=True)
    project = write_project(root / "ames", train, "ames-monitor")
    assert stages.run(project).decision.promote
    features = load_contract(project.contract_path).features
    with run_server(project, root) as server, server.client() as client:
        latest: dict[str, Any] = {}
        for window in traffic_windows(ames):
            _send(client, window, features)
            latest = _mloop_monitor(project)
        yield Monitored(project, server, latest)

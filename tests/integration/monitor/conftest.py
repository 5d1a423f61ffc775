"""A served champion whose traffic drifted, and `mloop monitor` results for it (real uvicorn, real MLflow)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest
from tests.helpers.cli import mloop_json
from tests.helpers.projects import early_sales, train_champion, write_project
from tests.helpers.servers import Server, run_server
from tests.helpers.traffic import send_with_labels

from mloop.data.contract import load_contract
from mloop.project import Project

TRAIN_ROWS = 800
TRAFFIC_ROWS = 200
BATCH = 50


@dataclass(frozen=True)
class Monitored:
    project: Project
    server: Server
    latest: dict[str, Any]  # what `mloop monitor --json` printed


def traffic_windows(ames: pd.DataFrame) -> list[pd.DataFrame]:
    """Two windows of later sales: as they were, then with living and lot areas inflated (a clear drift)."""
    later = ames[ames["Year_Sold"] >= 2008]
    calm = later.head(TRAFFIC_ROWS).copy()
    drifted = later.iloc[TRAFFIC_ROWS : 2 * TRAFFIC_ROWS].copy()
    drifted["Gr_Liv_Area"] = (drifted["Gr_Liv_Area"] * 1.8).round().astype("int64")  # the contract says integer
    drifted["Lot_Area"] = (drifted["Lot_Area"] * 2.5).round().astype("int64")
    return [calm, drifted]


@pytest.fixture(scope="session")
def monitored(tmp_path_factory: pytest.TempPathFactory, ames: pd.DataFrame) -> Iterator[Monitored]:
    """A served champion after two monitored windows of traffic, the second one drifted."""
    root = tmp_path_factory.mktemp("monitor")
    project = train_champion(write_project(root / "ames", early_sales(ames, TRAIN_ROWS), "ames-monitor"))
    features = load_contract(project.contract_path).features
    with run_server(project, root) as server, server.client() as client:
        latest: dict[str, Any] = {}
        for window in traffic_windows(ames):
            send_with_labels(client, window, features, window["Sale_Price"], BATCH)
            latest = mloop_json("monitor", "--json", project=project)
        yield Monitored(project, server, latest)

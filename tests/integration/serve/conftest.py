"""Real projects (Ames, a real MLflow SQLite store) and a real uvicorn server in a subprocess."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from tests.helpers.projects import early_sales, train_champion, write_project
from tests.helpers.servers import Server, run_server

from mloop.data.contract import Contract, coerce_frame
from mloop.project import Project
from mloop.registry.gate import version_contract
from mloop.registry.versions import CHAMPION, alias_version, load_model

TRAIN_ROWS = 800


@pytest.fixture(scope="session")
def train_frame(ames: pd.DataFrame) -> pd.DataFrame:
    """~800 sales up to 2007 (``ames`` is the suite-wide fixture of tests/conftest.py)."""
    return early_sales(ames, TRAIN_ROWS)


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory, train_frame: pd.DataFrame) -> Project:
    """A project whose version 1 is champion, trained by the real pipeline."""
    return train_champion(write_project(tmp_path_factory.mktemp("serve") / "ames", train_frame, "ames-test"))


@pytest.fixture(scope="session")
def server(project: Project, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(project, tmp_path_factory.mktemp("uvicorn")) as running:
        yield running


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


@pytest.fixture(scope="session")
def champion(project: Project) -> tuple[Any, Contract, str]:
    info = alias_version(project, CHAMPION)
    assert info is not None
    return load_model(project, info.version), version_contract(project, info), info.version


@pytest.fixture(scope="session")
def csv_rows(project: Project) -> pd.DataFrame:
    """Rows read back from the project's CSV where Mas_Vnr_Type is missing, so nulls are exercised."""
    frame = pd.read_csv(project.root / "train.csv")
    rows = frame[frame["Mas_Vnr_Type"].isna()].head(7)
    assert len(rows) == 7 and rows["Misc_Feature"].isna().any()
    return rows


def expected(champion: tuple[Any, Contract, str], rows: pd.DataFrame) -> np.ndarray:
    pipeline, contract, _ = champion
    return np.asarray(pipeline.predict(coerce_frame(rows, contract)), dtype=float)

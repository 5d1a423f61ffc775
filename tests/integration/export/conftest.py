"""A small real project for the orchestrator exports, and the tools the tests drive.

Airflow lives in its own venv (`bash scripts/orchestrators-setup.sh` makes .tools/airflow): its pins
clash with mlflow's. kfp installs into mloop's own environment (the dev and kubeflow extras).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from tests.helpers.projects import early_sales, init_project_on

from mloop.project import Project

REPO = Path(__file__).resolve().parents[3]
AIRFLOW_VENV = Path(os.environ.get("MLOOP_TEST_AIRFLOW_VENV", REPO / ".tools" / "airflow"))
TRAIN_ROWS = 400  # small: the stages run as separate processes, and no search is configured
WINDOW = 100


@pytest.fixture(scope="session")
def export_project(ames: pd.DataFrame) -> Callable[[Path, str], Project]:
    """``export_project(folder, name)``: ``mloop init`` in ``folder/name`` on the first 400 sales of
    2006-2007 (temporal split), monitoring windows of 100 rows."""

    def make(folder: Path, name: str) -> Project:
        return init_project_on(
            folder,
            early_sales(ames, TRAIN_ROWS),
            data_file="data/ames-train.csv",
            project=name,
            time_column="Year_Sold",
            dvc=False,
            monitor={"window_size": WINDOW},
        )

    return make


@pytest.fixture(scope="module")
def airflow_python() -> Path:
    """The Airflow venv's python; skipped (a failure on CI) when the setup script has not run."""
    python = AIRFLOW_VENV / "bin" / "python"
    if not (AIRFLOW_VENV / "bin" / "airflow").is_file():
        pytest.skip(f"no Airflow in {AIRFLOW_VENV}: run `bash scripts/orchestrators-setup.sh`")
    return python

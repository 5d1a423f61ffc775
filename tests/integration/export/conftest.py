"""A small real project for the orchestrator exports, and the tools the tests drive.

Airflow lives in its own venv (`bash scripts/orchestrators-setup.sh` makes .tools/airflow): its pins
clash with mlflow's. kfp installs into mloop's own environment (the dev and kubeflow extras).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mloop.config import dump_config
from mloop.pipeline.scaffold import init_project
from mloop.project import Project

REPO = Path(__file__).resolve().parents[3]
AIRFLOW_VENV = Path(os.environ.get("MLOOP_TEST_AIRFLOW_VENV", REPO / ".tools" / "airflow"))
TRAIN_ROWS = 400  # small: the stages run as separate processes, and no search is configured
WINDOW = 100

# What every subprocess sees: no MLOOP_* override from the caller's shell.
ENV = {k: v for k, v in os.environ.items() if not k.upper().startswith("MLOOP_")} | {"COLUMNS": "200"}
MLOOP = str(Path(sys.executable).parent / "mloop")


def make_project(folder: Path, ames: pd.DataFrame, name: str) -> Project:
    """``mloop init`` on the first 400 sales of 2006-2007 (temporal split), monitoring windows of 100 rows."""
    source = folder / "data" / "ames-train.csv"
    source.parent.mkdir(parents=True)
    ames[ames["Year_Sold"] <= 2007].head(TRAIN_ROWS).to_csv(source, index=False)
    path = init_project(folder / name, str(source), "Sale_Price", time_column="Year_Sold", dvc=False)
    project = Project.load(path)
    config = project.config.model_copy(
        update={"monitor": project.config.monitor.model_copy(update={"window_size": WINDOW})}
    )
    path.write_text(dump_config(config), encoding="utf-8")
    return Project.load(path)


def mloop(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real `mloop` command, from this environment."""
    command = [sys.executable, "-m", "mloop", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=ENV, timeout=300, check=False)


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    output = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert done.returncode == 0, f"{done.args} failed ({done.returncode}):\n{output}"
    return done


@pytest.fixture(scope="module")
def airflow_python() -> Path:
    """The Airflow venv's python; skipped (a failure on CI) when the setup script has not run."""
    python = AIRFLOW_VENV / "bin" / "python"
    if not (AIRFLOW_VENV / "bin" / "airflow").is_file():
        pytest.skip(f"no Airflow in {AIRFLOW_VENV}: run `bash scripts/orchestrators-setup.sh`")
    return python

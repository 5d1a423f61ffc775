"""Real projects (Ames, a real MLflow SQLite store) and a real uvicorn server in a subprocess."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pandas as pd
import pytest
from tests.net import free_port

from mloop.data.contract import Contract, coerce_frame
from mloop.pipeline import stages
from mloop.project import Project
from mloop.registry.gate import version_contract
from mloop.registry.versions import CHAMPION, alias_version, load_model

TRAIN_ROWS = 800
MAX_BATCH = 50
STARTUP_SECONDS = 90.0
STOP_SECONDS = 15.0


def write_project(
    root: Path, frame: pd.DataFrame, name: str, task: str = "regression", target: str = "Sale_Price"
) -> Project:
    """A project folder with ``train.csv`` and a ``mloop.yaml`` tuned for fast tests."""
    root.mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "train.csv", index=False)
    (root / "mloop.yaml").write_text(
        f"name: {name}\n"
        f"task: {task}\n"
        f"data: {{source: train.csv, target: {target}, time_column: Year_Sold}}\n"
        f"serve: {{reload_interval_seconds: 0.5, max_batch_size: {MAX_BATCH}}}\n",
        encoding="utf-8",
    )
    return Project.load(root / "mloop.yaml")


@pytest.fixture(scope="session")
def train_frame(ames: pd.DataFrame) -> pd.DataFrame:
    """~800 sales up to 2007 (``ames`` is the suite-wide fixture of tests/conftest.py)."""
    return ames[ames["Year_Sold"] <= 2007].head(TRAIN_ROWS).reset_index(drop=True)


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory, train_frame: pd.DataFrame) -> Project:
    """A project whose version 1 is champion, trained by the real pipeline."""
    proj = write_project(tmp_path_factory.mktemp("serve") / "ames", train_frame, "ames-test")
    result = stages.run(proj)
    assert result.decision.promote, result.decision
    return proj


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-5000:]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)


def _wait_until_answering(server: Server, path: str, want: int | None) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"uvicorn exited with {server.process.returncode}:\n{server.log()}")
        try:
            status = httpx.get(server.url + path, timeout=2.0).status_code
            if want is None or status == want:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"uvicorn did not answer {path} within {STARTUP_SECONDS}s:\n{server.log()}")


@contextmanager
def run_server(
    project: Project, tmp_dir: Path, ready_status: int = 200, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """uvicorn serving ``project`` on a free local port, until /ready answers ``ready_status``."""
    port = free_port()
    log_path = tmp_dir / f"uvicorn-{port}.log"
    env = {**os.environ, "MLOOP_CONFIG": str(project.root / "mloop.yaml"), "OMP_NUM_THREADS": "1", **(env or {})}
    command = [
        sys.executable, "-m", "uvicorn", "mloop.serve.main:create_app_from_env", "--factory",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, env=env, cwd=project.root, stdout=log_file, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_until_answering(server, "/ready", ready_status)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_SECONDS)


@pytest.fixture(scope="session")
def server(project: Project, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(project, tmp_path_factory.mktemp("uvicorn")) as running:
        yield running


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


T = TypeVar("T")
WAIT_SECONDS = 30.0


def wait_for(check: Callable[[], T | None], what: str, timeout: float = WAIT_SECONDS) -> T:
    """Poll ``check`` until it returns something other than None or False; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value is not None and value is not False:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def as_records(frame: pd.DataFrame, contract: Contract) -> list[dict[str, Any]]:
    """JSON-ready feature records: NaN becomes null, as a client would send a missing value."""
    rows = frame[contract.features].to_dict("records")
    return [{str(k): None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()} for row in rows]


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


def post(client: httpx.Client, path: str, body: Any) -> httpx.Response:
    return client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})

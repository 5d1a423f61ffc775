"""The fault matrix, column (a): the MLflow server stops in the middle of an operation.

A real `mlflow server` (SQLite backend, proxied artifacts) on a fixed 127.0.0.1 port; the command under
test is held at a step boundary (``MLOOP_FAILPOINT=NAME=wait:FILE``), the server is killed, the command
goes on against nothing, and must fail with a clear error (no traceback) and leave the state whole; with
the server back on the same port and store, the same command succeeds. A server keeps answering with its
champion while MLflow is down, and picks up an alias move once it is back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pandas as pd
import pytest
from tests.helpers.cli import clean_env, mloop, ok
from tests.helpers.faults import through_an_outage
from tests.helpers.projects import early_sales, train_champion, write_project
from tests.helpers.servers import Server, free_port, mlflow_server, run_server, wait_for
from tests.helpers.traffic import as_records

from mloop.data.contract import load_contract
from mloop.project import Project
from mloop.registry.versions import CHAMPION, alias_version, list_versions, set_alias

from .test_sigkill import assert_invariants

pytestmark = pytest.mark.integration

# An MLflow client that gives up at once on a dead server instead of retrying for minutes.
FAST_FAIL = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}


class Tracking:
    """An `mlflow server` that can be stopped and started again on the same port, store and artifacts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.backend = f"sqlite:///{root / 'mlflow.db'}"
        self.artifacts = (root / "artifacts").as_uri()
        self._running: AbstractContextManager[Server] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        log = self.root / f"mlflow-{self.starts}.log"
        self._running = mlflow_server(self.backend, log, artifacts_destination=self.artifacts, port=self.port)
        self._running.__enter__()

    def stop(self) -> None:
        if self._running is not None:
            self._running.__exit__(None, None, None)
            self._running = None


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracking]:
    server = Tracking(tmp_path_factory.mktemp("tracking"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def project(tracking: Tracking, tmp_path_factory: pytest.TempPathFactory, ames: pd.DataFrame) -> Project:
    root = tmp_path_factory.mktemp("remote") / "ames"
    project = write_project(root, early_sales(ames, 700), "ames-mlflow-down", tracking={"uri": tracking.url})
    return train_champion(project)


def _new_version(project: Project) -> str:
    """A version trained and registered now (not promoted): the registry's newest."""
    ok(mloop("train", project=project, env=clean_env(**FAST_FAIL)))
    ok(mloop("register", project=project, env=clean_env(**FAST_FAIL)))
    return list_versions(project)[-1].version


def test_register_with_mlflow_down_creates_nothing_and_succeeds_once_it_is_back(
    tracking: Tracking, project: Project, tmp_path: Path
) -> None:
    ok(mloop("train", project=project, env=clean_env(**FAST_FAIL)))
    before = [v.version for v in list_versions(project)]
    through_an_outage(
        project, "register:before-create", ("register",), tracking.stop, tmp_path, "MLflow", env=FAST_FAIL
    )
    tracking.start()
    assert [v.version for v in list_versions(project)] == before  # nothing half-made
    assert_invariants(project)
    ok(mloop("register", project=project, env=clean_env(**FAST_FAIL)))
    assert len(list_versions(project)) == len(before) + 1
    assert_invariants(project)


def test_promote_with_mlflow_down_leaves_the_champion_and_succeeds_once_it_is_back(
    tracking: Tracking, project: Project, tmp_path: Path
) -> None:
    newest = _new_version(project)
    champion = alias_version(project, CHAMPION)
    assert champion is not None and champion.version != newest
    args = ("promote", newest, "--force", "--reason", "fault test")
    stderr = through_an_outage(project, "promote:after-gate", args, tracking.stop, tmp_path, "MLflow", env=FAST_FAIL)
    assert "127.0.0.1" in stderr or "MLflow" in stderr or "tracking" in stderr.lower(), stderr
    tracking.start()
    assert assert_invariants(project) == champion.version  # the alias did not move
    ok(mloop(*args, project=project, env=clean_env(**FAST_FAIL)))
    assert assert_invariants(project) == newest


def test_a_server_keeps_answering_while_mlflow_is_down_and_reloads_when_it_is_back(
    tracking: Tracking, project: Project, tmp_path: Path
) -> None:
    contract = load_contract(project.contract_path)
    record = as_records(pd.read_csv(project.root / "train.csv").head(1), contract)[0]
    other = _new_version(project)
    serving = alias_version(project, CHAMPION)
    assert serving is not None and serving.version != other
    with run_server(project, tmp_path, env=FAST_FAIL) as srv, srv.client() as http:
        tracking.stop()
        answers = []
        for _ in range(20):  # 5 s: many reload polls (every 0.5 s) that cannot reach MLflow
            answers.append(http.post("/v1/predict", json=record))
            time.sleep(0.25)
        ready = http.get("/ready")
        tracking.start()
        set_alias(project, other, CHAMPION)
        wait_for(
            lambda: http.post("/v1/predict", json=record).json().get("model_version") == other or None,
            "the server to load the new champion once MLflow is back",
            timeout=60,
        )
        set_alias(project, serving.version, CHAMPION)  # leave the champion as the other tests expect
    assert [a.status_code for a in answers] == [200] * 20
    assert {a.json()["model_version"] for a in answers} == {serving.version}
    assert ready.status_code == 200

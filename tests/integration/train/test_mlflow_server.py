"""The whole flow (ingest → train → register → gate → rollback) against a real `mlflow server` on
127.0.0.1, backed by a fresh database in the local PostgreSQL and a proxied artifact root."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import httpx
import pandas as pd
import pytest
from tests.helpers.projects import configure, init_project_on
from tests.helpers.servers import mlflow_server

from mloop.pipeline import stages
from mloop.project import Project
from mloop.registry import gate, versions
from mloop.registry.versions import CHAMPION
from mloop.tracking.store import sqlalchemy_url

pytestmark = pytest.mark.integration

PG = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    import psycopg

    try:
        admin = psycopg.connect(f"{PG}/test", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432 ({exc}); apt-get install postgresql")
    name = f"mloop_mlflow_{uuid.uuid4().hex[:8]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{PG}/{name}"
        finally:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    artifacts = tmp_path_factory.mktemp("artifacts")
    log = tmp_path_factory.mktemp("log") / "mlflow.log"
    with mlflow_server(sqlalchemy_url(database), log, artifacts_destination=artifacts.as_uri()) as running:
        yield running.url


@pytest.fixture(scope="module")
def project(server: str, tmp_path_factory: pytest.TempPathFactory, ames: pd.DataFrame) -> Project:
    return init_project_on(
        tmp_path_factory.mktemp("remote"),
        ames.sample(600, random_state=8),
        time_column="Year_Sold",
        tracking={"uri": server},
        train={"importance": False},
        gate={"slices": ["Bldg_Type"], "min_slice_rows": 5},
    )


def test_full_flow_against_mlflow_server_on_postgresql(project: Project, server: str, database: str) -> None:
    first = stages.run(project)
    assert first.decision.promote and first.version.version == "1"
    assert not (project.root / ".mloop" / "mlflow.db").exists()  # nothing went to the embedded store

    weak_project = configure(project, "weak.yaml", train={"params": {"max_iter": 3}})
    trained = stages.train_stage(weak_project)
    v2 = versions.register(weak_project, trained.run_id)
    decision = gate.promote(weak_project, v2.version)
    assert not decision.promote and "beats_champion" in decision.failed  # scored via the server's artifacts
    gate.promote(project, v2.version, force=True, reason="server test")
    assert gate.rollback(project) == ("2", "1")
    assert versions.alias_version(project, CHAMPION).version == "1"  # type: ignore[union-attr]

    # what the MLflow UI reads: run ↔ dataset ↔ model version, from the server's REST API
    found = httpx.get(
        f"{server}/api/2.0/mlflow/model-versions/search", params={"filter": f"name='{project.name}'"}, timeout=30
    ).json()["model_versions"]
    assert {v["version"] for v in found} == {"1", "2"}
    v1 = next(v for v in found if v["version"] == "1")
    assert v1["run_id"] == first.trained.run_id
    assert json.loads({t["key"]: t["value"] for t in v1["tags"]}["mloop.gate"])["promote"] is True
    run = httpx.get(f"{server}/api/2.0/mlflow/runs/get", params={"run_id": v1["run_id"]}, timeout=30).json()["run"]
    assert run["inputs"]["dataset_inputs"][0]["dataset"]["digest"] == first.snapshot.hash[:36]

    # and the rows are in PostgreSQL, not a file
    import psycopg

    with psycopg.connect(database) as conn:
        assert conn.execute("select count(*) from model_versions").fetchone() == (2,)

"""The whole flow (ingest → train → register → gate → rollback) against a real `mlflow server` on
127.0.0.1, backed by a fresh database in the local PostgreSQL and a proxied artifact root."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml
from tests.net import free_port

from mloop.pipeline import stages
from mloop.pipeline.scaffold import init_project
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
    port = free_port()
    argv = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    argv += ["--backend-store-uri", sqlalchemy_url(database), "--artifacts-destination", artifacts.as_uri()]
    log = tmp_path_factory.mktemp("log") / "mlflow.log"
    with log.open("w") as out:
        # Its own process group: `mlflow server` runs uvicorn children that must stop with it.
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not start within 120 s")
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def project(server: str, tmp_path_factory: pytest.TempPathFactory, ames: pd.DataFrame) -> Project:
    folder = tmp_path_factory.mktemp("remote")
    source = folder / "ames.csv"
    ames.sample(600, random_state=8).to_csv(source, index=False)
    path = Path(init_project(folder / "project", str(source), "Sale_Price", time_column="Year_Sold"))  # type: ignore[arg-type]
    config = yaml.safe_load(path.read_text())
    config["tracking"] = {"uri": server}
    config["train"] = {**config.get("train", {}), "importance": False}
    config["gate"] = {"slices": ["Bldg_Type"], "min_slice_rows": 5}
    path.write_text(yaml.safe_dump(config))
    return Project.load(path)


def test_full_flow_against_mlflow_server_on_postgresql(project: Project, server: str, database: str) -> None:
    first = stages.run(project)
    assert first.decision.promote and first.version.version == "1"
    assert not (project.root / ".mloop" / "mlflow.db").exists()  # nothing went to the embedded store

    weak = project.root / "weak.yaml"
    config = yaml.safe_load((project.root / "mloop.yaml").read_text())
    config["train"]["params"] = {"max_iter": 3}
    weak.write_text(yaml.safe_dump(config))
    weak_project = Project.load(weak)
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

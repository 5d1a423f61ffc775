"""Optuna search: trials as MLflow child runs, best parameters on the parent, and two `mloop train --worker`
processes sharing one study in the local PostgreSQL."""

from __future__ import annotations

import gc
import os
import subprocess
import uuid
import warnings
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from tests.helpers.cli import clean_env, mloop_argv, mloop_json
from tests.helpers.projects import init_project_on
from tests.helpers.servers import background

from mloop.pipeline import stages
from mloop.project import Project
from mloop.tracking.store import connect, sqlalchemy_url

pytestmark = pytest.mark.integration

PG = "postgresql://postgres@127.0.0.1:5432"


def project_with_search(folder: Path, frame: pd.DataFrame, **search: object) -> Project:
    """A project whose training runs an Optuna search (``search``: its settings) over a short boosting."""
    return init_project_on(
        folder,
        frame,
        time_column="Year_Sold",
        train={"params": {"max_iter": 60}, "importance": False, "plots": False, "search": {"folds": 2, **search}},
    )


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory, ames: pd.DataFrame) -> tuple[Project, str]:
    project = project_with_search(tmp_path_factory.mktemp("search"), ames.sample(600, random_state=2), trials=5)
    stages.ingest(project)
    return project, stages.train_stage(project).run_id


def test_each_trial_is_a_child_run_and_the_best_params_are_on_the_parent(searched: tuple[Project, str]) -> None:
    project, run_id = searched
    client = MlflowClient(project.tracking_uri)
    parent = client.get_run(run_id)
    assert parent.info.status == "FINISHED"
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'", max_results=100
    )
    assert len(children) == 5
    assert {c.data.tags["mloop.stage"] for c in children} == {"search"}
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert finished and all("cv_rmse" in c.data.metrics for c in finished)
    best = min(finished, key=lambda c: c.data.metrics["cv_rmse"])
    assert parent.data.metrics["search_best_cv_rmse"] == pytest.approx(best.data.metrics["cv_rmse"])
    assert parent.data.metrics["search_trials"] == 5
    for name in ("learning_rate", "max_leaf_nodes", "min_samples_leaf", "l2_regularization"):
        assert float(parent.data.params[f"model.{name}"]) == pytest.approx(float(best.data.params[name]))
    assert parent.data.params["model.max_iter"] == "60"  # fixed params stay, searched ones are added


def test_register_takes_the_parent_not_a_trial(searched: tuple[Project, str]) -> None:
    project, run_id = searched
    from mloop.registry import versions

    assert versions.latest_training_run(project) == run_id


# ------------------------------------------------------------------------- two workers, one study


def _postgres_admin() -> object:
    import psycopg

    try:
        return psycopg.connect(f"{PG}/test", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432 ({exc}); apt-get install postgresql")


@pytest.fixture(scope="module")
def optuna_db() -> Iterator[str]:
    """A fresh database for this test session's study, dropped afterwards."""
    admin = _postgres_admin()
    name = f"mloop_optuna_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    try:
        yield f"{PG}/{name}"
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
        admin.close()  # type: ignore[attr-defined]


def test_two_workers_share_one_study_in_postgresql(tmp_path: Path, ames: pd.DataFrame, optuna_db: str) -> None:
    import optuna

    project = project_with_search(tmp_path, ames.sample(500, random_state=4), trials=6, storage=optuna_db)
    stages.ingest(project)
    stages.validate(project)
    connect(project)  # create the MLflow store once: two processes migrating one new SQLite file collide
    env = clean_env(PYTHONWARNINGS="ignore")
    command = mloop_argv("train", "--worker", "--json", project=project)
    with ExitStack() as running:
        workers = [
            running.enter_context(
                background(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            )
            for _ in range(2)
        ]
        outputs = [w.communicate(timeout=600) for w in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
    summaries = [yaml.safe_load(out) for out, _ in outputs]
    assert summaries[0]["study"] == summaries[1]["study"]

    storage = optuna.storages.RDBStorage(sqlalchemy_url(optuna_db))
    study = optuna.load_study(study_name=summaries[0]["study"], storage=storage)
    done = [t for t in study.trials if t.state.is_finished()]
    assert 6 <= len(done) <= 8  # each worker stops once the study has 6; one may finish a trial in flight
    assert len({t.user_attrs["worker"] for t in done}) == 2  # both processes ran trials

    # each worker's trials are child runs of that worker's parent run, which ends with the study's best
    client = MlflowClient(project.tracking_uri)
    experiment = client.get_experiment_by_name(project.experiment_name)
    assert experiment is not None
    parents = client.search_runs([experiment.experiment_id], "tags.`mloop.stage` = 'search-worker'")
    assert len(parents) == 2 and {p.info.status for p in parents} == {"FINISHED"}
    assert {p.data.tags["mloop.study"] for p in parents} == {summaries[0]["study"]}
    assert {p.data.tags["mloop.worker"] for p in parents} == {t.user_attrs["worker"] for t in done}
    trials = client.search_runs([experiment.experiment_id], "tags.`mloop.stage` = 'search'", max_results=100)
    assert len(trials) == len(done)
    assert {t.data.tags["mlflow.parentRunId"] for t in trials} == {p.info.run_id for p in parents}
    for parent in parents:
        assert parent.data.metrics["search_best_cv_rmse"] >= study.best_value  # the best when it stopped
        assert {"model.learning_rate", "search.study"} <= set(parent.data.params)

    # the coordinator (plain `mloop train`) finds the study full, runs no trial, and fits the best parameters
    coordinator = mloop_json("train", "--json", project=project, env=env, timeout=600)
    run = client.get_run(coordinator["run_id"])
    assert run.data.metrics["search_trials"] == len(done)
    assert float(run.data.params["model.learning_rate"]) == pytest.approx(study.best_params["learning_rate"])
    storage.engine.dispose()

    # in this process too, and it leaves no PostgreSQL connection open behind it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        trained = stages.train_stage(project)
        gc.collect()
    assert trained.metrics["search_trials"] == len(done)
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [str(w.message) for w in caught]


def test_psycopg_uris_name_an_installed_driver() -> None:
    assert sqlalchemy_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"  # psycopg 3 is installed
    assert sqlalchemy_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"  # kept as written
    assert sqlalchemy_url("sqlite:///x.db") == "sqlite:///x.db"

"""`mloop trace REQUEST_ID` on real traffic: a champion and a shadowing challenger served by uvicorn, the rows
they logged in the SQLite log (and copied into the real local PostgreSQL log), traced back through the real
MLflow store to the run, the data snapshot, the contract and the git commit the project was at."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.helpers.cli import clean_env, failed, mloop, mloop_json, ok, run_command
from tests.helpers.projects import (
    configure,
    early_sales,
    init_project_on,
    train_champion,
    train_version,
    write_project,
)
from tests.helpers.servers import run_server, wait_for
from tests.helpers.traffic import as_records
from tests.postgres_schema import fresh_schema

from mloop.cli.main import exit_code
from mloop.data import versioning
from mloop.data.contract import load_contract, save_contract
from mloop.data.predictions import SHADOW_SUFFIX, PredictionRow, PredictionStore
from mloop.data.predictions_pg import PgPredictionStore, safe_url
from mloop.data.snapshot import content_hash, load_snapshot
from mloop.errors import MonitorError
from mloop.project import Project
from mloop.registry.versions import CHALLENGER, CHAMPION, VersionInfo, alias_version, client, set_alias

pytestmark = pytest.mark.integration

TRAIN_ROWS = 400
TRAFFIC_ROWS = 3
GIT_ENV = {
    f"GIT_{who}_{what}": value
    for who in ("AUTHOR", "COMMITTER")
    for what, value in (("NAME", "t"), ("EMAIL", "t@e.org"))
}


@dataclass(frozen=True)
class Traced:
    project: Project
    commit: str
    champion: VersionInfo
    challenger: VersionInfo
    request_ids: list[str]  # what /v1/predict answered, in order
    predictions: list[float]
    records: list[dict[str, Any]]
    label: float  # fed back for request_ids[0]


def _git(folder: Path, *args: str) -> str:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(folder), **GIT_ENV}  # no user or global git config
    done = subprocess.run(["git", *args], cwd=folder, env=env, capture_output=True, text=True, check=True)  # noqa: S603, S607
    return done.stdout.strip()


def _committed(folder: Path) -> str:
    """``folder`` as a git work tree at one commit (of the empty tree): training records it."""
    folder.mkdir(parents=True)
    _git(folder, "init", "-q")
    sha = _git(folder, "commit-tree", _git(folder, "write-tree"), "-m", "trace test")
    _git(folder, "update-ref", "HEAD", sha)
    return sha


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory, ames: pd.DataFrame) -> Traced:
    """A champion and a challenger (trained on more rows), served with every request shadowed; three requests
    answered, the first one labelled through /v1/feedback."""
    root = tmp_path_factory.mktemp("trace")
    commit = _committed(root / "ames")
    project = train_champion(write_project(root / "ames", early_sales(ames, TRAIN_ROWS), "ames-trace"))
    more = root / "more.csv"
    early_sales(ames, TRAIN_ROWS + 200).to_csv(more, index=False)
    challenger = train_version(project, more)
    set_alias(project, challenger.version, CHALLENGER)
    champion = alias_version(project, CHAMPION)
    assert champion is not None and champion.version != challenger.version

    traffic = ames[ames["Year_Sold"] >= 2009].head(TRAFFIC_ROWS)
    records = as_records(traffic, load_contract(project.contract_path))
    label = float(traffic["Sale_Price"].iloc[0])
    store = PredictionStore(project.predictions_db)
    with run_server(project, root, env={"MLOOP_SERVE__SHADOW_FRACTION": "1.0"}) as server, server.client() as http:
        answer = http.post("/v1/predict", json=records)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert str(body["model_version"]) == champion.version
        ids = [str(i) for i in body["request_ids"]]
        fed = http.post("/v1/feedback", json=[{"request_id": ids[0], "label": label}])
        assert fed.status_code == 200, fed.text
        wanted = [*ids, *(i + SHADOW_SUFFIX for i in ids)]

        def logged() -> bool | None:
            rows = [store.get(i) for i in wanted]
            return True if all(rows) and rows[0] is not None and rows[0].label is not None else None

        wait_for(logged, "the answers, their shadows and the label in the log")
    return Traced(project, commit, champion, challenger, ids, [float(p) for p in body["predictions"]], records, label)


def _logged(project: Project, request_id: str) -> PredictionRow:
    row = PredictionStore(project.predictions_db).get(request_id)
    assert row is not None
    return row


def _assert_lineage_of(found: dict[str, Any], project: Project, version: VersionInfo, commit: str) -> None:
    """The printed lineage is the registry's and the MLflow run's: version, run, data hash, contract, commit."""
    run = client(project).get_run(version.run_id)
    assert found["model"] == {
        "name": project.name,
        "version": version.version,
        "registered": True,
        "aliases": version.aliases,
        "created": found["model"]["created"],
        "artifact_sha256": version.tags["mloop.artifact_sha256"],
    }
    assert found["run"]["id"] == version.run_id
    assert found["run"]["name"] == run.info.run_name
    assert found["run"]["experiment"] == project.experiment_name
    assert found["run"]["status"] == "FINISHED" and found["run"]["deleted"] is False
    primary = project.config.primary_metric
    assert next(iter(found["run"]["metrics"])) == primary
    assert found["run"]["metrics"][primary] == pytest.approx(run.data.metrics[primary])
    assert found["data"]["hash"] == version.tags["mloop.data_hash"] == run.data.tags["mloop.data_hash"]
    assert Path(found["data"]["path"]).is_file() and found["data"]["in_workspace"] is True
    assert found["contract_hash"] == version.tags["mloop.contract_hash"]
    assert found["contract_version"] == load_contract(project.contract_path).version
    assert found["git_commit"] == commit == run.data.tags["mloop.git_sha"] == version.tags["mloop.git_sha"]
    # write_project keeps DVC off: the one gap is that nothing but the workspace holds the snapshot's bytes
    assert found["data"]["restore"] == [] and found["data"]["dvc_file"] is None
    assert len(found["missing"]) == 1 and "is not versioned by DVC" in found["missing"][0]


# ------------------------------------------------------------------------------------------ SQLite log


def test_trace_json_is_the_logged_row_and_its_lineage(traced: Traced) -> None:
    project, request_id = traced.project, traced.request_ids[0]
    found = mloop_json("trace", request_id, "--json", project=project)
    row = PredictionStore(project.predictions_db).get(request_id)
    assert row is not None

    assert (found["request_id"], found["answered_request_id"], found["shadow"]) == (request_id, request_id, False)
    assert found["log"] == str(project.predictions_db)
    logged = found["prediction"]
    assert logged["model_version"] == traced.champion.version
    assert logged["features"] == row.features
    assert {k: logged["features"][k] for k in traced.records[0]} == traced.records[0]  # what the caller sent
    assert logged["prediction"] == pytest.approx(traced.predictions[0], rel=1e-12)
    assert logged["label"] == traced.label and logged["label_ts"] == row.label_ts
    assert logged["ts"] == row.ts and logged["latency_ms"] == pytest.approx(row.latency_ms)
    champion = alias_version(project, CHAMPION)
    assert champion is not None
    _assert_lineage_of(found, project, champion, traced.commit)

    unlabelled = mloop_json("trace", traced.request_ids[1], "--json", project=project)
    assert unlabelled["prediction"]["label"] is None and unlabelled["prediction"]["label_ts"] is None
    assert {k: unlabelled["prediction"]["features"][k] for k in traced.records[1]} == traced.records[1]


def test_trace_prints_the_lineage_for_a_person(traced: Traced) -> None:
    project, request_id = traced.project, traced.request_ids[0]
    out = ok(mloop("trace", request_id, project=project), quiet=True).stdout
    champion = traced.champion
    for expected in (
        request_id,
        f"{project.name} v{champion.version} (champion)",
        champion.run_id,
        champion.tags["mloop.data_hash"],
        champion.tags["mloop.contract_hash"],
        traced.commit,
        "not versioned by DVC",
        "Gr_Liv_Area",
    ):
        assert expected in out, f"{expected!r} not in:\n{out}"
    assert "shadow" not in out


def test_a_shadow_row_is_the_challengers_answer(traced: Traced) -> None:
    project, request_id = traced.project, traced.request_ids[2]
    shadow_id = request_id + SHADOW_SUFFIX
    found = mloop_json("trace", shadow_id, "--json", project=project)
    assert (found["request_id"], found["answered_request_id"], found["shadow"]) == (shadow_id, request_id, True)
    assert found["prediction"]["model_version"] == traced.challenger.version
    assert found["prediction"]["features"] == _logged(project, request_id).features  # what the champion was asked
    challenger = alias_version(project, CHALLENGER)
    assert challenger is not None and CHALLENGER in found["model"]["aliases"]
    _assert_lineage_of(found, project, challenger, traced.commit)
    assert found["data"]["hash"] != traced.champion.tags["mloop.data_hash"]  # trained on more rows

    out = ok(mloop("trace", shadow_id, project=project)).stdout
    assert f"shadow prediction of the challenger (version {traced.challenger.version})" in out
    assert f"mloop trace {request_id}" in out


def test_an_unknown_request_id_is_one_line_naming_the_log(traced: Traced) -> None:
    done = mloop("trace", "no-such-request", project=traced.project)
    err = failed(done)
    assert done.returncode == exit_code(MonitorError)
    assert err.strip().count("\n") == 0, err
    assert f"request 'no-such-request' is not in the prediction log {traced.project.predictions_db}" in err
    assert done.stdout == ""


def test_without_a_prediction_log_trace_says_so_and_makes_none(tmp_path: Path, ames: pd.DataFrame) -> None:
    project = write_project(tmp_path / "empty", early_sales(ames, 50), "no-log")
    err = failed(mloop("trace", "r1", project=project))
    assert f"no prediction log at {project.predictions_db}" in err
    assert not project.predictions_db.exists()


# ------------------------------------------------------------------------------------------ gaps


def test_a_deleted_run_and_missing_tags_are_named_not_fatal(traced: Traced, ames: pd.DataFrame) -> None:
    """A version whose run was deleted and whose data hash and commit tags are gone (on the version and the
    run): what is known prints, every gap is named, and the command succeeds."""
    project = traced.project
    more = project.root.parent / "gaps.csv"
    early_sales(ames, TRAIN_ROWS + 100).to_csv(more, index=False)
    version = train_version(project, more)
    mlflow = client(project)
    for tag in ("mloop.data_hash", "mloop.git_sha"):
        mlflow.delete_model_version_tag(project.name, version.version, tag)
        mlflow.delete_tag(version.run_id, tag)
    mlflow.delete_tag(version.run_id, "mlflow.source.git.commit")
    mlflow.delete_run(version.run_id)
    store = PredictionStore(project.predictions_db)
    ts = "2026-03-01T00:00:00.000000+00:00"
    store.write_many(
        [
            PredictionRow("gap-run", ts, version.version, traced.records[0], 1.0, 2.0),
            PredictionRow("gap-version", ts, "999", traced.records[0], 1.0, 2.0),
        ]
    )

    found = mloop_json("trace", "gap-run", "--json", project=project)
    assert found["model"]["version"] == version.version and found["model"]["registered"] is True
    assert found["run"]["id"] == version.run_id and found["run"]["deleted"] is True
    assert found["data"]["hash"] is None and found["git_commit"] is None
    assert found["contract_hash"] == version.tags["mloop.contract_hash"]  # still tagged, still found
    missing = " | ".join(found["missing"])
    assert f"MLflow run {version.run_id} was deleted" in missing
    assert "no mloop.data_hash tag" in missing and "no git commit recorded" in missing
    out = ok(mloop("trace", "gap-run", project=project)).stdout
    assert "(deleted)" in out and "no mloop.data_hash tag" in out

    unknown = mloop_json("trace", "gap-version", "--json", project=project)
    assert unknown["model"] == {**unknown["model"], "version": "999", "registered": False}
    assert unknown["run"]["id"] is None and unknown["data"]["hash"] is None
    assert unknown["missing"] == [
        f"model {project.name!r} has no version 999 in the registry at sqlite:///{project.workspace / 'mlflow.db'}: "
        "it was deleted, or the row was logged by another project"
    ]


def test_the_contract_version_is_the_runs_once_the_project_moved_on(traced: Traced) -> None:
    """The project's contract was updated since training: the version comes from the copy the run logged."""
    contract = load_contract(traced.project.contract_path)
    save_contract(contract.model_copy(update={"version": contract.version + 5}), traced.project.root / "newer.yaml")
    moved_on = configure(traced.project, file_name="moved-on.yaml", data={"contract": "newer.yaml"})
    found = mloop_json("trace", traced.request_ids[0], "--json", project=moved_on)
    assert found["contract_hash"] == traced.champion.tags["mloop.contract_hash"] != moved_on.contract().hash()
    assert found["contract_version"] == contract.version
    assert len(found["missing"]) == 1  # only the snapshot's DVC gap


@pytest.mark.skipif(not versioning.available(), reason="DVC is not installed (pip install 'mloop[dvc]')")
def test_a_dvc_versioned_snapshot_comes_with_the_commands_that_restore_it(tmp_path: Path, ames: pd.DataFrame) -> None:
    project = train_champion(init_project_on(tmp_path, early_sales(ames, 300), name="houses", dvc=True, no_scm=True))
    champion = alias_version(project, CHAMPION)
    assert champion is not None
    features = {"Gr_Liv_Area": 1500}
    project.prediction_store().write_many(
        [PredictionRow("r1", "2026-01-01T00:00:00.000000+00:00", champion.version, features, 1.0, 1.0)]
    )
    found = mloop_json("trace", "r1", "--json", project=project)
    snapshot = load_snapshot(project.snapshots_dir, champion.tags["mloop.data_hash"])
    tracked = versioning.dvc_file(snapshot)
    assert found["data"]["hash"] == snapshot.hash and found["data"]["dvc_file"] == str(tracked)
    assert found["data"]["restore"] == [
        f"mloop -c {project.config_file} data checkout {snapshot.hash}",
        f"cd {project.root} && dvc pull {tracked.resolve().relative_to(project.root.resolve())}",
    ]
    assert not any("DVC" in gap for gap in found["missing"])

    Path(snapshot.path).unlink()  # the first command brings exactly those bytes back
    ok(run_command(shlex.split(found["data"]["restore"][0]), env=clean_env(PATH=_venv_path())))
    assert content_hash(snapshot.read()) == snapshot.hash


def _venv_path() -> str:
    return str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")


# ------------------------------------------------------------------------------------------ PostgreSQL log


@pytest.fixture
def on_postgres(traced: Traced) -> Iterator[tuple[Project, PgPredictionStore]]:
    """A sibling config of the project (same workspace and MLflow store) whose prediction log is a fresh
    PostgreSQL schema, holding the rows the server logged, labels included."""
    sqlite = PredictionStore(traced.project.predictions_db)
    with fresh_schema() as (url, _):
        project = configure(traced.project, file_name="pg.yaml", monitor={"predictions_url": url})
        store = project.prediction_store()
        assert isinstance(store, PgPredictionStore)
        rows = [sqlite.get(i) for i in [*traced.request_ids, *(i + SHADOW_SUFFIX for i in traced.request_ids)]]
        store.write_many(r for r in rows if r is not None)
        assert (
            store.attach_labels([(r.request_id, r.label) for r in rows if r is not None and r.label is not None]) == []
        )
        yield project, store


def test_trace_reads_the_postgresql_log(on_postgres: tuple[Project, PgPredictionStore], traced: Traced) -> None:
    project, store = on_postgres
    request_id = traced.request_ids[0]
    found = mloop_json("trace", request_id, "--json", project=project)
    assert found["log"] == store.location == safe_url(project.config.monitor.predictions_url or "")
    assert found["prediction"]["features"] == _logged(traced.project, request_id).features
    assert found["prediction"]["prediction"] == pytest.approx(traced.predictions[0], rel=1e-12)
    assert found["prediction"]["label"] == traced.label
    champion = alias_version(project, CHAMPION)
    assert champion is not None
    _assert_lineage_of(found, project, champion, traced.commit)
    shadow = mloop_json("trace", traced.request_ids[1] + SHADOW_SUFFIX, "--json", project=project)
    assert shadow["shadow"] is True and shadow["model"]["version"] == traced.challenger.version

    done = mloop("trace", "no-such-request", project=project)
    err = failed(done)
    assert f"request 'no-such-request' is not in the prediction log {store.location}" in err
    assert "options" not in err and done.returncode == exit_code(MonitorError)


# ------------------------------------------------------------------------------------------ the lookup


def test_get_is_one_row_by_request_id_in_both_stores(tmp_path: Path) -> None:
    rows = [
        PredictionRow("a", "2026-01-01T00:00:01.000000+00:00", "1", {"area": 1.5, "kind": None}, 10.0, 1.5),
        PredictionRow("b", "2026-01-01T00:00:02.000000+00:00", "2", {"area": 2.5, "kind": "x"}, [0.1, 0.9], 2.5),
    ]
    with fresh_schema() as (url, _):
        for store in (PredictionStore(tmp_path / "log.db"), PgPredictionStore(url)):
            store.write_many(rows)
            assert store.attach_labels([("b", "yes")]) == []
            assert store.get("a") == rows[0]
            b = store.get("b")
            assert b is not None and b.label == "yes" and b.label_ts is not None
            assert (b.features, b.prediction, b.model_version) == (rows[1].features, [0.1, 0.9], "2")
            assert store.get("c") is None and store.get("") is None

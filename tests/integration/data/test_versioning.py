"""Data versions with real DVC: track, push, restore without the cache, and `dvc repro` over mloop stages.

DVC is slow to import and `dvc repro` trains a model, so one project is built per module and the tests
read the steps it went through.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.helpers.cli import clean_env, mloop_json, ok, run_command
from tests.helpers.projects import init_project_on

from mloop.data import versioning
from mloop.pipeline import stages
from mloop.project import Project

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not versioning.available(), reason="DVC is not installed (pip install 'mloop[dvc]')"),
]

# The venv's bin first: `dvc repro` runs the stages as `mloop …` commands.
ENV = clean_env(PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""), DVC_NO_ANALYTICS="1")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return ok(run_command(args, cwd=cwd, env=ENV, timeout=600))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def repro(tmp_path_factory: pytest.TempPathFactory, ames: pd.DataFrame) -> dict[str, Any]:
    """A no-scm project: `dvc repro` twice, then a changed source and `dvc repro` again."""
    root = tmp_path_factory.mktemp("dvc")
    source = root / "houses.csv"
    folder = init_project_on(
        root,
        ames.iloc[:500],
        data_file=source.name,
        project="houses",
        name="houses",
        dvc=True,
        no_scm=True,
        train={"estimator": "linear"},  # the fastest model: DVC is tested
    ).root
    steps: dict[str, Any] = {"root": root, "folder": folder, "source": source}
    steps["first"] = run("dvc", "repro", cwd=folder).stdout
    steps["second"] = run("dvc", "repro", cwd=folder).stdout
    steps["ingest"] = json.loads((folder / ".mloop" / "stages" / "ingest.json").read_text())
    ames.iloc[:520].to_csv(source, index=False)
    steps["third"] = run("dvc", "repro", "validate", cwd=folder).stdout  # up to validate: training is slow
    steps["list"] = mloop_json("data", "list", "--json", cwd=folder, env=ENV, timeout=600)
    return steps


def test_init_makes_a_dvc_repo_with_a_local_remote(repro: dict[str, Any]) -> None:
    folder: Path = repro["folder"]
    assert (folder / ".dvc").is_dir() and (folder / "dvc.yaml").is_file()
    config = (folder / ".dvc" / "config").read_text()
    assert "no_scm = True" in config and "dvc-remote" in config


def test_dvc_repro_runs_the_stages_then_skips_them(repro: dict[str, Any]) -> None:
    for stage in ("ingest", "validate", "train", "register"):
        assert f"Running stage '{stage}'" in repro["first"]
        assert f"Stage '{stage}' didn't change, skipping" in repro["second"]
    assert "Running stage" not in repro["second"]
    assert repro["ingest"]["contract_created"] is True


def test_a_changed_source_reruns_the_pipeline(repro: dict[str, Any]) -> None:
    for stage in ("ingest", "validate"):
        assert f"Running stage '{stage}'" in repro["third"]
    assert "'train'" not in repro["third"]


def test_every_accepted_snapshot_is_pushed(repro: dict[str, Any]) -> None:
    listed = repro["list"]
    assert [row["rows"] for row in listed] == [500, 520]
    assert all(row["dvc"] and row["status"] == "accepted" for row in listed)
    remote = repro["folder"] / ".mloop" / "dvc-remote"
    assert len([p for p in remote.rglob("*") if p.is_file()]) >= 2


def test_data_list_shows_the_models_trained_on_each_version(repro: dict[str, Any]) -> None:
    models = [row["models"] for row in repro["list"]]
    assert models == [["v1 (champion)"], []]


def test_checkout_by_model_version_from_the_cache(repro: dict[str, Any]) -> None:
    folder: Path = repro["folder"]
    second = repro["list"][0]
    path = Path(second["path"])
    before = digest(path)
    path.unlink()
    out = mloop_json("data", "checkout", "v1", "--json", cwd=folder, env=ENV, timeout=600)
    assert out["hash"] == second["hash"] and out["restored_from"] == "cache"
    assert digest(path) == before
    again = mloop_json("data", "checkout", second["hash"], "--json", cwd=folder, env=ENV, timeout=600)
    assert again["restored_from"] == "workspace"


def test_checkout_from_the_remote_after_the_cache_is_gone(repro: dict[str, Any]) -> None:
    folder: Path = repro["folder"]
    first = repro["list"][1]
    path = Path(first["path"])
    before = digest(path)
    shutil.rmtree(folder / ".dvc" / "cache")
    path.unlink()
    out = mloop_json("data", "checkout", first["hash"][:10], "--json", cwd=folder, env=ENV, timeout=600)
    assert out["restored_from"] == "remote"
    assert digest(path) == before
    # the restored version is now the latest: training would use it
    assert stages.latest_snapshot(Project.load(folder / "mloop.yaml").snapshots_dir).hash == first["hash"]


def test_in_a_git_repo_the_dvc_files_are_committable(tmp_path: Path, ames: pd.DataFrame) -> None:
    run("git", "init", "-q", str(tmp_path), cwd=tmp_path)
    project = init_project_on(tmp_path, ames.iloc[:300], data_file="houses.csv", name="houses", dvc=True)
    assert "no_scm" not in (project.root / ".dvc" / "config").read_text()
    stages.ingest(project)
    snapshot, report = stages.validate(project)
    assert report.passed
    dvc_file = versioning.dvc_file(snapshot).relative_to(tmp_path)
    parquet = Path(snapshot.path).relative_to(tmp_path)
    ignored = subprocess.run(
        ["git", "check-ignore", str(dvc_file), str(parquet)], cwd=tmp_path, capture_output=True, text=True, check=False
    ).stdout.split()
    assert str(parquet) in ignored and str(dvc_file) not in ignored


def test_a_rejected_snapshot_is_not_versioned(tmp_path: Path, ames: pd.DataFrame) -> None:
    project = init_project_on(tmp_path, ames.iloc[:300], data_file="houses.csv", name="houses", dvc=True, no_scm=True)
    stages.ingest(project)
    broken = ames.iloc[:300].drop(columns=["Lot_Area"])
    bad = stages.ingest(project, frame=broken, source="broken").snapshot
    _, report = stages.validate(project, bad.hash)
    assert not report.passed
    assert not versioning.dvc_file(bad).exists()

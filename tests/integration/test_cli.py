"""The real `mloop` command in a subprocess, on data it was not developed against.

Every invocation costs a Python start and mloop's imports (seconds), so the independent scenarios run
side by side in threads, started once per module; each test waits for the one it checks.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from tests.helpers.cli import Result, failed, mloop, ok, run_command
from tests.helpers.cli_help import WALK_HELP
from tests.helpers.projects import tree_digest

pytestmark = pytest.mark.integration

Steps = dict[str, Any]


# ------------------------------------------------------------------------------------- scenarios


def side_by_side(**calls: Callable[[], Result]) -> dict[str, Result]:
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = {name: pool.submit(call) for name, call in calls.items()}
        return {name: future.result() for name, future in futures.items()}


def breast_cancer_scenario(root: Path) -> Steps:
    """init → run, then the read-only commands, then bad input that must not harm anything."""
    load_breast_cancer(as_frame=True).frame.to_csv(root / "breast_cancer.csv", index=False)
    project = root / "cancer"
    steps: Steps = {"project": project}
    steps["init"] = mloop("init", "cancer", "--source", "breast_cancer.csv", "--target", "target", cwd=root)
    if steps["init"].returncode != 0:
        return steps
    steps["run"] = mloop("run", "--json", cwd=project)
    steps |= side_by_side(
        models=lambda: mloop("models", "--json", cwd=project),
        validate=lambda: mloop("validate", cwd=project),
        data_list=lambda: mloop("data", "list", "--json", cwd=project),
        promote_no_reason=lambda: mloop("promote", "--force", cwd=project),
        rollback=lambda: mloop("rollback", cwd=project),
    )

    noise = root / "noise.csv"
    noise.write_bytes(np.random.default_rng(3).bytes(2048))
    before = tree_digest(project / ".mloop" / "snapshots")
    steps["bad_ingest"] = mloop("ingest", "--source", str(noise), cwd=project)
    steps["snapshots_before"], steps["snapshots_after"] = before, tree_digest(project / ".mloop" / "snapshots")
    steps |= side_by_side(
        data_list_after=lambda: mloop("data", "list", "--json", cwd=project),
        models_after=lambda: mloop("models", "--json", cwd=project),
    )
    return steps


def ames_scenario(root: Path, ames: pd.DataFrame) -> Steps:
    ames.sample(600, random_state=5).to_csv(root / "ames.csv", index=False)
    args = ("init", "houses", "--source", "ames.csv", "--target", "Sale_Price", "--time-column", "Year_Sold")
    steps: Steps = {"project": root / "houses", "init": mloop(*args, cwd=root)}
    if steps["init"].returncode == 0:
        steps["run"] = mloop("run", "--json", cwd=root / "houses")
    return steps


def misspelt_config(root: Path) -> Steps:
    project = root / "typo"
    project.mkdir()
    config = project / "mloop.yaml"
    config.write_text("name: typo\ndata:\n  source: x.csv\n  target: y\ntrian:\n  seed: 1\n", encoding="utf-8")
    return {"config": config, "validate": mloop("validate", cwd=project)}


def init_missing_target(root: Path) -> Steps:
    source = root / "listings.csv"
    pd.DataFrame({"id": [1, 2, 3], "price [usd]": [1.0, 2.0, 3.0], "rooms": [3, 4, 5]}).to_csv(source, index=False)
    return {"root": root, "init": mloop("init", "listings", "--source", str(source), "--target", "price", cwd=root)}


def init_missing_source(root: Path) -> Steps:
    missing = root / "exports" / "sales-2024.csv"
    return {
        "root": root,
        "missing": missing,
        "init": mloop("init", "p", "--source", str(missing), "--target", "y", cwd=root),
    }


def help_scenario(root: Path) -> Steps:
    every = run_command([sys.executable, "-c", WALK_HELP], cwd=root)
    return {"top": mloop("--help", cwd=root), "every": every}


# ------------------------------------------------------------------------------------ the runner


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory, ames: pd.DataFrame) -> Iterator[dict[str, Future[Steps]]]:
    jobs: dict[str, Callable[[Path], Steps]] = {
        "cancer": breast_cancer_scenario,
        "ames": lambda root: ames_scenario(root, ames),
        "typo": misspelt_config,
        "no_target": init_missing_target,
        "no_source": init_missing_source,
        "help": help_scenario,
    }
    pool = ThreadPoolExecutor(max_workers=3)
    futures = {name: pool.submit(job, tmp_path_factory.mktemp(name)) for name, job in jobs.items()}
    yield futures
    pool.shutdown(wait=True)


def steps(scenarios: dict[str, Future[Steps]], name: str) -> Steps:
    return scenarios[name].result(timeout=600)


# ------------------------------------------------------------------------ breast cancer, end to end


def test_init_guesses_classification_for_a_new_file(scenarios: dict[str, Future[Steps]]) -> None:
    s = steps(scenarios, "cancer")
    ok(s["init"], quiet=True)
    config = (s["project"] / "mloop.yaml").read_text()
    assert "task: classification" in config
    assert "target: target" in config
    assert "source: ../breast_cancer.csv" in config  # relative to the project, so the folder can move
    assert (s["project"] / ".gitignore").read_text() == ".mloop/\n"


def test_run_json_reports_version_one(scenarios: dict[str, Future[Steps]]) -> None:
    s = steps(scenarios, "cancer")
    report = json.loads(ok(s["run"], quiet=True).stdout)
    assert report["version"] == "1"
    assert report["gate"]["promote"] is True
    assert report["gate"]["metric"] == "log_loss"
    assert {"accuracy", "f1", "roc_auc", "log_loss"} <= set(report["metrics"])
    assert report["metrics"]["accuracy"] > 0.9
    assert len(report["snapshot"]) == 64
    assert (s["project"] / ".mloop" / "mlflow.db").is_file()


def test_models_json_lists_the_champion(scenarios: dict[str, Future[Steps]]) -> None:
    s = steps(scenarios, "cancer")
    [version] = json.loads(ok(s["models"], quiet=True).stdout)
    run = json.loads(s["run"].stdout)
    assert version["version"] == "1"
    assert version["aliases"] == ["champion"]
    assert version["run_id"] == run["run_id"]
    assert version["tags"]["mloop.data_hash"] == run["snapshot"]
    assert json.loads(version["tags"]["mloop.gate"])["promote"] is True


def test_validate_passes_the_training_snapshot(scenarios: dict[str, Future[Steps]]) -> None:
    out = ok(steps(scenarios, "cancer")["validate"], quiet=True).stdout
    assert "passed" in out
    assert "569 rows" in out


def test_data_list_json(scenarios: dict[str, Future[Steps]]) -> None:
    s = steps(scenarios, "cancer")
    [snapshot] = json.loads(ok(s["data_list"], quiet=True).stdout)
    assert snapshot["hash"] == json.loads(s["run"].stdout)["snapshot"]
    assert snapshot["rows"] == 569
    assert snapshot["source"].endswith("breast_cancer.csv")
    assert "target" in snapshot["columns"]


def test_forced_promotion_needs_a_reason(scenarios: dict[str, Future[Steps]]) -> None:
    result = steps(scenarios, "cancer")["promote_no_reason"]
    err = failed(result)
    assert "--reason" in err
    assert result.returncode == 2


def test_rollback_with_nothing_to_roll_back_to(scenarios: dict[str, Future[Steps]]) -> None:
    result = steps(scenarios, "cancer")["rollback"]
    err = failed(result)
    assert result.returncode == 7
    assert "no earlier champion" in err
    assert "\n\n" not in err.strip()  # one paragraph
    assert err.startswith("error:")


def test_bad_ingest_names_the_file_and_harms_nothing(scenarios: dict[str, Future[Steps]]) -> None:
    s = steps(scenarios, "cancer")
    err = failed(s["bad_ingest"])
    assert s["bad_ingest"].returncode == 3
    assert "noise.csv" in err
    assert s["snapshots_after"] == s["snapshots_before"]  # not one byte of the stored snapshots changed
    assert json.loads(ok(s["data_list_after"], quiet=True).stdout) == json.loads(s["data_list"].stdout)
    assert json.loads(ok(s["models_after"], quiet=True).stdout) == json.loads(s["models"].stdout)


# --------------------------------------------------------------------------------- Ames, temporal


def test_ames_with_a_time_column(scenarios: dict[str, Future[Steps]]) -> None:
    s = steps(scenarios, "ames")
    ok(s["init"], quiet=True)
    config = (s["project"] / "mloop.yaml").read_text()
    assert "task: regression" in config
    assert "time_column: Year_Sold" in config
    assert "strategy: random" not in config  # a time column keeps the temporal split
    report = json.loads(ok(s["run"], quiet=True).stdout)
    assert report["version"] == "1"
    assert report["gate"]["metric"] == "rmse"
    assert report["gate"]["promote"] is True
    assert 5_000 < report["metrics"]["rmse"] < 80_000


# ------------------------------------------------------------------------------------- bad input


def test_unknown_config_key_exits_2_naming_key_and_file(scenarios: dict[str, Future[Steps]]) -> None:
    s = steps(scenarios, "typo")
    err = failed(s["validate"])
    assert s["validate"].returncode == 2
    assert "trian" in err
    assert "did you mean 'train'" in err
    assert str(s["config"]) in err.replace("\n", "")


def test_init_with_a_missing_target_lists_the_columns(scenarios: dict[str, Future[Steps]]) -> None:
    s = steps(scenarios, "no_target")
    err = failed(s["init"])
    assert "'price'" in err
    assert "id, price [usd], rooms" in err  # the real column names, exactly as in the file
    assert not (s["root"] / "listings" / "mloop.yaml").exists()


def test_init_with_a_missing_source_names_the_path(scenarios: dict[str, Future[Steps]]) -> None:
    s = steps(scenarios, "no_source")
    err = failed(s["init"])
    assert s["init"].returncode == 3
    assert str(s["missing"]) in err.replace("\n", "")
    assert not (s["root"] / "p" / "mloop.yaml").exists()


# ------------------------------------------------------------------------------------------- help


def test_top_level_help_lists_the_stages(scenarios: dict[str, Future[Steps]]) -> None:
    out = ok(steps(scenarios, "help")["top"], quiet=True).stdout
    for command in ("init", "ingest", "validate", "train", "register", "promote", "rollback", "run", "serve"):
        assert command in out


def test_every_command_has_help(scenarios: dict[str, Future[Steps]]) -> None:
    every = steps(scenarios, "help")["every"]
    assert every.returncode == 0, every.stderr
    results = json.loads(every.stdout)["commands"]
    expected = {"init", "ingest", "validate", "train", "register", "promote", "rollback", "models", "run"}
    assert expected | {"serve", "monitor", "retrain", "data", "data list"} <= set(results)
    for command, result in results.items():
        assert result["code"] == 0, f"mloop {command} --help: {result['stderr']}"
        assert "Usage:" in result["stdout"], command
        assert "Traceback" not in result["stderr"], command

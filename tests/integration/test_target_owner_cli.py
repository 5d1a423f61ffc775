"""The real `mloop` command in a subprocess: a data.target edited after the first ingest is refused, with
the fix, and both fixes (put data.target back, or `mloop contract set-target`) train again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from sklearn.datasets import load_diabetes
from tests.helpers.cli import Result, failed, mloop, ok
from tests.helpers.projects import tree_digest

from mloop.data.contract import load_contract

pytestmark = pytest.mark.integration


def failed_with(result: Result, exit_code: int) -> str:
    """``failed``, with the exit code given and mloop's one-paragraph message, unwrapped for comparing."""
    assert result.returncode == exit_code, f"{result.args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert failed(result).startswith("error: "), result.stderr
    return " ".join(result.stderr.split())


def set_target(config: Path, column: str) -> None:
    values = yaml.safe_load(config.read_text(encoding="utf-8"))
    values["data"]["target"] = column
    config.write_text(yaml.safe_dump(values, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A diabetes regression project (442 rows, target `target`) after one `mloop run`."""
    root = tmp_path_factory.mktemp("owner")
    load_diabetes(as_frame=True).frame.to_csv(root / "diabetes.csv", index=False)
    ok(mloop("init", "diabetes", "--source", "diabetes.csv", "--target", "target", "--no-dvc", cwd=root))
    folder = root / "diabetes"
    ok(mloop("run", "--json", cwd=folder))
    assert load_contract(folder / "contract.yaml").target == "target"
    return folder


def test_an_edited_data_target_is_refused_and_either_fix_trains_again(project: Path) -> None:
    config = project / "mloop.yaml"
    set_target(config, "bmi")  # a feature in the contract: trained on, it would be the label and an input
    before = tree_digest(project)

    for command in (("train",), ("run",), ("retrain",)):
        message = failed_with(mloop(*command, cwd=project), exit_code=2)
        assert "data.target is 'bmi'" in message and "the target 'target'" in message, message
        assert str(config) in message and str(project / "contract.yaml") in message, message
        assert "set `data.target: target` in mloop.yaml" in message, message
        assert "`mloop contract set-target bmi`" in message, message
    assert tree_digest(project) == before  # no snapshot, run, version, audit entry or contract change

    # Fix 1: data.target back to the contract's target.
    set_target(config, "target")
    trained = json.loads(ok(mloop("train", "--json", cwd=project)).stdout)
    assert trained["rows_train"] > 300 and trained["metrics"]["r2"] > 0.2

    # Fix 2: predict bmi: the contract takes the new target (checked against the latest snapshot).
    set_target(config, "bmi")
    missing = failed_with(mloop("contract", "set-target", "BMI", cwd=project), exit_code=4)
    assert "'BMI' is not in the latest snapshot" in missing and "bmi" in missing
    moved = json.loads(ok(mloop("contract", "set-target", "bmi", "--json", cwd=project)).stdout)
    assert moved | {"contract_hash": None} == {
        "target": "bmi",
        "previous": "target",
        "updated": True,
        "version": 2,
        "contract_hash": None,
        "config_agrees": True,
    }
    contract = load_contract(project / "contract.yaml")
    assert (contract.target, contract.version, contract.columns["target"].role) == ("bmi", 2, "ignored")
    assert "bmi" not in contract.features and "target" not in contract.features
    trained = json.loads(ok(mloop("train", "--json", cwd=project)).stdout)
    assert trained["contract_hash"] == moved["contract_hash"] and trained["rows_train"] > 300

    # The champion predicts the old target: the gate will not compare the two, and says how to override.
    version = json.loads(ok(mloop("register", "--run-id", trained["run_id"], "--json", cwd=project)).stdout)
    refused = failed_with(mloop("promote", cwd=project), exit_code=7)
    assert "predicts 'bmi' but champion v1 predicts 'target'" in refused and "--force" in refused, refused
    assert version["version"] == "2"
    # Nor will retraining mix the champion's feedback labels (values of the old target) into the new one.
    audit = (project / ".mloop" / "audit.jsonl").read_bytes()
    refused = failed_with(mloop("retrain", cwd=project), exit_code=10)
    assert "champion v1 predicts 'target' but the data contract's target is now 'bmi'" in refused, refused
    assert (project / ".mloop" / "audit.jsonl").read_bytes() == audit  # refused before any decision is journaled


def test_set_target_on_the_current_target_changes_nothing(project: Path) -> None:
    before = (project / "contract.yaml").read_bytes()
    target = load_contract(project / "contract.yaml").target
    set_target(project / "mloop.yaml", target)
    out = ok(mloop("contract", "set-target", target, cwd=project)).stdout
    assert "already the target" in out and "set `data.target" not in out
    assert (project / "contract.yaml").read_bytes() == before

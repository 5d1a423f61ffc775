"""The data contract owns the target: its name, its typing, and mloop.yaml's agreement with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_diabetes

from mloop.config import MloopConfig
from mloop.data.contract import ColumnSpec, Contract, infer_contract, load_contract, save_contract
from mloop.errors import ConfigError, ContractError, TrainError
from mloop.project import Project
from mloop.train.split import prepare


def diabetes() -> pd.DataFrame:
    frame: pd.DataFrame = load_diabetes(as_frame=True).frame
    return frame.assign(target=frame["target"].round().astype("int64"))  # an integer target, as prices are


def small(target: str = "y", **columns: ColumnSpec) -> Contract:
    return Contract(
        target=target,
        columns={
            "x": ColumnSpec(dtype="float"),
            "y": ColumnSpec(dtype="integer", role="target"),
            "label": ColumnSpec(dtype="string", role="ignored"),
            "year": ColumnSpec(dtype="integer", role="time"),
            **columns,
        },
    )


# -------------------------------------------------------------------------------------- target_values


def test_a_regression_target_is_float_even_when_stored_as_integers() -> None:
    frame = pd.DataFrame({"y": pd.Series([1, 2, 3], dtype="int64"), "x": [0.1, 0.2, 0.3]})
    y = small().target_values(frame, "regression")
    assert y.dtype == np.float64 and y.tolist() == [1.0, 2.0, 3.0]
    assert y.index.equals(frame.index)


def test_numeric_text_is_parsed_and_missing_stays_missing_for_regression() -> None:
    frame = pd.DataFrame({"y": ["1.5", None, 4]}, dtype=object)
    y = small().target_values(frame, "regression")
    assert y.dtype == np.float64 and y.iloc[0] == 1.5 and np.isnan(y.iloc[1]) and y.iloc[2] == 4.0


def test_a_label_in_a_regression_target_names_its_row_and_the_fix() -> None:
    frame = pd.DataFrame({"y": [1, 2, "cheap", 4]}, dtype=object)
    with pytest.raises(TrainError) as info:
        small().target_values(frame, "regression")
    assert "'y'" in info.value.message and "row 2" in info.value.message and "'cheap'" in info.value.message
    assert "task: classification" in info.value.message


def test_classification_labels_are_text() -> None:
    ints = pd.DataFrame({"y": pd.Series([0, 1, 1], dtype="int64")})
    assert small().target_values(ints, "classification").tolist() == ["0", "1", "1"]
    names = pd.DataFrame({"y": ["setosa", "virginica"]})
    assert small().target_values(names, "classification").tolist() == ["setosa", "virginica"]


def test_the_split_reads_the_contracts_target_not_the_configs() -> None:
    frame = diabetes()
    contract = infer_contract(frame, "target")
    # A config naming another column: the training split still learns the contract's target.
    config = MloopConfig.model_validate(
        {
            "name": "t",
            "task": "regression",
            "data": {"source": "x.csv", "target": "bmi"},
            "split": {"strategy": "random"},
        }
    )
    split = prepare(frame, contract, config)
    assert split.y_train.dtype == np.float64
    assert split.y_train.equals(frame.loc[split.y_train.index, "target"].astype(float))
    assert "target" not in split.X_train.columns and "bmi" in split.X_train.columns


# ---------------------------------------------------------------------------- one target in the contract


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"target": "z"}, "target 'z' is not one of the contract's columns"),
        ({"target": "x"}, "target 'x' has role 'feature' under columns; give it role: target"),
        ({"columns": {"x": {"dtype": "float", "role": "target"}}}, "'x' also has role target, but the target is 'y'"),
    ],
)
def test_a_contract_whose_target_and_roles_disagree_is_refused(
    tmp_path: Path, change: dict[str, object], expected: str
) -> None:
    data = small().model_dump(mode="json", exclude_none=True)
    for key, value in change.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    path = tmp_path / "contract.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ContractError) as info:
        load_contract(path)
    assert str(path) in info.value.message and expected in info.value.message
    assert "Value error" not in info.value.message


def test_with_target_swaps_the_roles_and_bumps_the_version() -> None:
    contract = small()
    moved = contract.with_target("x")
    assert (moved.target, moved.version) == ("x", contract.version + 1)
    assert moved.columns["x"].role == "target" and moved.columns["y"].role == "ignored"
    assert "x" not in moved.features and "y" not in moved.features
    assert contract.target == "y" and contract.columns["x"].role == "feature"  # the original is untouched
    assert Contract.model_validate(moved.model_dump()) == moved  # still a valid contract
    assert contract.with_target("y") is contract


@pytest.mark.parametrize(("column", "expected"), [("nope", "mloop contract update"), ("year", "time column")])
def test_with_target_refuses_what_cannot_be_a_target(column: str, expected: str) -> None:
    with pytest.raises(ContractError, match=expected):
        small().with_target(column)


# ----------------------------------------------------------------------- mloop.yaml agrees with the contract


def project_with(tmp_path: Path, config_target: str, contract: Contract, config_name: str = "mloop.yaml") -> Project:
    config = {"name": "t", "data": {"source": "data.csv", "target": config_target}}
    (tmp_path / config_name).write_text(yaml.safe_dump(config), encoding="utf-8")
    save_contract(contract, tmp_path / "contract.yaml")
    return Project.load(tmp_path / config_name)


def test_the_contract_loads_when_data_target_agrees(tmp_path: Path) -> None:
    project = project_with(tmp_path, "y", small())
    assert project.contract() == small()


def test_a_disagreeing_data_target_names_both_values_both_files_and_the_fixes(tmp_path: Path) -> None:
    project = project_with(tmp_path, "x", small())
    with pytest.raises(ConfigError) as info:
        project.contract()
    message = info.value.message
    assert "data.target is 'x'" in message and "the target 'y'" in message
    assert str(tmp_path / "mloop.yaml") in message and str(tmp_path / "contract.yaml") in message
    assert "('x' has the role feature there)" in message  # why it matters: it would be trained on as an input
    assert "set `data.target: y` in mloop.yaml" in message
    assert "run `mloop contract set-target x`" in message and "version 1" in message


def test_the_fix_names_the_config_file_and_the_environment_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = project_with(tmp_path, "x", small(), config_name="houses.yaml")
    with pytest.raises(ConfigError, match=r"`mloop -c houses.yaml contract set-target x`"):
        project.contract()
    monkeypatch.setenv("MLOOP_DATA__TARGET", "label")
    project = Project.load(tmp_path / "houses.yaml")
    with pytest.raises(ConfigError) as info:
        project.contract()
    message = info.value.message
    assert "data.target is 'label' in MLOOP_DATA__TARGET (overriding" in message and "houses.yaml" in message
    assert "('label' has the role ignored there)" in message
    assert "unset MLOOP_DATA__TARGET or set it to y" in message


def test_a_missing_contract_is_still_the_ingest_hint(tmp_path: Path) -> None:
    project = project_with(tmp_path, "y", small())
    project.contract_path.unlink()
    with pytest.raises(ContractError, match="run `mloop ingest`"):
        project.contract()

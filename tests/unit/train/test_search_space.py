"""The Optuna search space in train.search.space: validated with the parameter named, used as written,
the built-in space per estimator when it is empty."""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import pytest
from sklearn.datasets import load_diabetes

from mloop.config import MloopConfig, parse_config
from mloop.data.contract import infer_contract
from mloop.errors import ConfigError, TrainError
from mloop.train.search import check_space, search, suggest


def config(space: dict[str, Any], estimator: str = "hist_gradient_boosting", **search: Any) -> MloopConfig:
    return parse_config(
        {
            "name": "t",
            "data": {"source": "unused.csv", "target": "target"},
            "split": {"strategy": "random"},
            "train": {"estimator": estimator, "params": {"max_iter": 20}, "search": {"space": space, **search}},
        },
        "mloop.yaml",
    )


@pytest.mark.parametrize(
    ("param", "key", "message"),
    [
        ({"type": "float", "low": 0.5, "high": 0.1}, "high", "high (0.1) is below low (0.5)"),
        ({"type": "float", "low": 0.1}, "high", "a float parameter needs both low and high"),
        ({"type": "int", "low": 2.5, "high": 9}, "low", "must be whole numbers"),
        ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "log", "must start above 0"),
        ({"type": "float", "low": 0.1, "high": 1.0, "log": True, "step": 0.1}, "step", "cannot be combined"),
        ({"type": "categorical"}, "choices", "needs a non-empty list of choices"),
        ({"type": "categorical", "choices": [1, 2], "low": 1}, "choices", "takes choices, not low"),
        ({"type": "int", "low": 1, "high": 3, "choices": [1]}, "choices", "choices are for categorical"),
        ({"type": "flot", "low": 1, "high": 3}, "type", "'int', 'float' or 'categorical'"),
        ({"type": "int", "low": 1, "hihg": 3}, "hihg", "unknown key"),
    ],
)
def test_a_bad_range_is_refused_naming_the_parameter(param: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config({"max_leaf_nodes": param})
    assert f"train.search.space.max_leaf_nodes.{key}:" in info.value.message
    assert message in info.value.message


def test_an_unknown_parameter_is_refused_before_any_trial() -> None:
    with pytest.raises(TrainError) as info:
        check_space(config({"max_leaf_node": {"type": "int", "low": 8, "high": 64}}))
    assert "train.search.space.max_leaf_node" in info.value.message
    assert "did you mean 'max_leaf_nodes'" in info.value.message
    with pytest.raises(TrainError, match="RandomForestRegressor .* no parameter 'zzz'; its parameters are:.*max_depth"):
        check_space(config({"zzz": {"type": "int", "low": 2, "high": 6}}, estimator="random_forest"))
    check_space(config({"max_depth": {"type": "int", "low": 2, "high": 6}}, estimator="random_forest"))


def trial_params(space: dict[str, Any], estimator: str = "hist_gradient_boosting", n: int = 30) -> list[dict[str, Any]]:
    cfg = config(space, estimator)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(suggest(trial, estimator, "regression", cfg.train.search.space))
        study.tell(trial, 0.0)
    return out


def test_the_configured_space_is_searched_as_written() -> None:
    drawn = trial_params(
        {
            "learning_rate": {"type": "float", "low": 0.01, "high": 0.02, "log": True},
            "max_leaf_nodes": {"type": "int", "low": 10, "high": 20, "step": 5},
            "l2_regularization": {"type": "categorical", "choices": [0.0, 1.0]},
        }
    )
    assert all(set(p) == {"learning_rate", "max_leaf_nodes", "l2_regularization"} for p in drawn)
    assert all(0.01 <= p["learning_rate"] <= 0.02 for p in drawn)
    assert {p["max_leaf_nodes"] for p in drawn} <= {10, 15, 20} and all(type(p["max_leaf_nodes"]) is int for p in drawn)
    assert {p["l2_regularization"] for p in drawn} == {0.0, 1.0}


@pytest.mark.parametrize(
    ("estimator", "names"),
    [
        ("hist_gradient_boosting", {"learning_rate", "max_leaf_nodes", "min_samples_leaf", "l2_regularization"}),
        ("random_forest", {"max_depth", "min_samples_leaf", "max_features"}),
        ("linear", {"alpha"}),
    ],
)
def test_an_empty_space_means_the_built_in_one(estimator: str, names: set[str]) -> None:
    assert all(set(p) == names for p in trial_params({}, estimator, n=3))


def test_a_search_with_a_configured_space_finds_the_best_of_it() -> None:
    frame = load_diabetes(as_frame=True).frame
    cfg = config({"max_leaf_nodes": {"type": "categorical", "choices": [3, 7]}}, trials=4, folds=2)
    found = search(
        frame.drop(columns="target"), frame["target"], infer_contract(frame, "target"), cfg, data_hash="0" * 12
    )
    assert set(found.best_params) == {"max_leaf_nodes"} and found.best_params["max_leaf_nodes"] in (3, 7)
    assert found.trials == 4 and found.best_value is not None and np.isfinite(found.best_value)

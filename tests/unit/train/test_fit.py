"""Training without MLflow: every estimator and task on data scikit-learn ships, encodings, CV, determinism."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.preprocessing import TargetEncoder

from mloop.config import MloopConfig
from mloop.data.contract import Contract, infer_contract
from mloop.errors import TrainError
from mloop.train.pipeline import build_pipeline, split_categorical
from mloop.train.trainer import fit

ESTIMATORS = ["hist_gradient_boosting", "random_forest", "linear", "lightgbm", "xgboost"]


def config(target: str, task: str, estimator: str = "hist_gradient_boosting", **split: Any) -> MloopConfig:
    return MloopConfig(
        name="t",
        task=task,  # type: ignore[arg-type]
        data={"source": "unused.csv", "target": target},  # type: ignore[arg-type]
        split={"strategy": "random", **split},  # type: ignore[arg-type]
        train={"estimator": estimator, "params": {"n_estimators": 50} if estimator == "random_forest" else {}},  # type: ignore[arg-type]
    )


def diabetes() -> pd.DataFrame:
    frame = load_diabetes(as_frame=True).frame
    return frame.assign(sex=np.where(frame["sex"] > 0, "m", "f"))  # one text column, so encoders run


def iris() -> pd.DataFrame:
    data = load_iris(as_frame=True)
    return data.frame.assign(species=[data.target_names[i] for i in data.target]).drop(columns="target")


def cancer() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame.assign(
        target=lambda f: f["target"].map({0: "malignant", 1: "benign"})
    )


CASES = {
    "regression": (diabetes, "target", "r2", 0.3),
    "binary": (cancer, "target", "roc_auc", 0.95),
    "multiclass": (iris, "species", "accuracy", 0.85),
}


def run(case: str, estimator: str, **split: Any) -> tuple[Any, dict[str, Any]]:
    make, target, _, _ = CASES[case]
    frame = make()
    task = "regression" if case == "regression" else "classification"
    contract = infer_contract(frame, target)
    return fit(frame, contract, config(target, task, estimator, **split))


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("case", list(CASES))
def test_every_estimator_learns_every_task(case: str, estimator: str) -> None:
    _, target, metric, minimum = CASES[case]
    model, parts = run(case, estimator)
    assert parts["metrics"][metric] > minimum, parts["metrics"]
    if case != "regression":
        assert parts["metrics"]["accuracy"] > parts["baseline"]["accuracy"]
        predicted = set(map(str, model.predict(parts["X_test"])))
        assert predicted <= set(parts["y_test"].unique())  # labels come back as labels, also from XGBoost
    else:
        assert parts["metrics"]["rmse"] < parts["baseline"]["rmse"]


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_same_data_config_and_seed_give_the_same_metrics(estimator: str) -> None:
    first, second = run("regression", estimator)[1], run("regression", estimator)[1]
    assert first["metrics"] == second["metrics"]


@pytest.mark.parametrize("estimator", ["lightgbm", "xgboost"])
def test_a_missing_extra_is_named(estimator: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, estimator, None)  # what an environment without the package looks like
    with pytest.raises(TrainError) as info:
        run("regression", estimator)
    assert f"mloop[{estimator}]" in info.value.message


def test_bad_params_are_a_train_error() -> None:
    frame = diabetes()
    cfg = config("target", "regression")
    cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"params": {"no_such_param": 1}})})
    with pytest.raises(TrainError, match="no_such_param"):
        fit(frame, infer_contract(frame, "target"), cfg)


def high_cardinality_frame(rows: int = 1500) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    zips = rng.integers(0, 300, rows)
    effect = np.sin(zips) * 50  # a price level per zip code the model can only learn from the zip itself
    return pd.DataFrame(
        {
            "zip": [f"z{z:03d}" for z in zips],
            "kind": rng.choice(["a", "b"], rows),
            "area": rng.normal(100, 20, rows),
            "price": effect + rng.normal(0, 5, rows),
        }
    )


def test_high_cardinality_text_is_target_encoded() -> None:
    frame = high_cardinality_frame()
    contract: Contract = infer_contract(frame, "price")
    assert split_categorical(contract) == (["kind"], ["zip"])
    for estimator in ("hist_gradient_boosting", "linear"):
        pipeline = build_pipeline(contract, "regression", estimator)
        names = [name for name, _, _ in pipeline.named_steps["preprocess"].transformers]
        assert "high" in names
        _, parts = fit(frame, contract, config("price", "regression", estimator))
        assert parts["metrics"]["r2"] > 0.7, (estimator, parts["metrics"])  # the zip's level was learnt
    fitted = fit(frame, contract, config("price", "regression"))[0]
    encoder = fitted.named_steps["preprocess"].named_transformers_["high"].steps[-1][1]
    assert isinstance(encoder, TargetEncoder)


def test_cross_validation_on_the_training_part() -> None:
    _, parts = run("binary", "hist_gradient_boosting", cv_folds=3)
    cv = parts["cv"]
    assert {"cv_roc_auc_mean", "cv_roc_auc_std", "cv_accuracy_mean", "cv_log_loss_mean"} <= set(cv)
    assert cv["cv_roc_auc_mean"] > 0.95 and 0 <= cv["cv_roc_auc_std"] < 0.1
    assert run("binary", "hist_gradient_boosting", cv_folds=3)[1]["cv"] == cv  # seeded folds
    assert run("binary", "hist_gradient_boosting")[1]["cv"] == {}  # off by default


def test_classification_holdout_is_stratified() -> None:
    _, parts = run("multiclass", "linear")
    counts = parts["y_test"].value_counts()
    assert counts.max() - counts.min() <= 1  # 50 of each species: 10 of each held out

"""Permutation importance: the fast paths (tree sums, encoded blocks) give what shuffling raw columns and
predicting with the whole pipeline gives, for every task and estimator; the metric is the task's own."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from threadpoolctl import threadpool_limits

from mloop.config import MloopConfig
from mloop.core.metrics import task_metrics
from mloop.data.contract import infer_contract
from mloop.registry.scoring import predict
from mloop.train import importance
from mloop.train.trainer import fit


def frame(case: str) -> tuple[pd.DataFrame, str]:
    rng = np.random.default_rng(0)
    if case == "regression":
        data = load_diabetes(as_frame=True).frame
        data = data.assign(sex=np.where(data["sex"] > 0, "m", "f"))
    elif case == "binary":
        data = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 7, 20, 27, 30]]
        data = data.assign(target=data["target"].map({0: "malignant", 1: "benign"}))
    else:
        raw = load_iris(as_frame=True)
        data = raw.frame.assign(target=[raw.target_names[i] for i in raw.target])
    # a text column with many values (target-encoded: one encoded column per class) and one with a few
    # (one-hot for linear models), both with gaps, so every kind of encoded block is there
    codes = rng.integers(0, 80, len(data))
    data = data.assign(
        zone=[f"z{c:02d}" if i % 13 else None for i, c in enumerate(codes)],
        kind=rng.choice(["a", "b", "c"], len(data)),
    )
    return data, "target"


def fitted(case: str, estimator: str, metric: str) -> tuple[Any, pd.DataFrame, pd.Series, str]:
    data, target = frame(case)
    task = "regression" if case == "regression" else "classification"
    config = MloopConfig(
        name="t",
        task=task,  # type: ignore[arg-type]
        data={"source": "unused.csv", "target": target},  # type: ignore[arg-type]
        split={"strategy": "random", "test_fraction": 0.4},  # type: ignore[arg-type]
        train={"estimator": estimator, "params": {"n_estimators": 30} if estimator == "random_forest" else {}},  # type: ignore[arg-type]
        gate={"metric": metric},  # type: ignore[arg-type]
    )
    model, parts = fit(data, infer_contract(data, target), config)
    return model, parts["X_test"], parts["y_test"], task


CASES = [
    ("regression", "hist_gradient_boosting", "rmse"),
    ("regression", "linear", "r2"),
    ("regression", "random_forest", "mape"),
    ("binary", "hist_gradient_boosting", "roc_auc"),
    ("binary", "linear", "f1"),
    ("multiclass", "hist_gradient_boosting", "log_loss"),
    ("multiclass", "random_forest", "accuracy"),
    ("multiclass", "linear", "roc_auc"),
]


def run(model: Any, X: pd.DataFrame, y: pd.Series, task: str, metric: str) -> dict[str, float]:
    with threadpool_limits(1):  # as in training (train.threads); OpenMP on a busy machine is slow
        reference = predict(model, X, task)
        return importance.permutation_importance(
            model, X, y, task, metric, rows=120, repeats=2, seed=3, reference=reference
        )


@pytest.mark.parametrize(("case", "estimator", "metric"), CASES)
def test_every_path_gives_the_importances_of_shuffling_raw_columns(
    case: str, estimator: str, metric: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, X, y, task = fitted(case, estimator, metric)
    used: list[str] = []
    build, fast = importance._TreeSums.build.__func__, importance._fast_paths  # type: ignore[attr-defined]

    def spy_build(cls: Any, *args: Any) -> Any:
        tree = build(cls, *args)
        used.append("trees" if tree is not None else "encoded")
        return tree

    monkeypatch.setattr(importance._TreeSums, "build", classmethod(spy_build))
    fastest = run(model, X, y, task, metric)
    assert used == ["trees" if estimator == "hist_gradient_boosting" else "encoded"]
    monkeypatch.setattr(importance._TreeSums, "build", classmethod(lambda cls, *args: None))
    encoded = run(model, X, y, task, metric)
    monkeypatch.setattr(importance, "_fast_paths", lambda *args: (None, importance._unused, []))
    raw = run(model, X, y, task, metric)  # the definition: shuffle a raw column, predict with the pipeline
    monkeypatch.setattr(importance, "_fast_paths", fast)
    assert list(raw) == list(fastest) or np.allclose(sorted(raw.values()), sorted(fastest.values()))
    for name, value in raw.items():
        assert fastest[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name
        assert encoded[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name
    assert set(raw) == set(X.columns) and max(raw.values()) > 0


def test_the_score_is_the_task_metric() -> None:
    for case, estimator, metric in CASES:
        model, X, y, task = fitted(case, estimator, metric)
        with threadpool_limits(1):
            predictions = predict(model, X, task)
        classes = [] if task == "regression" else [str(c) for c in model.classes_]
        score = importance._scorer(metric, task, y.to_numpy(), classes)
        assert score(predictions) == pytest.approx(task_metrics(y, predictions, task)[metric], rel=1e-9), metric


def test_a_prefix_clash_between_column_names_falls_back_to_raw_columns() -> None:
    data, target = frame("regression")
    data = data.assign(kind_a=np.where(data["age"] > 0, "old", "young"))  # "kind" one-hot makes "kind_a" too
    config = MloopConfig(
        name="t",
        data={"source": "unused.csv", "target": target},  # type: ignore[arg-type]
        split={"strategy": "random"},  # type: ignore[arg-type]
        train={"estimator": "linear"},  # type: ignore[arg-type]
    )
    model, parts = fit(data, infer_contract(data, target), config)
    X, y = parts["X_test"], parts["y_test"]
    assert importance._blocks(model[0], [str(c) for c in X.columns]) is None  # ambiguous: not guessed
    scores = run(model, X, y, "regression", "rmse")
    assert set(scores) == set(X.columns) and scores["kind_a"] != 0.0


def test_a_helping_thread_changes_nothing_but_the_time() -> None:
    model, X, y, task = fitted("multiclass", "hist_gradient_boosting", "log_loss")
    with threadpool_limits(1):
        reference = predict(model, X, task)
        alone = importance.permutation_importance(
            model, X, y, task, "log_loss", rows=120, repeats=2, seed=3, reference=reference
        )
        job = importance.PermutationImportance(
            model, X, y, task, "log_loss", rows=120, repeats=2, seed=3, reference=reference
        )
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(job.compute)
            job.help()  # may find it still preparing (returns at once) or take columns alongside
            while not future.done():
                job.help()
            shared = future.result()
    assert shared == alone


def test_a_failing_column_fails_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    model, X, y, task = fitted("regression", "linear", "rmse")
    job = importance.PermutationImportance(model, X, y, task, "rmse", rows=50, repeats=1, seed=0)

    calls: list[int] = []

    def broken(*args: Any) -> float:
        calls.append(1)
        if len(calls) > 3:  # the baseline and two columns score; the third column fails
            raise RuntimeError("boom")
        return 1.0

    monkeypatch.setattr(importance, "_scorer", lambda *args: broken)
    with pytest.raises(RuntimeError, match="boom"):
        job.compute()


def test_trees_without_splits_and_repeats_on_the_tree_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline

    X = pd.DataFrame({"a": np.arange(200.0), "b": np.arange(200.0) % 3})
    y = pd.Series(np.where(X["a"] > 100, 1.0, 0.0))
    # a step target: the first trees split on "a", the later ones are single leaves (nothing left to fit)
    model = Pipeline(
        [
            ("preprocess", ColumnTransformer([("num", "passthrough", ["a", "b"])])),
            ("model", HistGradientBoostingRegressor(max_iter=30, learning_rate=1.0)),
        ]
    ).fit(X, y)
    assert {len(p[0].nodes) for p in model[-1]._predictors} >= {1, 3}
    built: list[object] = []
    build = importance._TreeSums.build.__func__  # type: ignore[attr-defined]

    def spy(cls: Any, *args: Any) -> Any:
        built.append(build(cls, *args))
        return built[-1]

    monkeypatch.setattr(importance._TreeSums, "build", classmethod(spy))
    fastest = run(model, X, y, "regression", "rmse")
    assert built and built[0] is not None  # the tree path was taken
    monkeypatch.setattr(importance, "_fast_paths", lambda *args: (None, importance._unused, []))
    raw = run(model, X, y, "regression", "rmse")
    assert fastest["a"] == pytest.approx(raw["a"], rel=1e-9) and fastest["a"] > 0
    assert fastest["b"] == raw["b"] == 0.0


def test_a_category_the_trees_never_saw_is_not_binned() -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, 300).astype(float)
    X = np.column_stack([codes, rng.normal(size=300)])
    model = HistGradientBoostingRegressor(max_iter=5, categorical_features=[0]).fit(X, codes + X[:, 1])
    seen = np.array([[0.0, 0.1], [2.0, -1.0], [np.nan, 0.5]])
    binned = importance._binned(model._bin_mapper, seen)
    assert binned is not None and binned.dtype == np.uint8 and binned.flags.c_contiguous
    assert importance._binned(model._bin_mapper, np.array([[7.0, 0.1]])) is None  # binning would misplace it


def test_a_helper_failing_while_the_worker_is_busy_fails_the_job_without_hanging() -> None:
    model, X, y, task = fitted("regression", "linear", "rmse")
    job = importance.PermutationImportance(model, X, y, task, "rmse", rows=50, repeats=1, seed=0)
    job.prepare()
    plan = job._plan
    main = threading.main_thread()
    worker_busy, helper_failed = threading.Event(), threading.Event()

    def run(unit: int) -> Any:
        if threading.current_thread() is main:
            raise MemoryError("the helper failed")
        worker_busy.set()
        helper_failed.wait(10)  # the worker is inside a unit while the helper fails
        return plan.run(unit)

    job._plan = importance._Plan(plan.units, run, plan.collect)
    outcome: list[BaseException] = []

    def compute() -> None:
        try:
            job.compute()
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=compute, daemon=True)  # a daemon: a regression fails the test, not hangs it
    worker.start()
    assert worker_busy.wait(10)
    with pytest.raises(MemoryError):
        job.help()  # as the trainer does once its own work is done
    helper_failed.set()
    worker.join(10)
    assert not worker.is_alive(), "compute() still waits for units nobody will take"
    assert len(outcome) == 1 and isinstance(outcome[0], MemoryError)  # the worker's compute ends with the error

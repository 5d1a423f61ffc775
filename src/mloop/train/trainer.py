"""Train one model on a snapshot: split, fit, evaluate, and log it all to MLflow."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from mloop.config import MloopConfig
from mloop.core.metrics import classification_metrics, regression_metrics, score_model
from mloop.data.contract import Contract, coerce_frame, load_contract
from mloop.data.profile import build_profile
from mloop.data.snapshot import Snapshot
from mloop.errors import TrainError
from mloop.project import Project
from mloop.tracking.runs import CONTRACT_ARTIFACT, PROFILE_ARTIFACT, log_training_run
from mloop.train.pipeline import build_pipeline
from mloop.train.split import holdout_split


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    model_uri: str
    metrics: dict[str, float]
    baseline: dict[str, float]
    rows_train: int
    rows_test: int
    seconds: float
    data_hash: str
    contract_hash: str
    extra: dict[str, Any] = field(default_factory=dict)


def labelled(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    if target not in frame.columns:
        raise TrainError(
            f"target column {target!r} (data.target) is not in the data; columns are: "
            f"{', '.join(map(str, frame.columns[:20]))}{'…' if frame.shape[1] > 20 else ''}"
        )
    rows = frame[frame[target].notna()]
    if rows.empty:
        raise TrainError(f"target column {target!r} has no values: nothing to learn from.")
    return rows


def target_values(frame: pd.DataFrame, config: MloopConfig) -> pd.Series:
    y = frame[config.data.target]
    if config.task == "classification":
        return y.astype(str)
    values = pd.to_numeric(y, errors="coerce")
    bad = values.isna() & y.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise TrainError(
            f"target column {config.data.target!r} must be numeric for regression; row {row} holds "
            f"{y.iloc[row]!r}. Use task: classification for labels."
        )
    return values.astype(float)


def _baseline(y_train: pd.Series, y_test: pd.Series, config: MloopConfig) -> dict[str, float]:
    if config.task == "regression":
        return regression_metrics(y_test, np.full(len(y_test), float(y_train.mean())))
    majority = y_train.value_counts().idxmax()
    return classification_metrics(y_test, np.full(len(y_test), majority))


def _check_classes(y: pd.Series, config: MloopConfig) -> None:
    if config.task == "classification" and y.nunique() < 2:
        raise TrainError(f"target {config.data.target!r} has a single class; classification needs two or more.")
    if config.task == "regression" and y.nunique() < 2:
        raise TrainError(f"target {config.data.target!r} is constant; there is nothing to learn.")


def fit(frame: pd.DataFrame, contract: Contract, config: MloopConfig) -> tuple[Pipeline, dict[str, Any]]:
    """Split, fit and evaluate; pure of tracking so tests and the gate can call it."""
    rows = labelled(frame, config.data.target)
    y_all = target_values(rows, config)
    _check_classes(y_all, config)
    time_col = config.data.time_column if config.split.strategy == "temporal" else None
    stratify = y_all if config.task == "classification" else None
    train, test = holdout_split(rows, config.split.test_fraction, time_col, config.split.seed, stratify)
    X_train, X_test = coerce_frame(train, contract), coerce_frame(test, contract)
    y_train, y_test = target_values(train, config), target_values(test, config)
    model = build_pipeline(contract, config.task, config.train.estimator, config.train.params, config.train.seed)
    try:
        model.fit(X_train, y_train)
    except ValueError as exc:
        raise TrainError(f"training failed: {exc}") from None
    return model, {
        "X_train": X_train,
        "y_train": y_train,
        "test": test,
        "X_test": X_test,
        "y_test": y_test,
        "metrics": score_model(model, X_test, y_test, config.task),
        "baseline": _baseline(y_train, y_test, config),
    }


def _latency_ms(model: Pipeline, X: pd.DataFrame) -> float:
    row = X.head(1)
    model.predict(row)
    start = time.perf_counter()
    for _ in range(20):
        model.predict(row)
    return (time.perf_counter() - start) / 20 * 1000


def train(
    project: Project, snapshot: Snapshot, frame: pd.DataFrame | None = None, tags: dict[str, str] | None = None
) -> TrainResult:
    """Train on ``snapshot`` (or an already read ``frame`` of it) and log the run to MLflow."""
    config = project.config
    started = time.perf_counter()
    data = snapshot.read() if frame is None else frame
    contract = load_contract(project.contract_path)
    with threadpool_limits(config.train.threads or None):
        return _train(project, snapshot, data, contract, tags, started)


def _train(
    project: Project,
    snapshot: Snapshot,
    data: pd.DataFrame,
    contract: Contract,
    tags: dict[str, str] | None,
    started: float,
) -> TrainResult:
    config = project.config
    model, parts = fit(data, contract, config)
    X_train: pd.DataFrame = parts["X_train"]
    predictions = model.predict(X_train)
    profile = build_profile(
        X_train,
        numeric=contract.numeric_features,
        categorical=contract.categorical_features,
        prediction=np.asarray(predictions),
        prediction_kind="categorical" if config.task == "classification" else "numeric",
    )
    metrics = dict(parts["metrics"])
    metrics["latency_single_row_ms"] = _latency_ms(model, parts["X_test"])
    params = {
        "task": config.task,
        "estimator": config.train.estimator,
        "seed": config.train.seed,
        "split": config.split.strategy,
        "test_fraction": config.split.test_fraction,
        "time_column": config.data.time_column,
        "rows_train": len(X_train),
        "rows_test": len(parts["X_test"]),
        "n_features": X_train.shape[1],
        **{f"model.{k}": v for k, v in config.train.params.items()},
    }
    holdout = parts["test"][[*contract.features, config.data.target]]
    train_frame = data.loc[X_train.index]
    logged = log_training_run(
        project,
        model=model,
        contract=contract,
        snapshot=snapshot,
        train_frame=train_frame,
        features=parts["X_test"],
        holdout=holdout,
        params=params,
        metrics={**metrics, **{f"baseline_{k}": v for k, v in parts["baseline"].items()}},
        tags={
            "mloop.contract_hash": contract.hash(),
            "mloop.task": config.task,
            "mloop.rows_train": str(len(X_train)),
            **(tags or {}),
        },
        artifacts={
            PROFILE_ARTIFACT: profile.to_json(),
            CONTRACT_ARTIFACT: project.contract_path.read_text(encoding="utf-8"),
        },
    )
    return TrainResult(
        run_id=logged.run_id,
        model_uri=logged.model_uri,
        metrics=metrics,
        baseline=parts["baseline"],
        rows_train=len(X_train),
        rows_test=len(parts["X_test"]),
        seconds=time.perf_counter() - started,
        data_hash=snapshot.hash,
        contract_hash=contract.hash(),
    )

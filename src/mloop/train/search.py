"""Hyper-parameter search with Optuna: k folds of the training part per trial, pruned between folds.

Each trial is an MLflow child run of the training run. With ``train.search.storage`` (PostgreSQL) the
study is shared: ``mloop train --worker`` processes run trials into it and ``mloop train`` fits the best.
"""

from __future__ import annotations

import difflib
import logging
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from sklearn.model_selection import KFold, StratifiedKFold

from mloop.config import MloopConfig, TrainConfig
from mloop.core.metrics import GREATER_IS_BETTER
from mloop.data.contract import Contract
from mloop.errors import TrainError
from mloop.registry.scoring import score_model
from mloop.tracking.store import safe_uri as _safe
from mloop.tracking.store import sqlalchemy_url
from mloop.train.estimators import LabelEncodedClassifier, make_estimator
from mloop.train.pipeline import pipeline_for

Progress = Callable[[int, int, float | None], None]  # (finished trials, target, best value so far)


@dataclass(frozen=True)
class SearchResult:
    study: str
    best_params: dict[str, Any]
    best_value: float | None
    trials: int  # finished trials in the study (all workers)
    pruned: int


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise TrainError(
            "train.search needs optuna, a dependency of mloop that is missing from this environment; "
            "reinstall mloop (`pip install mloop` installs what is missing) or set train.search.trials to 0."
        ) from None
    optuna.logging.set_verbosity(logging.WARNING)
    return optuna


def suggest(trial: Any, estimator: str, task: str, space: dict[str, TrainConfig.Param] | None = None) -> dict[str, Any]:
    """One trial's parameters: from ``space`` (train.search.space) when given, else the built-in space."""
    if space:
        return {name: _suggest_one(trial, name, param) for name, param in space.items()}
    return builtin_space(trial, estimator, task)


def _suggest_one(trial: Any, name: str, param: TrainConfig.Param) -> Any:
    if param.type == "categorical":
        return trial.suggest_categorical(name, param.choices)
    low, high = float(param.low or 0.0), float(param.high or 0.0)  # both set: the config refuses a range without
    if param.type == "int":
        return trial.suggest_int(name, int(low), int(high), step=int(param.step or 1), log=param.log)
    return trial.suggest_float(name, low, high, step=param.step, log=param.log)


def builtin_space(trial: Any, estimator: str, task: str) -> dict[str, Any]:
    """The search space of each estimator: the few parameters that matter, on sensible ranges."""
    if estimator == "hist_gradient_boosting":
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
            "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 8, 64, log=True),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 50, log=True),
            "l2_regularization": trial.suggest_float("l2_regularization", 1e-6, 1.0, log=True),
        }
    if estimator == "random_forest":
        return {
            "max_depth": trial.suggest_int("max_depth", 3, 20),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 10),
            "max_features": trial.suggest_float("max_features", 0.2, 1.0),
        }
    if estimator == "linear":
        if task == "regression":
            return {"alpha": trial.suggest_float("alpha", 1e-3, 1e3, log=True)}
        return {"C": trial.suggest_float("C", 1e-3, 1e2, log=True)}
    if estimator == "lightgbm":
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 8, 64, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 50, log=True),
        }
    return {  # xgboost
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 10),
        "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 20.0, log=True),
    }


def check_space(config: MloopConfig) -> None:
    """Refuse, before any trial, a configured parameter the estimator does not have (naming it)."""
    space = config.train.search.space
    if not space:
        return
    estimator = make_estimator(config.task, config.train.estimator, {}, config.train.seed, [])
    # XGBoost classifiers are wrapped to encode labels; the searched parameters are the wrapped model's.
    inner = estimator.estimator if isinstance(estimator, LabelEncodedClassifier) else estimator
    known = sorted(inner.get_params(deep=False))
    for name in space:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; its parameters are: {', '.join(known)}"
            raise TrainError(
                f"train.search.space.{name}: {type(inner).__name__} (train.estimator: {config.train.estimator}) "
                f"has no parameter {name!r}{hint}"
            )


def study_name(config: MloopConfig, data_hash: str) -> str:
    # Same project and snapshot: same study, so workers started separately meet in it.
    return config.train.search.study or f"{config.name}-{data_hash[:12]}"


def search(
    X: pd.DataFrame,
    y: pd.Series,
    contract: Contract,
    config: MloopConfig,
    *,
    data_hash: str,
    client: MlflowClient | None = None,
    experiment_id: str | None = None,
    parent_run_id: str | None = None,
    progress: Progress | None = None,
) -> SearchResult:
    """Run this process's share of the study (up to ``train.search.trials`` finished in all)."""
    optuna = _optuna()
    check_space(config)
    cfg = config.train.search
    name = study_name(config, data_hash)
    storage = _storage(optuna, sqlalchemy_url(cfg.storage)) if cfg.storage else None
    try:
        return _search(optuna, storage, name, X, y, contract, config, client, experiment_id, parent_run_id, progress)
    finally:
        if storage is not None:
            # Every read of the study is done: close the pooled connections now, not whenever the garbage
            # collector gets to them (psycopg warns about a connection deleted while open).
            storage.engine.dispose()


def _search(
    optuna: Any,
    storage: Any,
    name: str,
    X: pd.DataFrame,
    y: pd.Series,
    contract: Contract,
    config: MloopConfig,
    client: MlflowClient | None,
    experiment_id: str | None,
    parent_run_id: str | None,
    progress: Progress | None,
) -> SearchResult:
    cfg = config.train.search
    metric = config.primary_metric
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            load_if_exists=True,
            direction="maximize" if GREATER_IS_BETTER[metric] else "minimize",
            # Seeded per process: one process is reproducible, workers must not all propose the same trials.
            sampler=optuna.samplers.TPESampler(seed=config.train.seed + (os.getpid() if storage else 0)),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=3) if cfg.pruning else optuna.pruners.NopPruner(),
        )
    splitter = _folds(y, config)
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)

    def objective(trial: Any) -> float:
        params = suggest(trial, config.train.estimator, config.task, cfg.space)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        run_id = _child_run(client, experiment_id, parent_run_id, name, trial.number, params)
        scores: list[float] = []
        try:
            for step, (fit_idx, val_idx) in enumerate(splitter.split(X, y)):
                model = pipeline_for(contract, config, params).fit(X.iloc[fit_idx], y.iloc[fit_idx])
                value = score_model(model, X.iloc[val_idx], y.iloc[val_idx], config.task).get(metric, np.nan)
                scores.append(value)
                trial.report(float(np.mean(scores)), step)
                if trial.should_prune():
                    _end_child(client, run_id, metric, float(np.mean(scores)), "KILLED", pruned=True)
                    raise optuna.TrialPruned()
        except ValueError as exc:
            _end_child(client, run_id, metric, float("nan"), "FAILED")
            raise TrainError(f"trial {trial.number} failed with {params}: {exc}") from None
        mean = float(np.mean(scores))
        _end_child(client, run_id, metric, mean, "FINISHED")
        return mean

    def count() -> int:
        return len(study.get_trials(deepcopy=False, states=finished))

    def best() -> float | None:
        try:
            return float(study.best_value)
        except ValueError:
            return None

    def report(study_: Any, trial: Any) -> None:
        if progress is not None:
            progress(count(), cfg.trials, best())

    remaining = cfg.trials - count()
    if remaining > 0:
        callbacks = [optuna.study.MaxTrialsCallback(cfg.trials, states=finished), report]
        if progress is not None:
            progress(count(), cfg.trials, best())
        study.optimize(objective, n_trials=remaining, timeout=cfg.timeout_seconds, callbacks=callbacks)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    pruned = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,)))
    if not complete:
        raise TrainError(f"the search (study {name!r}) finished no trial; raise train.search.timeout_seconds.")
    return SearchResult(name, dict(study.best_params), float(study.best_value), len(complete) + pruned, pruned)


def _storage(optuna: Any, url: str) -> Any:
    """The shared RDB storage; workers starting together on an empty database race to create its tables.

    The loser of that race sees a duplicate-object error and simply tries again: the tables now exist.
    """
    from sqlalchemy.exc import SQLAlchemyError

    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        except SQLAlchemyError as exc:
            if attempt == 4:
                raise TrainError(f"cannot use the search storage {_safe(url)}: {exc.__class__.__name__}") from None
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")


def _folds(y: pd.Series, config: MloopConfig) -> KFold | StratifiedKFold:
    folds, seed = config.train.search.folds, config.split.seed
    if config.task == "classification" and y.value_counts().min() >= folds:
        return StratifiedKFold(folds, shuffle=True, random_state=seed)
    return KFold(folds, shuffle=True, random_state=seed)


def _child_run(
    client: MlflowClient | None,
    experiment_id: str | None,
    parent: str | None,
    study: str,
    number: int,
    params: dict[str, Any],
) -> str | None:
    if client is None or experiment_id is None:
        return None
    tags = {"mloop.stage": "search", "mloop.study": study, "mloop.trial": str(number)}
    if parent is not None:
        tags["mlflow.parentRunId"] = parent  # what makes the MLflow UI nest the trial under its run
    run = client.create_run(experiment_id, tags=tags, run_name=f"trial-{number}")
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    return str(run.info.run_id)


def _end_child(
    client: MlflowClient | None, run_id: str | None, metric: str, value: float, status: str, pruned: bool = False
) -> None:
    if client is None or run_id is None:
        return
    if value == value:
        client.log_metric(run_id, f"cv_{metric}", value)
    if pruned:
        client.set_tag(run_id, "mloop.pruned", "true")
    client.set_terminated(run_id, status)

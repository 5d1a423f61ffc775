"""Train one model on a snapshot: split, fit, evaluate, and log it all to MLflow."""

from __future__ import annotations

import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from mlflow.entities import Metric, Param
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from mloop import failpoints
from mloop.config import MloopConfig
from mloop.core.metrics import Predictions, classification_metrics, regression_metrics, task_metrics
from mloop.data.contract import Contract
from mloop.data.multivariate import ARTIFACT as MULTIVARIATE_ARTIFACT
from mloop.data.multivariate import MultivariateReference, fit_multivariate_reference
from mloop.data.profile import build_profile, prediction_profile
from mloop.data.snapshot import Snapshot
from mloop.errors import ProfileError, TrainError
from mloop.project import Project
from mloop.registry.estimator import ESTIMATOR_ARTIFACT, fit_quality_estimator, out_of_fold_predictions
from mloop.registry.scoring import predict, score_model
from mloop.tracking.runs import CONTRACT_ARTIFACT, PROFILE_ARTIFACT, Late, log_training_run
from mloop.tracking.store import connect, experiment_id
from mloop.train.evaluate import start_evaluation
from mloop.train.pipeline import pipeline_for
from mloop.train.search import Progress, SearchResult, search, study_name
from mloop.train.split import labelled, prepare

BATCH_ROWS = 1000  # the batch of latency_1000_rows_ms

__all__ = ["TrainResult", "cross_validate", "fit", "labelled", "search_worker", "train"]


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


def _baseline(y_train: pd.Series, y_test: pd.Series, config: MloopConfig) -> dict[str, float]:
    if config.task == "regression":
        return regression_metrics(y_test, np.full(len(y_test), float(y_train.mean())))
    majority = y_train.value_counts().idxmax()
    return classification_metrics(y_test, np.full(len(y_test), majority))


def cross_validate(X: pd.DataFrame, y: pd.Series, contract: Contract, config: MloopConfig) -> dict[str, float]:
    """Mean and spread of each task metric over k folds of the training part (stratified for classes)."""
    folds = config.split.cv_folds
    splitter: KFold | StratifiedKFold
    if config.task == "classification" and y.value_counts().min() >= folds:
        splitter = StratifiedKFold(folds, shuffle=True, random_state=config.split.seed)
    else:
        splitter = KFold(folds, shuffle=True, random_state=config.split.seed)
    scores: dict[str, list[float]] = {}
    for train_idx, test_idx in splitter.split(X, y):
        model = pipeline_for(contract, config).fit(X.iloc[train_idx], y.iloc[train_idx])
        for name, value in score_model(model, X.iloc[test_idx], y.iloc[test_idx], config.task).items():
            scores.setdefault(name, []).append(value)
    out = {f"cv_{name}_mean": float(np.mean(v)) for name, v in scores.items()}
    out.update({f"cv_{name}_std": float(np.std(v)) for name, v in scores.items()})
    return out


def fit(
    frame: pd.DataFrame, contract: Contract, config: MloopConfig, params: dict[str, Any] | None = None
) -> tuple[Pipeline, dict[str, Any]]:
    """Split, fit and evaluate; pure of tracking so tests and the gate can call it.

    ``params`` (the best of a search) override ``train.params``.
    """
    split = prepare(frame, contract, config)
    X_train, X_test, y_train, y_test, test = split.X_train, split.X_test, split.y_train, split.y_test, split.test
    model = pipeline_for(contract, config, params)
    # OpenMP in every thread of a shared machine slows HistGradientBoosting down ~8x; see train.threads.
    with threadpool_limits(config.train.threads or None):
        try:
            model.fit(X_train, y_train)
        except ValueError as exc:
            raise TrainError(f"training failed: {exc}") from None
        cv = cross_validate(X_train, y_train, contract, config) if config.split.cv_folds >= 2 else {}
        predictions = predict(model, X_test, config.task)  # kept: the evaluation reuses them
        metrics = task_metrics(y_test, predictions, config.task)
    return model, {
        "cv": cv,
        "X_train": X_train,
        "y_train": y_train,
        "test": test,
        "X_test": X_test,
        "y_test": y_test,
        "metrics": metrics,
        "predictions": predictions,
        "baseline": _baseline(y_train, y_test, config),
    }


def train(
    project: Project,
    snapshot: Snapshot,
    frame: pd.DataFrame | None = None,
    tags: dict[str, str] | None = None,
    *,
    progress: Progress | None = None,
) -> TrainResult:
    """Train on ``snapshot`` (or an already read ``frame`` of it) and log the run to MLflow.

    With ``train.search.trials`` the parameters are searched first, each trial a child run of this one.
    """
    config = project.config
    started = time.perf_counter()
    contract = project.contract()  # before reading the data: a disagreeing data.target fails at once
    data = snapshot.read() if frame is None else frame
    with threadpool_limits(config.train.threads or None):
        if config.train.search.trials <= 0:
            return _train(project, snapshot, data, contract, tags, started)
        client = connect(project)
        experiment = experiment_id(client, project)
        parent = client.create_run(str(experiment), tags={"mloop.stage": "train"}).info.run_id
        try:
            split = prepare(data, contract, config)
            found = search(
                split.X_train,
                split.y_train,
                contract,
                config,
                data_hash=snapshot.hash,
                client=client,
                experiment_id=experiment,
                parent_run_id=parent,
                progress=progress,
            )
            return _train(project, snapshot, data, contract, tags, started, found, parent)
        except BaseException:
            client.set_terminated(parent, "FAILED")
            raise


def search_worker(project: Project, snapshot: Snapshot, progress: Progress | None = None) -> SearchResult:
    """Run trials of the project's shared study (``train.search.storage``) until it has enough.

    This worker's trials are child runs of one parent run, which ends with the study's best parameters and
    score so far (all workers), as the training run of an in-process search does.
    """
    config = project.config
    if not config.train.search.storage or config.train.search.trials <= 0:
        raise TrainError(
            "`mloop train --worker` needs train.search.trials > 0 and train.search.storage (a PostgreSQL URL "
            "every worker can reach) so the workers share one study."
        )
    contract = project.contract()
    split = prepare(snapshot.read(), contract, config)
    client = connect(project)
    experiment = experiment_id(client, project)
    study = study_name(config, snapshot.hash)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    parent = client.create_run(
        str(experiment),
        run_name=f"search-worker-{worker}",
        tags={
            "mloop.stage": "search-worker",
            "mloop.study": study,
            "mloop.worker": worker,
            "mloop.data_hash": snapshot.hash,
        },
    ).info.run_id
    try:
        with threadpool_limits(config.train.threads or None):
            found = search(
                split.X_train,
                split.y_train,
                contract,
                config,
                data_hash=snapshot.hash,
                client=client,
                experiment_id=experiment,
                parent_run_id=parent,
                progress=progress,
            )
    except BaseException:
        client.set_terminated(parent, "FAILED")
        raise
    metric = config.primary_metric
    client.log_batch(
        parent,
        metrics=[
            Metric(key, value, int(time.time() * 1000), 0)
            for key, value in {
                f"search_best_cv_{metric}": found.best_value,
                "search_trials": float(found.trials),
                "search_pruned": float(found.pruned),
            }.items()
            if value is not None
        ],
        params=[
            Param("search.study", found.study),
            Param("estimator", config.train.estimator),
            *(Param(f"model.{k}", str(v)[:500]) for k, v in {**config.train.params, **found.best_params}.items()),
        ],
    )
    client.set_terminated(parent, "FINISHED")
    return found


def _timed_sample(model: Pipeline, X_train: pd.DataFrame) -> tuple[np.ndarray, float | None]:
    """Predictions for the reference profile: on 1,000 evenly spaced training rows, timed, or on all rows.

    ``(predictions, milliseconds)``. The timing of the 1,000 rows is the batch latency (a call
    of its own would cost as much again); with fewer rows it is None and the evaluation times the holdout
    repeated to 1,000 rows. A sample is enough for the prediction's reference (its quantile bins and the
    KS sample) and keeps this step's cost flat however many rows were trained on.
    """
    if len(X_train) < BATCH_ROWS:
        return np.asarray(model.predict(X_train)), None
    positions = np.unique(np.linspace(0, len(X_train) - 1, BATCH_ROWS).round().astype(int))
    rows = X_train.iloc[positions]
    started = time.perf_counter()
    predictions = np.asarray(model.predict(rows))
    return predictions, (time.perf_counter() - started) * 1000


def _out_of_fold(
    model: Pipeline, X_train: pd.DataFrame, y_train: pd.Series, config: MloopConfig
) -> tuple[pd.DataFrame, pd.Series, Predictions] | None:
    """The training rows with out-of-fold predictions for the quality estimator (monitor.estimator_folds)."""
    folds = config.monitor.estimator_folds
    if folds < 2 or len(X_train) < 2 * folds:
        return None
    with threadpool_limits(config.train.threads or None):
        scored = out_of_fold_predictions(model, X_train, y_train, config.task, folds=folds, seed=config.train.seed)
    return X_train, y_train, scored


def _multivariate(X_train: pd.DataFrame, contract: Contract, config: MloopConfig) -> MultivariateReference | None:
    """The reference monitoring judges the features taken together against (monitor.multivariate), or None.

    The PCA is fitted here (well under a second on Ames); the domain classifier's thresholds are calibrated
    by the first monitoring run of each window size, since that costs about 40 fits.
    """
    settings = config.monitor.multivariate
    if not settings.enabled:
        return None
    try:
        return fit_multivariate_reference(
            X_train,
            contract.numeric_features,
            contract.categorical_features,
            seed=config.train.seed,
            false_alarm_rate=settings.false_alarm_rate,
        )
    except ProfileError:
        return None  # too few rows to fit on: windows are judged per feature only


def _train(
    project: Project,
    snapshot: Snapshot,
    data: pd.DataFrame,
    contract: Contract,
    tags: dict[str, str] | None,
    started: float,
    found: SearchResult | None = None,
    run_id: str | None = None,
) -> TrainResult:
    config = project.config
    best = found.best_params if found is not None else None
    model, parts = fit(data, contract, config, best)
    X_train: pd.DataFrame = parts["X_train"]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mloop-evaluation") as pool:
        # The permutation importance goes on in a worker thread while this one profiles and logs: its tree
        # code runs without the GIL, and this thread helps with it once its own work is done.
        sample_predictions, batch_ms = _timed_sample(model, X_train)  # before the worker starts: a clean timing
        pending = start_evaluation(
            model, parts["X_test"], parts["y_test"], parts["test"], config, pool, parts["predictions"], batch_ms
        )
        evaluated = pending.done
        profile = build_profile(
            X_train, numeric=contract.numeric_features, categorical=contract.categorical_features
        ).model_copy(
            update={
                "prediction": prediction_profile(
                    sample_predictions, "categorical" if config.task == "classification" else "numeric"
                )
            }
        )
        metrics = dict(parts["metrics"])
        metrics.update(parts["cv"])
        failed = evaluated.behaviour_failed
        params = {
            "task": config.task,
            "estimator": config.train.estimator,
            "seed": config.train.seed,
            "split": config.split.strategy,
            "test_fraction": config.split.test_fraction,
            "cv_folds": config.split.cv_folds,
            "high_cardinality": config.train.high_cardinality,
            "time_column": config.data.time_column,
            "rows_train": len(X_train),
            "rows_test": len(parts["X_test"]),
            "n_features": X_train.shape[1],
            **{f"model.{k}": v for k, v in {**config.train.params, **(best or {})}.items()},
        }
        if found is not None:
            params.update({"search.study": found.study, "search.trials": found.trials})
            metrics.update({"search_trials": float(found.trials), "search_pruned": float(found.pruned)})
            if found.best_value is not None:
                metrics[f"search_best_cv_{config.primary_metric}"] = found.best_value
        holdout = parts["test"][[*contract.features, contract.target]]
        train_frame = data.loc[X_train.index]
        evaluation = evaluated
        # What lets monitoring estimate a window's quality before its labels arrive (registry.estimator). Fitted
        # here, not in a second worker while the run is logged: log_training_run silences MLflow's warnings inside
        # warnings.catch_warnings(), whose filters are process-wide, and scikit-learn's fits enter and leave
        # catch_warnings from the other thread, which undid those filters mid-log (seen in the retrain tests).
        estimator = fit_quality_estimator(
            model,
            parts["X_test"],
            parts["y_test"],
            task=config.task,
            numeric=contract.numeric_features,
            categorical=contract.categorical_features,
            seed=config.train.seed,
            predictions=parts["predictions"],
            out_of_fold=_out_of_fold(model, X_train, parts["y_train"], config),
        )

        together = _multivariate(X_train, contract, config)  # in this thread too, for the same reason

        def late() -> Late:
            nonlocal evaluation
            evaluation = pending.result()
            images = dict(evaluation.images)
            if estimator is not None:
                images[ESTIMATOR_ARTIFACT] = estimator.to_bytes()
            if together is not None:
                images[MULTIVARIATE_ARTIFACT] = together.to_bytes()
            return evaluation.metrics, evaluation.artifacts, images

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
                # Behavioural checks fail the evaluation: the tag says so and the gate refuses the version.
                "mloop.evaluation": f"failed: {', '.join(failed)}" if failed else "passed",
                **(tags or {}),
            },
            artifacts={
                PROFILE_ARTIFACT: profile.to_json(),
                CONTRACT_ARTIFACT: project.contract_path.read_text(encoding="utf-8"),
            },
            run_id=run_id,
            example_output=parts["predictions"].values[:5],
            late=late,
        )
    failpoints.hit("train:after-run-logged")
    return TrainResult(
        run_id=logged.run_id,
        model_uri=logged.model_uri,
        metrics={**parts["metrics"], **evaluation.metrics, **metrics},
        baseline=parts["baseline"],
        rows_train=len(X_train),
        rows_test=len(parts["X_test"]),
        seconds=time.perf_counter() - started,
        data_hash=snapshot.hash,
        contract_hash=contract.hash(),
        extra={"behaviour_failed": failed},
    )

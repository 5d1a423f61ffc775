"""Evaluation of a fitted model on its holdout beyond the task metrics: slices, behaviour, latency,
permutation importance and plots. Everything returned here is logged to the training run."""

from __future__ import annotations

import io
import json
import math
import re
import time
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sklearn

from mloop.config import MloopConfig
from mloop.core.gate import BehaviourResult
from mloop.core.metrics import Predictions, slice_metrics
from mloop.registry.gate import behaviour_results
from mloop.registry.scoring import predict
from mloop.train.importance import PermutationImportance

# Permutation importance: every holdout row up to this many (a seeded sample beyond), each column shuffled
# this many times. Measured on Ames against 10x5 shuffles of its whole 586-row holdout, averaged over 8
# seeds: 500 rows shuffled once rank the top 20 features alike (Spearman 0.88, top ten 8.9 of 10, top five
# within 14%), like 400 rows shuffled twice at 1.6x the cost (0.89, 9.0, 14%); all 586 once: 0.90, 9.2, 9%.
IMPORTANCE_ROWS = 500
IMPORTANCE_REPEATS = 1
IMPORTANCE_TOP = 10  # features whose importance is also logged as a metric (all go to the JSON artifact)
LATENCY_REPEATS = 3  # timed single-row predictions; their median is logged


@dataclass
class Evaluation:
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)  # text artifacts: name -> content
    images: dict[str, bytes] = field(default_factory=dict)  # PNG artifacts: name -> bytes
    behaviour: list[BehaviourResult] = field(default_factory=list)

    @property
    def behaviour_failed(self) -> list[str]:
        return [r.name for r in self.behaviour if not r.passed]


def metric_key(*parts: str) -> str:
    """An MLflow metric name: letters, digits and ``_-. /`` only."""
    return ".".join(re.sub(r"[^A-Za-z0-9_\-/ ]", "_", p) for p in parts)


class _Remembered:
    """The model, answering for the holdout it has already predicted without predicting it again."""

    def __init__(self, model: Any, X: pd.DataFrame, predictions: Predictions) -> None:
        self.model, self.X, self.predictions = model, X, predictions

    @property
    def classes_(self) -> Any:
        return self.model.classes_

    def predict(self, X: Any) -> Any:
        return self.predictions.values if X is self.X else self.model.predict(X)

    def predict_proba(self, X: Any) -> Any:
        if X is self.X and self.predictions.proba is not None:
            return self.predictions.proba
        return self.model.predict_proba(X)


@dataclass
class PendingEvaluation:
    """An evaluation whose permutation importance is still being computed in a worker thread.

    The thread runs beside the caller's own work (the reference profile, MLflow logging): the tree code
    of HistGradientBoosting releases the GIL, so on two cores part of the importance costs no wall time.
    """

    done: Evaluation
    model: Any
    X_test: pd.DataFrame
    slices: dict[str, dict[str, dict[str, float]]]
    metric: str
    rows: int
    importance: Future[dict[str, float]] | None = None
    importance_job: PermutationImportance | None = None
    batch_ms: float | None = None  # already timed by the caller (1,000 training rows)

    def result(self) -> Evaluation:
        """Wait for the worker, then time predictions (with nothing else running) and assemble it all."""
        out = self.done
        if self.importance_job is not None:
            self.importance_job.help()  # rather than wait: take columns too (a second core)
        importance = self.importance.result() if self.importance is not None else {}
        out.metrics["latency_single_row_ms"] = _single_row_latency_ms(self.model, self.X_test)
        if self.batch_ms is None:  # the holdout repeated to 1,000 rows
            self.batch_ms = batch_latency_ms(self.model, self.X_test, 1000, repeats=1)
        out.metrics["latency_1000_rows_ms"] = self.batch_ms
        for feature, score in list(importance.items())[:IMPORTANCE_TOP]:
            out.metrics[metric_key("importance", feature)] = score
        out.artifacts["evaluation.json"] = json.dumps(
            {
                "slices": self.slices,
                "behaviour": [r.check().values | {"name": r.name, "passed": r.passed} for r in out.behaviour],
                "permutation_importance": importance,
                "permutation_importance_sample": {
                    "rows": self.rows,
                    "repeats": IMPORTANCE_REPEATS,
                    "metric": self.metric,
                },
            },
            indent=2,
            default=str,
        )
        return out


def evaluate(
    model: Any,
    X_test: pd.DataFrame,
    y_test: pd.Series,
    test: pd.DataFrame,
    config: MloopConfig,
    predictions: Predictions | None = None,
) -> Evaluation:
    """Slices, behaviour, latency, importance and plots of ``model`` on its holdout.

    ``predictions``: the model's predictions on ``X_test`` when the caller has them already.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mloop-evaluation") as pool:
        return start_evaluation(model, X_test, y_test, test, config, pool, predictions).result()


def start_evaluation(
    model: Any,
    X_test: pd.DataFrame,
    y_test: pd.Series,
    test: pd.DataFrame,
    config: MloopConfig,
    pool: Executor,
    predictions: Predictions | None = None,
    batch_ms: float | None = None,
) -> PendingEvaluation:
    """Plots, slices and behaviour now; then importance handed to ``pool``; latency timed in ``result()``.

    ``batch_ms``: the time the caller measured predicting 1,000 rows, if it did (else timed here).
    """
    out = Evaluation()
    task, metric = config.task, config.primary_metric
    if predictions is None:
        predictions = predict(model, X_test, task)
    pending = PendingEvaluation(out, model, X_test, {}, metric, min(IMPORTANCE_ROWS, len(X_test)), batch_ms=batch_ms)
    if config.train.plots:
        out.images.update(_plots(y_test, predictions.values, predictions.proba, predictions.classes, task))
    # Classification metrics per slice value (Ames: ~35 values) on a few dozen rows each: scikit-learn's check
    # of their arguments is a fifth of their time, and the arguments are arrays built here.
    with sklearn.config_context(skip_parameter_validation=True):
        pending.slices = {
            column: slice_metrics(y_test, predictions, test[column].to_numpy(), task, config.gate.min_slice_rows)
            for column in config.gate.slices
            if column in test.columns
        }
    for column, scores in pending.slices.items():
        for value, values in scores.items():
            if metric in values:
                out.metrics[metric_key("slice", column, value, metric)] = values[metric]
    out.behaviour = behaviour_results(_Remembered(model, X_test, predictions), X_test, task, config.gate.behaviour)
    for result in out.behaviour:
        if result.error is None:
            out.metrics[metric_key("behaviour", result.name, "moved")] = result.moved
    if config.train.importance:
        # Started last: a worker thread takes the GIL back after each of its hundreds of tree calls, which
        # slows the drawing and checks above more than it gains beside them; beside the caller's profiling
        # and MLflow writes it costs least (Ames, interleaved runs: 20-60 ms less than starting it first).
        pending.importance_job = PermutationImportance(
            model,
            X_test,
            y_test,
            task,
            metric,
            rows=IMPORTANCE_ROWS,
            repeats=IMPORTANCE_REPEATS,
            seed=config.train.seed,
            reference=predictions,
        )
        pending.importance_job.prepare()  # encoding the sample holds the GIL: done here rather than beside
        pending.importance = pool.submit(pending.importance_job.compute)
    return pending


def _single_row_latency_ms(model: Any, X: pd.DataFrame) -> float:
    """Median wall time of predicting one row; no warm-up call, the model has just predicted many.

    The gate measures its own (``single_row_latency_ms``, more repeats) before it compares with a budget.
    """
    row = X.iloc[:1]
    times = []
    for _ in range(LATENCY_REPEATS):
        start = time.perf_counter()
        model.predict(row)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def batch_latency_ms(model: Any, X: Any, rows: int = 1000, repeats: int = 2) -> float:
    """Best wall time of predicting ``rows`` rows (the holdout repeated to reach that size)."""
    n = len(X)
    index = np.arange(rows) % max(n, 1)
    batch = X.iloc[index] if hasattr(X, "iloc") else X[index]
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict(batch)
        best = min(best, time.perf_counter() - start)
    return float(best * 1000)


def _png(figure: Any, labels: bool = False) -> bytes:
    """PNG bytes; ``labels``: axes ticked with class names of any length, so fitted to the drawn extent."""
    buffer = io.BytesIO()
    if labels:
        figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    else:  # numeric axes: margins set by hand, as bbox_inches="tight" draws twice (a third of the time)
        figure.subplots_adjust(left=0.17, right=0.97, bottom=0.12, top=0.92)
        figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def _plots(
    y: pd.Series, values: np.ndarray, proba: np.ndarray | None, classes: list[str] | None, task: str
) -> dict[str, bytes]:
    """Residuals for regression; confusion matrix and calibration curve for classification.

    Drawn on bare ``Figure`` objects (rendered by Agg when saved), never through pyplot: no global figure
    state and no GUI backend, so this runs in a worker thread and on machines without a display.
    """
    from matplotlib.figure import Figure

    images: dict[str, bytes] = {}
    if task == "regression":
        fig = Figure(figsize=(6, 4))
        ax = fig.subplots()
        truth = y.to_numpy(dtype=float)
        ax.scatter(values, truth - values, s=8, alpha=0.5)
        ax.axhline(0.0, color="black", linewidth=1)
        ax.set(xlabel="predicted", ylabel="actual - predicted", title="Residuals on the holdout")
        images["plots/residuals.png"] = _png(fig)
        return images
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import confusion_matrix

    if classes is None or proba is None:
        return images
    truth = y.astype(str).to_numpy()
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    counts = confusion_matrix(truth, np.asarray(values).astype(str), labels=classes)
    ax.imshow(counts, cmap="Blues")
    middle = (counts.max() + counts.min()) / 2 if counts.size else 0  # the colour scale's midpoint
    for (i, j), count in np.ndenumerate(counts):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > middle else "black")
    ax.set(
        xticks=range(len(classes)),
        yticks=range(len(classes)),
        xticklabels=classes,
        yticklabels=classes,
        xlabel="Predicted label",
        ylabel="True label",
        title="Confusion matrix on the holdout",
    )
    images["plots/confusion_matrix.png"] = _png(fig, labels=True)
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    for i, label in enumerate(classes):
        hits = truth == label
        if 0 < hits.sum() < len(hits):
            frac, mean = calibration_curve(hits, proba[:, i], n_bins=10, strategy="quantile")
            ax.plot(mean, frac, marker="o", label=label)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set(xlabel="mean predicted probability", ylabel="observed frequency", title="Calibration on the holdout")
    ax.legend(loc="lower right", fontsize="small")
    images["plots/calibration.png"] = _png(fig)
    return images

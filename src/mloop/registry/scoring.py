"""A fitted model called on a holdout: its predictions, its task metrics, the mean that behavioural checks
watch, and its single-row latency.

These call the model (and the clock), so they sit above ``mloop.core``, whose metrics and gate checks take
the numbers they produce. The registry is the lowest layer that holds fitted models (``versions.load_model``);
the gate, training, the search and the retraining guard all score models through here, so a number means
the same wherever it is computed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from mloop.core.metrics import Predictions, task_metrics


def predict(model: Any, X: Any, task: str) -> Predictions:
    if task == "regression":
        return Predictions(np.asarray(model.predict(X), dtype=float))
    classes = [str(c) for c in model.classes_]
    return Predictions(np.asarray(model.predict(X)).astype(str), np.asarray(model.predict_proba(X)), classes)


def score_model(model: Any, X: Any, y: ArrayLike, task: str) -> dict[str, float]:
    """The task's metrics for a fitted model on one holdout; training and the gate both use it."""
    return task_metrics(y, predict(model, X, task), task)


def single_row_latency_ms(model: Any, X: Any, repeats: int = 50, budget_s: float = 0.1) -> float:
    """Median wall time of predicting one row after a warm-up; the median shrugs off a stray GC pause.

    Stops once ``budget_s`` is spent (after at least five predictions), so a slow model costs
    about a tenth of a second here, not ``repeats`` times its latency.
    """
    row = X.iloc[:1] if hasattr(X, "iloc") else X[:1]
    for _ in range(2):
        model.predict(row)
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < repeats and (len(times) < 5 or time.perf_counter() < deadline):
        start = time.perf_counter()
        model.predict(row)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def mean_prediction(model: Any, task: str, target_class: str | None = None) -> Callable[[Any], float]:
    """The function behavioural checks watch: mean predicted value, or mean probability of one class."""
    if task == "regression":
        return lambda X: float(np.mean(model.predict(X)))
    classes = [str(c) for c in model.classes_]
    wanted = target_class if target_class is not None else classes[-1]
    if wanted not in classes:
        raise ValueError(f"class {wanted!r} is not one of the model's classes {classes}")
    column = classes.index(wanted)
    return lambda X: float(np.mean(model.predict_proba(X)[:, column]))

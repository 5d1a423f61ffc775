"""Live model quality, once labels arrive for logged predictions.

Independent of :mod:`mloop.train` (train and monitor may not import each other), so the metric
names match ``mloop.config.REGRESSION_METRICS`` / ``CLASSIFICATION_METRICS`` by convention. Only
label-based classification metrics are computed here: the prediction log holds labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    r2_score,
)

Task = Literal["regression", "classification"]


def quality(
    y_true: Sequence[Any] | np.ndarray | pd.Series,
    y_pred: Sequence[Any] | np.ndarray | pd.Series,
    task: Task,
    *,
    classes: Sequence[Any] | None = None,
    pos_label: Any = None,
) -> dict[str, float]:
    """Quality metrics of predictions against labels; pairs with a missing side are left out.

    regression: ``rmse``, ``mae``, ``r2`` (needs two labels), ``mape``.
    classification: ``accuracy`` and ``f1`` — macro-averaged when there are more than two classes,
    binary otherwise. ``classes`` (all classes of the model) keeps the averaging stable across
    windows that happen to see only two; ``pos_label`` defaults to the greater of the two labels in
    sort order (``1`` over ``0``, ``True`` over ``False``, ``"yes"`` over ``"no"``).
    Returns ``{}`` when there is nothing to score.
    """
    if task == "regression":
        # A label that is not a number (feedback sent as text, say) cannot be scored: it is left out like a
        # missing one rather than failing the whole window.
        y_true = pd.to_numeric(pd.Series(np.asarray(y_true, dtype=object).ravel()), errors="coerce")
    truth, pred = _paired(y_true, y_pred)
    if truth.size == 0:
        return {}
    if task == "regression":
        return _regression(truth.astype(np.float64), pred.astype(np.float64))
    if task == "classification":
        return _classification(truth, pred, classes, pos_label)
    raise ValueError(f"unknown task {task!r}; expected 'regression' or 'classification'")


def _paired(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    truth = pd.Series(np.asarray(y_true, dtype=object).ravel())
    pred = pd.Series(np.asarray(y_pred, dtype=object).ravel())
    if len(truth) != len(pred):
        raise ValueError(f"{len(truth)} labels but {len(pred)} predictions")
    keep = truth.notna() & pred.notna()
    # Back from object to a native dtype: scikit-learn cannot tell the target type of object arrays.
    return np.asarray(truth[keep].tolist()), np.asarray(pred[keep].tolist())


def _regression(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    metrics = {
        "rmse": math.sqrt(float(mean_squared_error(truth, pred))),
        "mae": float(mean_absolute_error(truth, pred)),
    }
    if truth.size > 1:  # R² of one sample is undefined (and sklearn warns)
        metrics["r2"] = float(r2_score(truth, pred))
    metrics["mape"] = float(mean_absolute_percentage_error(truth, pred))
    return metrics


def _classification(
    truth: np.ndarray, pred: np.ndarray, classes: Sequence[Any] | None, pos_label: Any
) -> dict[str, float]:
    labels = sorted(set(truth.tolist()) | set(pred.tolist()) | set(classes or []), key=_sort_key)
    metrics = {"accuracy": float(accuracy_score(truth, pred))}
    if len(labels) > 2:
        f1 = f1_score(truth, pred, labels=labels, average="macro", zero_division=0.0)
    else:
        positive = labels[-1] if pos_label is None else pos_label
        f1 = f1_score(truth, pred, pos_label=positive, average="binary", zero_division=0.0)
    metrics["f1"] = float(f1)
    return metrics


def _sort_key(label: Any) -> tuple[str, Any]:
    # Mixed label types (1 and "1") must still sort; numbers compare as numbers, the rest as text.
    if isinstance(label, bool | int | float | np.number):
        return ("0", float(label))
    return ("1", str(label))


__all__ = ["Task", "quality"]

"""Task metrics and which direction is better, shared by training, the gate and monitoring.

Functions of true values and predictions only: models are called above core, in
:mod:`mloop.registry.scoring`, which hands their :class:`Predictions` here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from sklearn import metrics as skm

GREATER_IS_BETTER = {
    "rmse": False,
    "mae": False,
    "mape": False,
    "r2": True,
    "accuracy": True,
    "f1": True,
    "roc_auc": True,
    "log_loss": False,
}


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """RMSE, MAE, MAPE and R² (from two rows), as scikit-learn defines them.

    In NumPy: the evaluation calls this for every slice value (Ames: ~35 of a few dozen rows), where
    scikit-learn's checks of its arguments cost more than the arithmetic.
    """
    yt, yp = _one_per_row(y_true, "true values"), _one_per_row(y_pred, "predictions")
    if len(yt) != len(yp):
        raise ValueError(f"{len(yt)} true values but {len(yp)} predictions")
    if len(yt) == 0:
        return {}
    if not (np.isfinite(yt).all() and np.isfinite(yp).all()):
        raise ValueError("Input contains NaN or infinity: metrics need finite true values and predictions.")
    error = yt - yp
    squared = float(np.dot(error, error))
    out = {
        "rmse": math.sqrt(squared / len(yt)),
        "mae": float(np.mean(np.abs(error))),
        "mape": float(np.mean(np.abs(error) / np.maximum(np.abs(yt), np.finfo(np.float64).eps))),
    }
    if len(yt) > 1:
        centred = yt - yt.mean()
        total = float(np.dot(centred, centred))
        # scikit-learn's force_finite: a constant truth scores 1.0 when predicted exactly, else 0.0
        out["r2"] = (1.0 - squared / total) if total != 0 else (1.0 if squared == 0 else 0.0)
    return out


def _one_per_row(values: ArrayLike, what: str) -> np.ndarray:
    """``values`` as a flat float array: one number per row (a column ``(n, 1)`` is accepted)."""
    array = np.asarray(values, dtype=float)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{what} must be one number per row, not an array of shape {array.shape}")
    return array


def classification_metrics(
    y_true: ArrayLike, y_pred: ArrayLike, proba: np.ndarray | None = None, classes: list[str] | None = None
) -> dict[str, float]:
    """Accuracy and F1 from labels; ROC AUC and log loss too when class probabilities are given."""
    yt = np.asarray(y_true).astype(str)
    yp = np.asarray(y_pred).astype(str)
    if len(yt) == 0:
        return {}
    binary = classes is not None and len(classes) == 2
    out = {
        "accuracy": float(skm.accuracy_score(yt, yp)),
        "f1": float(
            skm.f1_score(yt, yp, average="binary", pos_label=classes[1])
            if binary and classes is not None
            else skm.f1_score(yt, yp, average="macro")
        ),
    }
    if proba is not None and classes is not None and len(set(yt)) > 1:
        out["log_loss"] = float(skm.log_loss(yt, proba, labels=classes))
        if binary:
            out["roc_auc"] = float(skm.roc_auc_score(yt == classes[1], proba[:, 1]))
        elif set(yt) == set(classes):
            out["roc_auc"] = float(skm.roc_auc_score(yt, proba, multi_class="ovr", labels=classes))
    return out


def is_better(metric: str, challenger: float, champion: float, min_improvement: float = 0.0) -> bool:
    """Whether ``challenger`` beats ``champion`` by at least ``min_improvement`` (relative)."""
    margin = abs(champion) * min_improvement
    if GREATER_IS_BETTER[metric]:
        return challenger > champion + margin if margin else challenger > champion
    return challenger < champion - margin if margin else challenger < champion


@dataclass(frozen=True)
class Predictions:
    """A model's output on one holdout: labels or values, and class probabilities for classifiers."""

    values: np.ndarray
    proba: np.ndarray | None = None
    classes: list[str] | None = None

    def subset(self, mask: np.ndarray) -> Predictions:
        return Predictions(self.values[mask], None if self.proba is None else self.proba[mask], self.classes)


def task_metrics(y: ArrayLike, predictions: Predictions, task: str) -> dict[str, float]:
    if task == "regression":
        return regression_metrics(y, predictions.values)
    return classification_metrics(y, predictions.values, predictions.proba, predictions.classes)


def slice_metrics(
    y: ArrayLike, predictions: Predictions, groups: ArrayLike, task: str, min_rows: int = 1
) -> dict[str, dict[str, float]]:
    """The task's metrics on each value of ``groups`` with at least ``min_rows`` rows (plus ``rows``).

    Missing group values form their own slice, named ``(missing)``.
    """
    yt = np.asarray(y)
    keys = np.array(["(missing)" if v is None or v != v else str(v) for v in np.asarray(groups, dtype=object)])
    out: dict[str, dict[str, float]] = {}
    for key in sorted(set(keys.tolist())):
        mask = keys == key
        rows = int(mask.sum())
        if rows >= min_rows:
            out[key] = {**task_metrics(yt[mask], predictions.subset(mask), task), "rows": float(rows)}
    return out

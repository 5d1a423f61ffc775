"""Task metrics and which direction is better, shared by training, the gate and monitoring."""

from __future__ import annotations

from typing import Any

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
    yt = np.asarray(y_true, dtype=float)
    yp = np.asarray(y_pred, dtype=float)
    if len(yt) == 0:
        return {}
    out = {
        "rmse": float(np.sqrt(skm.mean_squared_error(yt, yp))),
        "mae": float(skm.mean_absolute_error(yt, yp)),
        "mape": float(skm.mean_absolute_percentage_error(yt, yp)),
    }
    if len(yt) > 1:
        out["r2"] = float(skm.r2_score(yt, yp))
    return out


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


def score_model(model: Any, X: Any, y: ArrayLike, task: str) -> dict[str, float]:
    """The task's metrics for a fitted model on one holdout; training and the gate both use it."""
    if task == "regression":
        return regression_metrics(y, model.predict(X))
    classes = [str(c) for c in model.classes_]
    return classification_metrics(y, model.predict(X), model.predict_proba(X), classes)

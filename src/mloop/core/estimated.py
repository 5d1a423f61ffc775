"""Quality estimated before labels arrive: the arithmetic, given what the estimator models predicted.

Regression (direct loss estimation, as NannyML's DLE): a second model, fitted at training time on the
holdout, predicts each row's absolute and squared error from its features and prediction; a window's
estimated MAE is the mean predicted absolute error and its estimated RMSE the root of the mean predicted
squared error.

Classification (confidence-based performance estimation, as NannyML's CBPE): with calibrated
probabilities, the chance that a row's predicted class is right is the calibrated probability of that
class, so the expected confusion counts are sums of probabilities; accuracy, F1 and ROC AUC follow.

Models are called above core (:mod:`mloop.registry.estimator`); these functions take their outputs.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray


def regression_estimate(absolute: ArrayLike, squared: ArrayLike) -> dict[str, float]:
    """Estimated ``mae`` and ``rmse`` of a window from per-row predicted absolute and squared errors.

    Predictions below zero (a regressor can extrapolate there) count as zero; an empty window gives ``{}``.
    """
    a = np.clip(np.asarray(absolute, dtype=float).ravel(), 0, None)
    s = np.clip(np.asarray(squared, dtype=float).ravel(), 0, None)
    if a.size == 0 or s.size == 0:
        return {}
    return {"mae": float(np.mean(a)), "rmse": math.sqrt(float(np.mean(s)))}


def _normalised(probabilities: ArrayLike) -> NDArray[np.float64]:
    p = np.clip(np.asarray(probabilities, dtype=float), 0, 1)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError("probabilities must be one row per prediction and one column per class (at least two)")
    total = p.sum(axis=1, keepdims=True)
    even = np.full_like(p, 1 / p.shape[1])
    normalised: NDArray[np.float64] = np.where(total > 0, p / np.where(total > 0, total, 1), even)
    return normalised


def classification_estimate(probabilities: ArrayLike, predicted: ArrayLike) -> dict[str, float]:
    """Estimated ``accuracy``, ``f1`` and (two classes) ``roc_auc`` from calibrated class probabilities.

    ``probabilities`` has a column per class, in the order ``predicted`` indexes (the column of each row's
    predicted class). F1 is the positive class's (the last column) for two classes, as
    :func:`mloop.core.metrics.classification_metrics` computes it, and the macro average otherwise, over the
    classes the window is expected to have (a class that no row is predicted as weighs the chance that any row
    truly is one, as scikit-learn leaves out a class absent from both labels and predictions).
    """
    p = _normalised(probabilities)
    chosen = np.asarray(predicted, dtype=np.int64).ravel()
    if chosen.size != p.shape[0]:
        raise ValueError(f"{chosen.size} predicted classes for {p.shape[0]} rows of probabilities")
    if chosen.size == 0:
        return {}
    rows = np.arange(chosen.size)
    out = {"accuracy": float(np.mean(p[rows, chosen]))}
    f1s, present = [], []
    for k in range(p.shape[1]):
        mine = chosen == k
        tp = float(p[mine, k].sum())  # expected rows truly of class k among those predicted k
        fp = float(mine.sum()) - tp
        fn = float(p[~mine, k].sum())
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else 0.0)
        # The macro average, as scikit-learn's, is over the classes a window has among its labels or predictions:
        # a class no row is predicted as counts with the chance that any of its rows truly is one.
        present.append(1.0 if mine.any() else 1.0 - float(np.prod(1.0 - p[:, k])))
    if p.shape[1] == 2:
        out["f1"] = f1s[-1]
    else:
        weights = np.asarray(present)
        out["f1"] = float(np.dot(weights, f1s) / weights.sum()) if weights.sum() > 0 else 0.0
    if p.shape[1] == 2:
        auc = _expected_auc(p[:, 1])
        if auc is not None:
            out["roc_auc"] = auc
    return out


def _expected_auc(positive: NDArray[np.float64]) -> float | None:
    """ROC AUC expected when each row is positive with its calibrated probability, scored by that probability.

    Every pair of two rows (i positive, j negative) counts with weight ``p_i (1 - p_j)``, as a win when i
    scores higher and half a win on a tie; a row is never paired with itself.
    """
    scores = np.sort(positive, kind="stable")
    pos, neg = scores, 1 - scores
    _, start = np.unique(scores, return_index=True)
    neg_at, pos_at = np.add.reduceat(neg, start), np.add.reduceat(pos, start)
    below = np.concatenate(([0.0], np.cumsum(neg_at)[:-1]))  # negative weight at lower scores
    self_pairs = float(np.dot(pos, neg))  # p_i (1 - p_i): in the tie sums and the total, though not a pair
    wins = float(np.dot(pos_at, below + neg_at / 2)) - self_pairs / 2
    pairs = float(pos.sum()) * float(neg.sum()) - self_pairs
    return wins / pairs if pairs > 0 else None


__all__ = ["classification_estimate", "regression_estimate"]

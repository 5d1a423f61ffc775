"""Quality estimated before labels: the arithmetic of direct loss estimation and of confidence-based estimation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from mloop.core.estimated import classification_estimate, regression_estimate


def test_regression_estimate_is_the_mean_absolute_and_root_mean_squared_predicted_error() -> None:
    estimate = regression_estimate([1.0, 3.0, -2.0], [1.0, 9.0, 4.0])
    assert estimate["mae"] == pytest.approx((1 + 3 + 0) / 3)  # a negative predicted error counts as none
    assert estimate["rmse"] == pytest.approx(math.sqrt((1 + 9 + 4) / 3))
    assert regression_estimate([], []) == {}


def _calibrated(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities that are calibrated by construction, and labels drawn from them."""
    p = rng.beta(0.7, 0.7, n)
    return p, (rng.random(n) < p).astype(int)


def test_with_calibrated_probabilities_the_estimates_meet_the_realised_metrics() -> None:
    rng = np.random.default_rng(0)
    p, y = _calibrated(rng, 50_000)
    predicted = (p >= 0.5).astype(int)
    estimate = classification_estimate(np.column_stack([1 - p, p]), predicted)
    assert estimate["accuracy"] == pytest.approx(accuracy_score(y, predicted), abs=0.01)
    assert estimate["f1"] == pytest.approx(f1_score(y, predicted), abs=0.01)
    assert estimate["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=0.01)


def test_the_expected_auc_is_the_weighted_share_of_ordered_pairs() -> None:
    p = np.array([0.1, 0.4, 0.4, 0.8, 0.95])
    wins = pairs = 0.0
    for i, j in itertools.permutations(range(len(p)), 2):
        weight = p[i] * (1 - p[j])  # i positive, j negative
        pairs += weight
        wins += weight * (1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0)
    estimate = classification_estimate(np.column_stack([1 - p, p]), (p >= 0.5).astype(int))
    assert estimate["roc_auc"] == pytest.approx(wins / pairs)


def test_multiclass_estimates_accuracy_and_macro_f1() -> None:
    rng = np.random.default_rng(1)
    n = 30_000
    p = rng.dirichlet([0.5, 0.5, 0.5], n)
    y = np.array([rng.choice(3, p=row) for row in p[:2000]])  # labels for a subset: drawn from the rows' shares
    predicted = p.argmax(axis=1)
    estimate = classification_estimate(p[:2000], predicted[:2000])
    assert "roc_auc" not in estimate
    assert estimate["accuracy"] == pytest.approx(accuracy_score(y, predicted[:2000]), abs=0.04)
    assert estimate["f1"] == pytest.approx(f1_score(y, predicted[:2000], average="macro"), abs=0.04)


def test_probabilities_that_do_not_sum_to_one_are_normalised_and_bad_shapes_refused() -> None:
    assert classification_estimate([[2.0, 2.0], [0.0, 0.0]], [0, 1])["accuracy"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="one column per class"):
        classification_estimate([0.2, 0.8], [1])
    with pytest.raises(ValueError, match="2 predicted classes for 1 rows"):
        classification_estimate([[0.2, 0.8]], [1, 0])
    assert classification_estimate(np.empty((0, 2)), []) == {}


def test_a_class_absent_from_a_window_does_not_drag_the_macro_f1_down() -> None:
    # Three classes, the window's rows all confidently of the first two: scikit-learn's macro F1 leaves out the
    # third, which is in neither the labels nor the predictions, and so does the estimate.
    p = np.array([[0.9998, 0.0001, 0.0001], [0.0001, 0.9998, 0.0001]] * 50)
    y = np.array([0, 1] * 50)
    estimate = classification_estimate(p, p.argmax(axis=1))
    assert f1_score(y, p.argmax(axis=1), average="macro") == 1.0
    assert estimate["f1"] == pytest.approx(1.0, abs=0.01)  # the third class: a 1% chance that one of its rows is here
    assert classification_estimate(p[:, [0, 1]], p.argmax(axis=1))["f1"] == pytest.approx(1.0, abs=0.001)
    # A class no row is predicted as but some rows likely are still counts (its F1 is 0: its rows are missed).
    q = np.array([[0.5, 0.1, 0.4]] * 20)
    assert classification_estimate(q, np.zeros(20, dtype=int))["f1"] < 0.5

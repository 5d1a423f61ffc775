from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from mloop.monitor.quality import quality


def test_regression_metrics_by_hand() -> None:
    metrics = quality([1.0, 2.0, 4.0], [1.0, 2.0, 3.0], "regression")
    assert metrics == pytest.approx(
        {"rmse": math.sqrt(1 / 3), "mae": 1 / 3, "r2": 1 - 1 / (14 / 3), "mape": (1 / 4) / 3}
    )


def test_regression_drops_pairs_without_a_label() -> None:
    truth = pd.Series([1.0, None, 4.0])
    pred = np.array([1.0, 100.0, 2.0])
    assert quality(truth, pred, "regression")["mae"] == 1.0


def test_regression_leaves_out_labels_that_are_not_numbers() -> None:
    # Feedback labels as JSON gave them: a float for an integer price, and one sent as text.
    truth = np.array([215000.0, "n/a", 100000], dtype=object)
    pred = np.array([215000.0, 5.0, 100010.0])
    assert quality(truth, pred, "regression")["mae"] == 5.0


def test_one_labelled_row_has_no_r2_and_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = quality([3.0], [2.0], "regression")
    assert metrics == {"rmse": 1.0, "mae": 1.0, "mape": pytest.approx(1 / 3)}


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_nothing_to_score_gives_an_empty_dict(task: str) -> None:
    assert quality([], [], task) == {}  # type: ignore[arg-type]
    assert quality([None], [1], task) == {}  # type: ignore[arg-type]


def test_binary_string_labels_use_the_greater_label_as_positive() -> None:
    truth = ["yes", "no", "yes", "yes"]
    pred = ["yes", "no", "no", "yes"]
    metrics = quality(truth, pred, "classification")
    assert metrics["accuracy"] == 0.75
    assert metrics["f1"] == pytest.approx(f1_score(truth, pred, pos_label="yes"))
    flipped = quality(truth, pred, "classification", pos_label="no")
    assert flipped["f1"] == pytest.approx(f1_score(truth, pred, pos_label="no"))


def test_multiclass_f1_is_macro() -> None:
    truth = [0, 1, 2, 2, 1, 0]
    pred = [0, 2, 2, 2, 1, 1]
    metrics = quality(truth, pred, "classification")
    assert metrics["f1"] == pytest.approx(f1_score(truth, pred, average="macro"))
    assert metrics["accuracy"] == pytest.approx(4 / 6)


def test_known_classes_keep_macro_averaging_on_a_two_class_window() -> None:
    truth, pred = ["a", "b", "a"], ["a", "b", "b"]
    metrics = quality(truth, pred, "classification", classes=["a", "b", "c"])
    assert metrics["f1"] == pytest.approx(
        f1_score(truth, pred, labels=["a", "b", "c"], average="macro", zero_division=0.0)
    )


def test_window_with_a_single_class_scores_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = quality([0, 0, 0], [0, 0, 0], "classification", pos_label=1)
    assert metrics == {"accuracy": 1.0, "f1": 0.0}


def test_mismatched_lengths_and_unknown_task_raise() -> None:
    with pytest.raises(ValueError, match="2 labels but 1 predictions"):
        quality([1, 2], [1], "regression")
    with pytest.raises(ValueError, match="unknown task"):
        quality([1], [1], "ranking")  # type: ignore[arg-type]

"""Feedback labels conformed to the target's contract dtype before they join the retraining set."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mloop.retrain.labels import conform_labels


def ids(n: int) -> pd.Series:
    return pd.Series([f"req-{i}" for i in range(n)])


def test_integral_floats_become_integers_without_loss() -> None:
    labels = pd.Series([215000.0, 1.0, 0.0, 3_000_000_000.0], dtype=object)
    kept, rejected = conform_labels(labels, ids(4), "Sale_Price", "integer")
    assert rejected == []
    assert kept.dtype == np.int64
    assert kept.tolist() == [215000, 1, 0, 3_000_000_000]


def test_non_integral_and_non_numeric_labels_are_named_and_left_out() -> None:
    labels = pd.Series([215000.0, 215000.5, "n/a", 7, float("inf")], dtype=object)
    kept, rejected = conform_labels(labels, ids(5), "Sale_Price", "integer")
    assert kept.to_dict() == {0: 215000, 3: 7}  # the index points back at the rows that stay
    assert [(r.request_id, r.label) for r in rejected] == [("req-1", 215000.5), ("req-2", "n/a"), ("req-4", np.inf)]
    message = rejected[0].message
    assert "req-1" in message and "215000.5" in message and "'Sale_Price'" in message and "not an integer" in message
    assert rejected[0].to_dict() == {
        "request_id": "req-1",
        "field": "label",
        "target": "Sale_Price",
        "problem": rejected[0].problem,
    }


def test_float_targets_take_any_finite_number() -> None:
    kept, rejected = conform_labels(pd.Series([1.5, 2, "x"], dtype=object), ids(3), "y", "float")
    assert kept.dtype == np.float64 and kept.tolist() == [1.5, 2.0]
    assert [r.request_id for r in rejected] == ["req-2"]
    assert "not a number" in rejected[0].message


def test_class_labels_are_left_to_the_contract() -> None:
    labels = pd.Series(["yes", "no", 1.5], dtype=object)
    kept, rejected = conform_labels(labels, ids(3), "churn", "string")
    assert rejected == [] and kept is labels

"""A fitted model on a holdout: predictions, task metrics, the watched mean and single-row latency."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score

from mloop.registry.scoring import mean_prediction, predict, score_model, single_row_latency_ms


@pytest.fixture(scope="module")
def X() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    # x leaves a gap around 5 so the classes below are cleanly separable
    x = np.concatenate([rng.uniform(0, 4, 30), rng.uniform(6, 10, 30)])
    return pd.DataFrame({"x": x, "noise": rng.normal(size=60)})


@pytest.fixture(scope="module")
def regressor(X: pd.DataFrame) -> LinearRegression:
    return LinearRegression().fit(X, 3.0 * X["x"] + 1.0)


@pytest.fixture(scope="module")
def labels(X: pd.DataFrame) -> pd.Series:
    return (X["x"] > 5).astype(int)  # integer classes 0 and 1


@pytest.fixture(scope="module")
def classifier(X: pd.DataFrame, labels: pd.Series) -> LogisticRegression:
    return LogisticRegression().fit(X, labels)


def test_a_regressor_predicts_floats_without_probabilities_and_scores_its_metrics(
    regressor: LinearRegression, X: pd.DataFrame
) -> None:
    out = predict(regressor, X, "regression")
    assert out.values.dtype == np.float64
    assert out.proba is None and out.classes is None
    np.testing.assert_allclose(out.values, 3.0 * X["x"] + 1.0, atol=1e-9)
    metrics = score_model(regressor, X, 3.0 * X["x"] + 1.0, "regression")
    assert set(metrics) == {"rmse", "mae", "mape", "r2"}
    assert metrics["rmse"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["r2"] == pytest.approx(1.0)


def test_classifier_predictions_are_text_labels_with_a_probability_per_class(
    classifier: LogisticRegression, X: pd.DataFrame
) -> None:
    out = predict(classifier, X, "classification")
    assert out.classes == ["0", "1"]  # integer classes become text, like the labels they are scored on
    assert set(out.values.tolist()) <= {"0", "1"}
    assert out.proba is not None and out.proba.shape == (len(X), 2)
    np.testing.assert_allclose(out.proba.sum(axis=1), 1.0)
    assert out.values.tolist() == classifier.predict(X).astype(str).tolist()


def test_score_model_compares_integer_labels_with_text_predictions(
    classifier: LogisticRegression, X: pd.DataFrame, labels: pd.Series
) -> None:
    metrics = score_model(classifier, X, labels, "classification")
    assert {"accuracy", "f1", "roc_auc", "log_loss"} <= set(metrics)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(labels, classifier.predict(X)))
    assert metrics["accuracy"] > 0.9  # 1 and "1" are the same class
    assert metrics["roc_auc"] > 0.9


def test_mean_prediction_is_the_mean_value_or_the_mean_probability_of_one_class(
    regressor: LinearRegression, classifier: LogisticRegression, X: pd.DataFrame
) -> None:
    watched = mean_prediction(regressor, "regression")
    assert watched(X) == pytest.approx(float(np.mean(3.0 * X["x"] + 1.0)))
    assert watched(X.assign(x=X["x"] + 1.0)) == pytest.approx(watched(X) + 3.0)
    proba = classifier.predict_proba(X)
    assert mean_prediction(classifier, "classification")(X) == pytest.approx(proba[:, 1].mean())  # the last class
    assert mean_prediction(classifier, "classification", "0")(X) == pytest.approx(proba[:, 0].mean())


def test_mean_prediction_refuses_a_class_the_model_does_not_have(classifier: LogisticRegression) -> None:
    with pytest.raises(ValueError, match=r"class 'yes' is not one of the model's classes \['0', '1'\]"):
        mean_prediction(classifier, "classification", "yes")


class CountingModel:
    """Records the number of rows of every predict call; each call takes ``delay`` seconds."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.rows: list[int] = []

    def predict(self, X: Any) -> np.ndarray:
        self.rows.append(len(X))
        if self.delay:
            time.sleep(self.delay)
        return np.zeros(len(X))


@pytest.mark.parametrize("as_array", [False, True], ids=["frame", "array"])
def test_latency_predicts_one_row_repeats_times_after_two_warm_ups(X: pd.DataFrame, as_array: bool) -> None:
    model = CountingModel()
    ms = single_row_latency_ms(model, X.to_numpy() if as_array else X, repeats=7, budget_s=60.0)
    assert model.rows == [1] * (2 + 7)
    assert isinstance(ms, float) and ms >= 0.0


def test_latency_stops_at_its_budget_after_five_timed_predictions(X: pd.DataFrame) -> None:
    model = CountingModel(delay=0.01)
    ms = single_row_latency_ms(model, X, repeats=50, budget_s=0.0)
    assert len(model.rows) == 2 + 5  # not 50 slow predictions
    assert ms >= 9.0  # the median of the timed calls, in milliseconds

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mloop.core.gate import decide
from mloop.core.metrics import GREATER_IS_BETTER, classification_metrics, is_better, regression_metrics

# ------------------------------------------------------------------------------------ is_better


@pytest.mark.parametrize("metric", ["rmse", "mae", "mape", "log_loss"])
def test_lower_is_better_metrics(metric: str) -> None:
    assert GREATER_IS_BETTER[metric] is False
    assert is_better(metric, 9.0, 10.0)
    assert not is_better(metric, 11.0, 10.0)
    assert not is_better(metric, 10.0, 10.0)  # a tie is not a win


@pytest.mark.parametrize("metric", ["r2", "accuracy", "f1", "roc_auc"])
def test_higher_is_better_metrics(metric: str) -> None:
    assert GREATER_IS_BETTER[metric] is True
    assert is_better(metric, 0.91, 0.90)
    assert not is_better(metric, 0.89, 0.90)
    assert not is_better(metric, 0.90, 0.90)


def test_relative_margin_lower_is_better() -> None:
    # champion rmse 100, margin 5%: the challenger must get below 95
    assert is_better("rmse", 94.0, 100.0, 0.05)
    assert not is_better("rmse", 95.0, 100.0, 0.05)
    assert not is_better("rmse", 96.0, 100.0, 0.05)
    assert is_better("rmse", 96.0, 100.0, 0.0)


def test_relative_margin_higher_is_better() -> None:
    # champion accuracy 0.80, margin 5%: the challenger must get above 0.84
    assert is_better("accuracy", 0.85, 0.80, 0.05)
    assert not is_better("accuracy", 0.84, 0.80, 0.05)
    assert is_better("accuracy", 0.84, 0.80, 0.0)


def test_margin_is_relative_to_the_size_of_a_negative_champion() -> None:
    # r2 can be negative; 10% of |-0.5| is 0.05
    assert is_better("r2", -0.44, -0.5, 0.1)
    assert not is_better("r2", -0.46, -0.5, 0.1)


def test_margin_on_a_zero_champion_needs_a_strict_win() -> None:
    assert not is_better("rmse", 0.0, 0.0, 0.1)
    assert is_better("r2", 0.01, 0.0, 0.1)


# -------------------------------------------------------------------------------------- decide


def test_no_champion_promotes_the_first_version() -> None:
    decision = decide("rmse", 25_000.0, None, None, 0.01)
    assert decision.promote
    assert decision.champion_value is None and decision.champion_version is None
    assert [c.name for c in decision.checks] == ["finite_metric", "beats_champion"]
    assert all(c.passed for c in decision.checks)
    assert "no champion yet" in decision.reason


def test_challenger_that_wins_is_promoted() -> None:
    decision = decide("rmse", 24_000.0, 25_000.0, "3", 0.01)
    assert decision.promote
    assert "beats champion v3" in decision.reason
    assert "lower is better" in decision.reason


def test_challenger_that_loses_is_rejected_with_the_numbers() -> None:
    decision = decide("accuracy", 0.80, 0.85, "2", 0.0)
    assert not decision.promote
    failed = [c for c in decision.checks if not c.passed]
    assert [c.name for c in failed] == ["beats_champion"]
    assert "does not beat champion v2" in decision.reason
    assert "0.8" in decision.reason and "0.85" in decision.reason
    assert "higher is better" in decision.reason


def test_tie_is_not_a_promotion() -> None:
    assert not decide("rmse", 25_000.0, 25_000.0, "1", 0.0).promote
    assert not decide("roc_auc", 0.9, 0.9, "1", 0.0).promote


def test_win_smaller_than_the_margin_is_rejected() -> None:
    decision = decide("rmse", 24_900.0, 25_000.0, "1", 0.01)  # 0.4% better, 1% required
    assert not decision.promote
    assert "margin 1.0%" in decision.reason


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_challenger_is_never_promoted(bad: float) -> None:
    against_champion = decide("rmse", bad, 25_000.0, "1", 0.0)
    assert not against_champion.promote
    assert not against_champion.checks[0].passed
    # not even as the first version: a NaN model must not become champion
    first = decide("rmse", bad, None, None, 0.0)
    assert not first.promote
    assert "finite" in first.reason


def test_nan_lower_is_better_metric_does_not_win_by_comparison() -> None:
    # NaN < x is False and NaN > x is False: both directions must be rejected
    assert not decide("log_loss", math.nan, 0.3, "1", 0.0).promote
    assert not decide("f1", math.nan, 0.3, "1", 0.0).promote


def test_decision_serialises_for_the_version_tag() -> None:
    decision = decide("mae", 10.0, 12.0, "4", 0.05)
    data = json.loads(json.dumps(decision.to_dict()))
    assert data["promote"] is True
    assert data["metric"] == "mae"
    assert data["champion_version"] == "4"
    assert data["challenger_value"] == 10.0 and data["champion_value"] == 12.0
    assert data["min_improvement"] == 0.05
    assert data["reason"] == decision.reason
    assert {c["name"] for c in data["checks"]} == {"finite_metric", "beats_champion"}


# ------------------------------------------------------------------------------------- metrics


def test_regression_metrics_values() -> None:
    out = regression_metrics([100.0, 200.0, 300.0], [110.0, 190.0, 330.0])
    assert out["mae"] == pytest.approx(50 / 3)
    assert out["rmse"] == pytest.approx(math.sqrt((100 + 100 + 900) / 3))
    assert out["mape"] == pytest.approx((0.1 + 0.05 + 0.1) / 3)
    assert out["r2"] == pytest.approx(1 - 1100 / 20_000)
    assert regression_metrics([], []) == {}
    assert "r2" not in regression_metrics([1.0], [2.0])  # undefined on one row


def test_binary_classification_metrics() -> None:
    y = ["no", "yes", "yes", "no"]
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    out = classification_metrics(y, ["no", "yes", "no", "no"], proba, ["no", "yes"])
    assert out["accuracy"] == 0.75
    assert out["f1"] == pytest.approx(2 / 3)  # of the positive class "yes": precision 1, recall 1/2
    assert out["roc_auc"] == 1.0  # the positives score 0.8 and 0.4, the negatives 0.1 and 0.3
    assert out["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.4, 0.7])))


def test_multiclass_classification_metrics() -> None:
    y = ["a", "b", "c", "a", "b", "c"]
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]] * 2)
    out = classification_metrics(y, y, proba, ["a", "b", "c"])
    assert out["accuracy"] == 1.0 and out["f1"] == 1.0
    assert out["roc_auc"] == 1.0
    assert out["log_loss"] == pytest.approx(-math.log(0.8))


def test_labels_only_gives_accuracy_and_f1() -> None:
    out = classification_metrics([1, 0, 1], [1, 1, 1])
    assert set(out) == {"accuracy", "f1"}
    assert out["accuracy"] == pytest.approx(2 / 3)

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from mloop.core.gate import (
    behaviour_result,
    bound_checks,
    decide,
    latency_check,
    schema_check,
    schema_problems,
    slice_check,
)
from mloop.core.metrics import (
    GREATER_IS_BETTER,
    Predictions,
    classification_metrics,
    is_better,
    regression_metrics,
    slice_metrics,
)

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


# ------------------------------------------------------------------------------ the other checks


def test_floors_and_ceilings_name_the_metric_and_numbers() -> None:
    checks = bound_checks({"r2": 0.55, "rmse": 30_000.0}, {"r2": 0.7}, {"rmse": 40_000.0, "mae": 1.0})
    by_name = {c.name: c for c in checks}
    assert set(by_name) == {"floor.r2", "ceiling.rmse", "ceiling.mae"}
    assert not by_name["floor.r2"].passed
    assert by_name["floor.r2"].values == {"value": 0.55, "floor": 0.7}
    assert "r2=0.55 fails the floor >= 0.7" == by_name["floor.r2"].detail
    assert by_name["ceiling.rmse"].passed
    assert not by_name["ceiling.mae"].passed  # a metric the model does not have never passes a bound


def test_extra_checks_block_a_winning_challenger() -> None:
    floor = bound_checks({"r2": 0.1}, {"r2": 0.5}, {})
    decision = decide("rmse", 24_000.0, 25_000.0, "3", 0.0, floor)
    assert not decision.promote
    assert decision.failed == ["floor.r2"]
    assert decision.to_dict()["failed"] == ["floor.r2"]
    assert decision.to_dict()["checks"][2]["values"] == {"value": 0.1, "floor": 0.5}


SLICES_CHAMPION = {"NAmes": {"rmse": 20_000.0, "rows": 40.0}, "Edwards": {"rmse": 30_000.0, "rows": 12.0}}


def test_slice_worse_than_allowed_is_named() -> None:
    challenger = {"NAmes": {"rmse": 19_000.0, "rows": 40.0}, "Edwards": {"rmse": 36_000.0, "rows": 12.0}}
    check = slice_check("rmse", "Neighborhood", challenger, SLICES_CHAMPION, 0.1)
    assert check.name == "slice.Neighborhood" and not check.passed
    assert "Edwards (+20.0%)" in check.detail
    assert check.values["worst"]["slice"] == "Edwards"
    assert check.values["worst"]["challenger"] == 36_000.0 and check.values["worst"]["champion"] == 30_000.0
    assert [r["slice"] for r in check.values["failing"]] == ["Edwards"]


def test_slice_within_the_allowance_passes_and_reports_the_worst() -> None:
    challenger = {"NAmes": {"rmse": 21_000.0, "rows": 40.0}, "Edwards": {"rmse": 30_500.0, "rows": 12.0}}
    check = slice_check("rmse", "Neighborhood", challenger, SLICES_CHAMPION, 0.1)
    assert check.passed
    assert "(worst NAmes +5.0%)" in check.detail


def test_slice_direction_follows_the_metric() -> None:
    champion = {"a": {"accuracy": 0.9}}
    assert not slice_check("accuracy", "c", {"a": {"accuracy": 0.7}}, champion, 0.1).passed
    assert slice_check("accuracy", "c", {"a": {"accuracy": 0.95}}, champion, 0.1).passed
    assert slice_check("accuracy", "c", {"a": {"accuracy": 0.7}}, None, 0.1).passed  # no champion


def test_latency_budget() -> None:
    assert latency_check(1.5, 5.0).passed
    over = latency_check(7.25, 5.0)
    assert not over.passed and over.values == {"latency_ms": 7.25, "budget_ms": 5.0}
    assert "over the budget" in over.detail


def test_schema_compatibility() -> None:
    champion = {"area": ("float", False), "kind": ("string", True)}
    assert schema_problems({"area": ("float", False)}, champion) == []  # dropping an input is fine
    assert schema_problems({**champion, "new_opt": ("float", True)}, champion) == []
    problems = schema_problems(
        {"area": ("string", False), "kind": ("string", False), "pool": ("float", False)}, champion
    )
    assert problems == [
        "'area' changed type float -> string",
        "'kind' no longer accepts missing values",
        "new required input 'pool'",
    ]
    check = schema_check(problems, "2")
    assert check.name == "schema" and not check.passed and "champion v2" in check.detail
    assert schema_check([], None).passed


FRAME = pd.DataFrame({"area": [100.0, 200.0, 300.0], "kind": ["a", "b", "a"]})


def test_behaviour_holds_for_a_monotone_model() -> None:
    result = behaviour_result(
        lambda X: float(X["area"].mean() * 2),
        FRAME,
        name="area_up",
        feature="area",
        factor=1.1,
        delta=None,
        expect="not_lower",
    )
    assert result.passed
    assert result.before == 400.0 and result.after == pytest.approx(440.0)
    assert result.check().name == "behaviour.area_up" and "holds" in result.check().detail


def test_behaviour_violation_fails_with_numbers() -> None:
    result = behaviour_result(
        lambda X: float(1000 - X["area"].mean()),
        FRAME,
        name="area_up",
        feature="area",
        factor=None,
        delta=50.0,
        expect="not_lower",
    )
    assert not result.passed
    check = result.check()
    assert not check.passed and "violated" in check.detail
    assert check.values["mean_before"] == 800.0 and check.values["mean_after"] == 750.0
    # a small tolerance does not excuse a 6% drop, a larger one does
    assert not behaviour_result(
        lambda X: float(1000 - X["area"].mean()),
        FRAME,
        name="t",
        feature="area",
        factor=None,
        delta=50.0,
        expect="not_lower",
        tolerance=0.05,
    ).passed
    assert behaviour_result(
        lambda X: float(1000 - X["area"].mean()),
        FRAME,
        name="t",
        feature="area",
        factor=None,
        delta=50.0,
        expect="not_lower",
        tolerance=0.1,
    ).passed


def test_behaviour_on_a_missing_or_text_feature_fails() -> None:
    def mean(X: pd.DataFrame) -> float:
        return 1.0

    missing = behaviour_result(mean, FRAME, name="m", feature="pool", factor=2.0, delta=None, expect="not_lower")
    text = behaviour_result(mean, FRAME, name="t", feature="kind", factor=2.0, delta=None, expect="not_lower")
    assert not missing.passed and "not an input" in missing.check().detail
    assert not text.passed and "not numeric" in text.check().detail


def test_slice_metrics_group_rows_and_skip_small_slices() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    predictions = Predictions(np.array([1.0, 2.0, 3.0, 5.0, 5.0]))
    groups = np.array(["a", "a", "a", "b", None], dtype=object)
    out = slice_metrics(y, predictions, groups, "regression", min_rows=1)
    assert set(out) == {"a", "b", "(missing)"}
    assert out["a"]["rmse"] == 0.0 and out["a"]["rows"] == 3.0
    assert out["b"]["rmse"] == 1.0
    assert set(slice_metrics(y, predictions, groups, "regression", min_rows=2)) == {"a"}


def test_regression_metrics_match_scikit_learn() -> None:
    from sklearn import metrics as skm

    rng = np.random.default_rng(7)
    for n in (2, 3, 50, 586):
        truth = rng.normal(180_000, 60_000, n)
        truth[0] = 0.0  # MAPE's epsilon floor
        guess = truth + rng.normal(0, 20_000, n)
        out = regression_metrics(truth, guess)
        assert out["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(truth, guess)), rel=1e-12)
        assert out["mae"] == pytest.approx(skm.mean_absolute_error(truth, guess), rel=1e-12)
        assert out["mape"] == pytest.approx(skm.mean_absolute_percentage_error(truth, guess), rel=1e-12)
        assert out["r2"] == pytest.approx(skm.r2_score(truth, guess), rel=1e-12)
    constant = [5.0, 5.0, 5.0]
    assert regression_metrics(constant, constant)["r2"] == skm.r2_score(constant, constant) == 1.0
    assert regression_metrics(constant, [5.0, 6.0, 5.0])["r2"] == skm.r2_score(constant, [5.0, 6.0, 5.0]) == 0.0


def test_regression_metrics_refuse_missing_values_and_unequal_lengths() -> None:
    with pytest.raises(ValueError, match="NaN"):
        regression_metrics([1.0, 2.0], [1.0, float("nan")])
    with pytest.raises(ValueError, match="2 true values but 3 predictions"):
        regression_metrics([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"one number per row, not an array of shape \(2, 2\)"):
        regression_metrics([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.0]])  # several outputs: not pooled
    assert regression_metrics([[1.0], [3.0]], [1.0, 2.0]) == regression_metrics([1.0, 3.0], [[1.0], [2.0]])

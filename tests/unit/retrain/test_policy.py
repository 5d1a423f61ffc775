from __future__ import annotations

from mloop.retrain.policy import decide, drift_streak

BASE = {
    "dataset_drift": False,
    "drifted_features": [],
    "decay": None,
    "metric": "rmse",
    "new_labels": 500,
    "on_drift": True,
    "max_quality_decay": 0.1,
    "min_new_labels": 200,
}


def test_no_drift_no_decay_means_no_retraining() -> None:
    decision = decide(**BASE)
    assert not decision.retrain and decision.reasons == []


def test_drift_triggers_retraining_and_names_the_features() -> None:
    decision = decide(**{**BASE, "dataset_drift": True, "drifted_features": ["Gr_Liv_Area", "Sale_Type"]})
    assert decision.retrain
    assert "Gr_Liv_Area" in decision.reasons[0] and "2 feature" in decision.reasons[0]


def test_drift_is_ignored_when_disabled() -> None:
    assert not decide(**{**BASE, "dataset_drift": True, "drifted_features": ["a"], "on_drift": False}).retrain


def test_quality_decay_beyond_the_limit_triggers_retraining() -> None:
    assert not decide(**{**BASE, "decay": 0.09}).retrain
    decision = decide(**{**BASE, "decay": 0.25})
    assert decision.retrain and "25.0% worse" in decision.reasons[0]


def test_too_few_new_labels_blocks_retraining() -> None:
    decision = decide(**{**BASE, "decay": 0.5, "new_labels": 10})
    assert not decision.retrain
    assert decision.reasons and "only 10 labelled" in decision.blockers[0]


def test_drift_must_last_the_configured_number_of_windows() -> None:
    drifted = {**BASE, "dataset_drift": True, "drifted_features": ["a", "b", "c"], "drift_windows": 3}
    assert not decide(**drifted, streak=2).retrain
    decision = decide(**drifted, streak=3)
    assert decision.retrain and "3 consecutive windows" in decision.reasons[0]


def test_drift_streak_counts_the_latest_run_of_drifted_windows() -> None:
    assert drift_streak([]) == 0
    assert drift_streak([True, True, False]) == 0
    assert drift_streak([True, False, True, True]) == 2


def test_prediction_drift_triggers_only_when_enabled() -> None:
    assert not decide(**{**BASE, "prediction_drift": True}).retrain
    decision = decide(**{**BASE, "prediction_drift": True, "on_prediction_drift": True})
    assert decision.retrain and "predictions drifted" in decision.reasons[0]


def test_a_due_schedule_triggers_but_still_needs_new_labels() -> None:
    decision = decide(**{**BASE, "schedule_due": "cron '0 3 * * *' was due"})
    assert decision.retrain and decision.reasons == ["scheduled: cron '0 3 * * *' was due"]
    assert not decide(**{**BASE, "schedule_due": "x", "new_labels": 0}).retrain


def test_features_drifting_together_trigger_only_when_enabled() -> None:
    together = {**BASE, "multivariate_drift": "PCA reconstruction error 3.1 > 1.4"}
    assert not decide(**together).retrain  # shown, not acted on, by default
    decision = decide(**together, on_multivariate_drift=True)
    assert decision.retrain and decision.reasons == [
        "the features drifted together: PCA reconstruction error 3.1 > 1.4"
    ]
    assert not decide(**{**together, "on_drift": False}, on_multivariate_drift=True).retrain  # drift triggers off
    assert not decide(**together, on_multivariate_drift=True, streak=1, drift_windows=2).retrain
    both = decide(**{**together, "dataset_drift": True, "drifted_features": ["a"]}, on_multivariate_drift=True)
    assert len(both.reasons) == 1 and "data drift on 1 feature" in both.reasons[0]  # one drift reason, not two

"""Shadow evidence as numbers: agreement, differences, prediction drift and live quality of two models."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mloop.core.metrics import classification_metrics, regression_metrics
from mloop.core.shadow import ShadowEvidence, agreeing, live_metric, shadow_checks, shadow_evidence


@pytest.fixture
def regression() -> tuple[np.ndarray, np.ndarray, list[float | None]]:
    rng = np.random.default_rng(7)
    champion = rng.normal(200_000, 40_000, 400)
    challenger = champion * rng.normal(1.0, 0.06, 400)  # about 60% within 5% of the champion
    truth = champion + rng.normal(0, 20_000, 400)
    labels: list[float | None] = [float(y) if i % 3 else None for i, y in enumerate(truth)]
    return champion, challenger, labels


def test_regression_agreement_and_differences_match_a_direct_computation(
    regression: tuple[np.ndarray, np.ndarray, list[float | None]],
) -> None:
    champion, challenger, labels = regression
    evidence = shadow_evidence(champion, challenger, labels, "regression", tolerance=0.05)

    relative = np.abs(challenger - champion) / np.abs(champion)
    assert evidence.requests == 400
    assert evidence.agreed == int((relative <= 0.05).sum())
    assert 0.4 < evidence.agreement < 0.8  # type: ignore[operator]
    assert evidence.mean_abs_difference == pytest.approx(np.mean(np.abs(challenger - champion)))
    assert evidence.mean_relative_difference == pytest.approx(np.mean(relative))


def test_regression_quality_is_scored_on_the_same_labelled_requests(
    regression: tuple[np.ndarray, np.ndarray, list[float | None]],
) -> None:
    champion, challenger, labels = regression
    evidence = shadow_evidence(champion, challenger, labels, "regression")

    keep = np.array([y is not None for y in labels])
    y = np.array([v for v in labels if v is not None])
    assert evidence.labelled == int(keep.sum()) == 266
    assert evidence.champion_quality == pytest.approx(regression_metrics(y, champion[keep]))
    assert evidence.challenger_quality == pytest.approx(regression_metrics(y, challenger[keep]))
    rmse_loss = (evidence.challenger_quality["rmse"] - evidence.champion_quality["rmse"]) / evidence.champion_quality[
        "rmse"
    ]
    assert evidence.quality_loss("rmse") == pytest.approx(rmse_loss)
    assert rmse_loss > 0  # the noisier challenger is worse
    r2_loss = (evidence.champion_quality["r2"] - evidence.challenger_quality["r2"]) / evidence.champion_quality["r2"]
    assert evidence.quality_loss("r2") == pytest.approx(r2_loss)  # higher is better: the sign follows


def test_prediction_drift_is_the_challenger_against_the_champion() -> None:
    rng = np.random.default_rng(3)
    champion = rng.normal(100, 10, 1000)
    shifted = shadow_evidence(champion, champion + 8, None, "regression")
    same = shadow_evidence(champion, champion.copy(), None, "regression")

    assert shifted.drifted and shifted.drift["psi"] > 0.2
    assert shifted.drift["ks"] == pytest.approx(stats.ks_2samp(champion, champion + 8).statistic)
    assert same.drifted is False and same.drift["psi"] == pytest.approx(0.0, abs=1e-9) and same.drift["ks"] == 0.0
    assert same.agreement == 1.0 and same.mean_abs_difference == 0.0
    assert shifted.labelled == 0 and shifted.champion_quality == {}


def test_classification_agreement_drift_and_quality() -> None:
    champion = ["yes", "no", "yes", "yes", "no", "no", "yes", "no"] * 25
    challenger = ["yes", "yes", "yes", "no", "no", "no", "yes", "yes"] * 25
    labels = ["yes", "no", "no", "yes", None, "no", "yes", "yes"] * 25
    evidence = shadow_evidence(champion, challenger, labels, "classification")

    assert evidence.requests == 200 and evidence.agreed == 125 and evidence.agreement == 0.625
    assert evidence.mean_abs_difference is None
    assert {"psi", "chi2", "chi2_pvalue"} <= set(evidence.drift)
    keep = [i for i, y in enumerate(labels) if y is not None]
    truth = np.array([labels[i] for i in keep])
    binary = ["no", "yes"]
    assert evidence.labelled == 175
    assert evidence.champion_quality == pytest.approx(
        classification_metrics(truth, np.array([champion[i] for i in keep]), classes=binary)
    )
    assert evidence.challenger_quality == pytest.approx(
        classification_metrics(truth, np.array([challenger[i] for i in keep]), classes=binary)
    )


def test_missing_predictions_never_agree_and_labels_of_another_type_are_compared_as_text() -> None:
    assert agreeing([1.0, None, float("nan"), 0.0], [1.04, 1.0, 2.0, 0.0], "regression").tolist() == [
        True,
        False,
        False,
        True,
    ]
    assert agreeing([1, "a", None], ["1", "a", None], "classification").tolist() == [True, True, False]
    evidence = shadow_evidence([10.0, None], [10.0, 5.0], ["not a number", 3.0], "regression")
    assert evidence.requests == 2 and evidence.agreed == 1 and evidence.labelled == 0  # no pair is complete


def test_no_pairs_is_no_evidence_not_an_error() -> None:
    evidence = shadow_evidence([], [], [], "regression")
    assert evidence.requests == 0 and evidence.agreement is None and evidence.drift == {}
    assert evidence.to_dict()["agreement"] is None


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="2 champion predictions but 1 challenger"):
        shadow_evidence([1.0, 2.0], [1.0], None, "regression")
    with pytest.raises(ValueError, match="3 labels for 2 paired"):
        shadow_evidence([1.0, 2.0], [1.0, 2.0], [1, 2, 3], "regression")
    with pytest.raises(ValueError, match="unknown task"):
        agreeing([1], [1], "ranking")
    with pytest.raises(ValueError, match="tolerance"):
        agreeing([1.0], [1.0], "regression", tolerance=-1)


def _evidence(requests: int, labelled: int, champion_rmse: float, challenger_rmse: float) -> ShadowEvidence:
    quality = labelled > 0
    return ShadowEvidence(
        task="regression",
        requests=requests,
        agreed=requests // 2,
        tolerance=0.05,
        labelled=labelled,
        champion_quality={"rmse": champion_rmse} if quality else {},
        challenger_quality={"rmse": challenger_rmse} if quality else {},
    )


def test_the_gate_checks_name_the_figures() -> None:
    [short] = shadow_checks(_evidence(40, 0, 0, 0), champion_version="3", metric="rmse", min_requests=100)
    assert not short.passed and short.name == "shadow.requests"
    assert "only 40 shadow-scored requests against champion v3" in short.detail
    assert "gate.shadow.min_requests=100" in short.detail and "agreement so far 50.0%" in short.detail
    assert short.values["requests"] == 40 and short.values["min_requests"] == 100

    enough, worse = shadow_checks(
        _evidence(120, 60, 100.0, 110.0), champion_version="3", metric="rmse", min_requests=100, max_quality_loss=0.05
    )
    assert enough.passed and "120 shadow-scored requests" in enough.detail
    assert not worse.passed and worse.name == "shadow.quality"
    assert "challenger 110 vs champion v3 100 (10.0% worse), over gate.shadow.max_quality_loss=5.0%" in worse.detail
    assert worse.values["loss"] == pytest.approx(0.1) and worse.values["labelled"] == 60

    [better] = shadow_checks(_evidence(120, 60, 100.0, 90.0), champion_version="3", metric="rmse", max_quality_loss=0)
    assert better.passed and "10.0% better" in better.detail

    [unlabelled] = shadow_checks(_evidence(120, 0, 0, 0), champion_version="3", metric="rmse", max_quality_loss=0.1)
    assert not unlabelled.passed and "0 of 120 shadow-scored requests are labelled" in unlabelled.detail

    assert shadow_checks(_evidence(0, 0, 0, 0), champion_version="3", metric="rmse") == []  # nothing required


def test_live_quality_of_classifiers_is_compared_without_probabilities() -> None:
    assert live_metric("roc_auc", "classification") == "accuracy"
    assert live_metric("f1", "classification") == "f1" and live_metric("rmse", "regression") == "rmse"

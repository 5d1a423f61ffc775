"""Multivariate drift on the Ames reference: quiet on unchanged windows, alarmed by a broken relation.

The reference is the demo's training years (2006-2007). The correlation break shuffles Gr_Liv_Area within
each window, so every marginal distribution is the window's own; Gr_Liv_Area is First_Flr_SF +
Second_Flr_SF in this data, so the rows no longer add up. docs/monitoring.md ("Multivariate drift") has
the figures measured with more windows (bench/multivariate_drift.py).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mloop.core.drift import DriftThresholds
from mloop.data.multivariate import (
    MultivariateReference,
    fit_multivariate_reference,
    multivariate_drift,
)
from mloop.data.profile import Profile, build_profile, infer_kinds
from mloop.errors import MonitorError, ProfileError
from mloop.monitor.drift import drift_report

WINDOW = 200


@pytest.fixture(scope="module")
def frame(ames: pd.DataFrame) -> pd.DataFrame:
    return ames[ames["Year_Sold"] <= 2007].drop(columns=["Sale_Price", "Year_Sold", "Mo_Sold"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(frame: pd.DataFrame) -> MultivariateReference:
    # 8 classifier resamples rather than 40: a fifth of the fitting time, a noisier threshold of the same kind.
    return fit_multivariate_reference(frame, *infer_kinds(frame), classifier_resamples=8, window_sizes=(WINDOW,))


@pytest.fixture(scope="module")
def profile(frame: pd.DataFrame) -> Profile:
    return build_profile(frame, *infer_kinds(frame))


def _resample(frame: pd.DataFrame, seed: int, n: int = WINDOW) -> pd.DataFrame:
    return frame.sample(n=n, replace=True, random_state=seed).reset_index(drop=True)


def _break_living_area(window: pd.DataFrame, seed: int) -> pd.DataFrame:
    shuffled = np.random.default_rng(seed).permutation(window["Gr_Liv_Area"].to_numpy())
    return window.assign(Gr_Liv_Area=shuffled)


def test_the_reference_is_what_the_docs_say(reference: MultivariateReference, frame: pd.DataFrame) -> None:
    assert reference.n_rows == len(frame)
    assert 0.65 <= reference.explained_variance < 0.7  # the fewest components reaching 65%
    assert 1 <= reference.n_components < len(reference.pca_mean)
    assert len(reference.sample) == len(frame)  # under the 5,000-row cap
    assert all(len(labels) <= 20 for labels in reference.categories)


def test_unchanged_windows_rarely_alarm(reference: MultivariateReference, frame: pd.DataFrame) -> None:
    windows = [_resample(frame, seed) for seed in range(100)]
    reconstruction = [multivariate_drift(reference, w, domain_classifier=False) for w in windows]
    assert np.mean([r.reconstruction_drifted for r in reconstruction]) <= 0.05
    # The classifier costs a cross-validated fit per window: 20 windows, both statistics together.
    both = [multivariate_drift(reference, w) for w in windows[:20]]
    assert all(r.auroc is not None and r.classifier_rows == WINDOW for r in both)
    assert np.mean([r.drifted for r in both]) <= 0.05


def test_a_broken_relation_is_caught_where_no_feature_drifts(
    reference: MultivariateReference, profile: Profile, frame: pd.DataFrame
) -> None:
    windows = [_break_living_area(_resample(frame, 1000 + seed), seed) for seed in range(30)]
    per_feature = [drift_report(profile, w, DriftThresholds()) for w in windows]
    assert sum(report.dataset_drift for report in per_feature) <= 1  # the unchanged rate: marginals are the same
    results = [multivariate_drift(reference, w, domain_classifier=False) for w in windows]
    assert np.mean([r.reconstruction_drifted for r in results]) >= 0.6  # 80% of these 30 windows measured
    classified = [multivariate_drift(reference, w) for w in windows[:10]]
    assert np.mean([r.drifted for r in classified]) >= 0.8


def test_a_large_plain_shift_is_caught(reference: MultivariateReference, frame: pd.DataFrame) -> None:
    for seed in range(5):
        window = _resample(frame, 2000 + seed)
        sizes = ["Gr_Liv_Area", "First_Flr_SF", "Second_Flr_SF", "Total_Bsmt_SF", "Garage_Area", "Lot_Area"]
        moved = window.assign(**{name: window[name] * 1.5 for name in sizes}, Neighborhood="Edwards")
        result = multivariate_drift(reference, moved)
        assert result.drifted
        assert result.auroc is not None and result.auroc > 0.9


def test_round_trip_gives_identical_results(reference: MultivariateReference, frame: pd.DataFrame) -> None:
    text = json.dumps(reference.to_dict(), allow_nan=False)  # JSON-safe: no NaN, no NumPy types
    again = MultivariateReference.from_dict(json.loads(text))
    assert again.to_dict() == reference.to_dict()
    assert MultivariateReference.from_bytes(reference.to_bytes()).to_dict() == reference.to_dict()
    for window in (_resample(frame, 7), _break_living_area(_resample(frame, 8), 8)):
        assert multivariate_drift(again, window) == multivariate_drift(reference, window)
    # A size neither had calibrated (the classifier's would cost a calibration on each side).
    result = multivariate_drift(again, _resample(frame, 9, n=120), domain_classifier=False)
    assert result == multivariate_drift(reference, _resample(frame, 9, n=120), domain_classifier=False)
    assert json.loads(json.dumps(result.to_dict(), allow_nan=False))["n_rows"] == 120


def test_threshold_size_picks_the_thresholds(reference: MultivariateReference, frame: pd.DataFrame) -> None:
    window = _resample(frame, 11, n=150)
    result = multivariate_drift(reference, window, threshold_size=WINDOW, domain_classifier=False)
    assert result.threshold_size == WINDOW
    assert result.reconstruction_threshold == reference.reconstruction_threshold(WINDOW)
    assert result.auroc is None and not result.auroc_drifted and result.classifier_rows == 0


def test_missing_columns_and_empty_windows_are_errors(reference: MultivariateReference, frame: pd.DataFrame) -> None:
    with pytest.raises(MonitorError, match=r"lacks 2 column\(s\).*Gr_Liv_Area, Neighborhood"):
        multivariate_drift(reference, frame.drop(columns=["Gr_Liv_Area", "Neighborhood"]))
    with pytest.raises(MonitorError, match="no rows"):
        multivariate_drift(reference, frame.iloc[:0])
    with pytest.raises(ProfileError, match="empty frame"):
        fit_multivariate_reference(frame.iloc[:0], ["Gr_Liv_Area"], [])
    with pytest.raises(ProfileError, match="Nope"):
        fit_multivariate_reference(frame, ["Nope"], [])
    with pytest.raises(MonitorError, match="Not a valid multivariate"):
        MultivariateReference.from_bytes(b"{}")
    with pytest.raises(MonitorError, match="not JSON"):
        MultivariateReference.from_bytes(b"\x00")


def test_unseen_categories_missing_and_infinite_values(reference: MultivariateReference, frame: pd.DataFrame) -> None:
    window = _resample(frame, 21).astype({"Lot_Area": "float64"})
    window.loc[:9, "Neighborhood"] = "Atlantis"  # never seen: counts as "other"
    window.loc[:9, "Garage_Type"] = None
    with_nan = window.copy()
    with_nan.loc[:9, "Lot_Area"] = np.nan
    with_inf = window.copy()
    with_inf.loc[:4, "Lot_Area"] = np.inf
    with_inf.loc[5:9, "Lot_Area"] = -np.inf
    nan_result = multivariate_drift(reference, with_nan, domain_classifier=False)
    assert np.isfinite(nan_result.reconstruction_error)
    assert multivariate_drift(reference, with_inf, domain_classifier=False) == nan_result  # inf counts as missing
    assert multivariate_drift(reference, window.assign(Extra=1), domain_classifier=False).n_rows == WINDOW


def test_a_tiny_window_skips_the_classifier(reference: MultivariateReference, frame: pd.DataFrame) -> None:
    result = multivariate_drift(reference, _resample(frame, 31, n=5))
    assert result.auroc is None and result.classifier_rows == 0
    assert result.to_dict()["domain_classifier"]["auroc"] is None

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import chisquare, ks_2samp

from mloop.core.drift import (
    EPS,
    DriftThresholds,
    FeatureDrift,
    bin_counts,
    categorical_drift,
    chi2_categorical,
    ks_2sample,
    numeric_drift,
    psi,
)

RNG_SEED = 7


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(RNG_SEED)


def quantile_edges(values: np.ndarray, bins: int = 10) -> np.ndarray:
    return np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))


# --- psi -------------------------------------------------------------------------------------------


def test_psi_of_identical_histograms_is_zero() -> None:
    counts = [10, 20, 30, 40]
    assert psi(counts, counts) == 0.0
    assert psi(counts, [2 * c for c in counts]) == pytest.approx(0.0, abs=1e-15)


def test_psi_of_same_distribution_samples_is_small(rng: np.random.Generator) -> None:
    reference = rng.normal(size=5000)
    edges = quantile_edges(reference)
    value = psi(bin_counts(reference, edges), bin_counts(rng.normal(size=5000), edges))
    assert 0 <= value < 0.02


def test_psi_of_shifted_normal_exceeds_threshold(rng: np.random.Generator) -> None:
    reference = rng.normal(size=5000)
    edges = quantile_edges(reference)
    value = psi(bin_counts(reference, edges), bin_counts(rng.normal(loc=1.0, size=5000), edges))
    assert value > 0.2


def test_psi_matches_formula_and_clips_empty_cells() -> None:
    ref, cur = np.array([50, 50, 0]), np.array([25, 50, 25])
    r = np.maximum(ref / ref.sum(), EPS)
    c = np.maximum(cur / cur.sum(), EPS)
    assert psi(ref, cur) == pytest.approx(float(np.sum((c - r) * np.log(c / r))))
    assert math.isfinite(psi(ref, cur))


@pytest.mark.parametrize(("ref", "cur"), [([1, 2], [1, 2, 3]), ([0, 0], [1, 1]), ([], []), ([-1, 2], [1, 1])])
def test_psi_rejects_bad_counts(ref: list[int], cur: list[int]) -> None:
    with pytest.raises(ValueError):
        psi(ref, cur)


# --- bin_counts ------------------------------------------------------------------------------------


def test_bin_counts_outer_bins_are_open_ended_and_nan_is_not_counted() -> None:
    edges = [0.0, 1.0, 2.0, 3.0]
    values = [-100.0, 0.0, 0.5, 1.0, 2.5, 3.0, 1e9, math.nan]
    # [-inf, 1), [1, 2), [2, +inf)
    assert bin_counts(values, edges).tolist() == [3, 1, 3]


def test_bin_counts_of_reference_sums_to_its_size(rng: np.random.Generator) -> None:
    values = rng.exponential(size=1000)
    counts = bin_counts(values, quantile_edges(values))
    assert counts.sum() == 1000
    assert counts.size == 10


def test_bin_counts_with_constant_reference_has_one_bin() -> None:
    assert bin_counts([1.0, 5.0, math.nan], [3.0]).tolist() == [2]
    assert bin_counts([1.0], []).tolist() == [1]


# --- ks ----------------------------------------------------------------------------------------------


def test_ks_equals_scipy_on_the_same_samples(rng: np.random.Generator) -> None:
    a, b = rng.normal(size=300), rng.normal(loc=0.3, size=200)
    expected = ks_2samp(a, b)
    assert ks_2sample(a, b) == (float(expected.statistic), float(expected.pvalue))


def test_ks_drops_nans(rng: np.random.Generator) -> None:
    a, b = rng.normal(size=100), rng.normal(size=80)
    expected = ks_2samp(a, b)
    with_nans = np.append(b, [math.nan, math.nan])
    assert ks_2sample(a, with_nans) == (float(expected.statistic), float(expected.pvalue))


def test_ks_of_an_empty_side_is_nan() -> None:
    statistic, p_value = ks_2sample([1.0, 2.0], [math.nan])
    assert math.isnan(statistic) and math.isnan(p_value)


# --- chi2 ------------------------------------------------------------------------------------------


def test_chi2_does_not_reject_counts_matching_the_reference() -> None:
    _, p_value = chi2_categorical({"a": 0.5, "b": 0.3, "c": 0.2}, {"a": 500, "b": 300, "c": 200})
    assert p_value == pytest.approx(1.0)


def test_chi2_detects_a_category_share_change() -> None:
    statistic, p_value = chi2_categorical({"a": 0.5, "b": 0.3, "c": 0.2}, {"a": 300, "b": 300, "c": 400})
    expected = chisquare([300, 300, 400], f_exp=[500, 300, 200])
    assert statistic == pytest.approx(float(expected.statistic))
    assert p_value < 1e-10


def test_chi2_pools_unseen_categories_into_one_cell_with_the_floor_share() -> None:
    reference = {"a": 0.6, "b": 0.4}
    statistic, p_value = chi2_categorical(reference, {"a": 60, "b": 38, "x": 1, "y": 1})
    shares = np.array([0.6, 0.4, EPS]) / (1 + EPS)
    expected = chisquare([60, 38, 2], f_exp=shares * 100)
    assert statistic == pytest.approx(float(expected.statistic))
    assert p_value == pytest.approx(float(expected.pvalue))


def test_chi2_of_one_category_cannot_differ() -> None:
    assert chi2_categorical({"a": 1.0}, {"a": 10}) == (0.0, 1.0)


# --- decisions ---------------------------------------------------------------------------------------

THRESHOLDS = DriftThresholds(psi_threshold=0.2, ks_pvalue=0.01, chi2_pvalue=0.01)


def _numeric(reference: np.ndarray, current: np.ndarray, null_rate: float = 0.0) -> FeatureDrift:
    edges = quantile_edges(reference)
    return numeric_drift(
        "x",
        edges=edges,
        reference_counts=bin_counts(reference, edges),
        reference_null_rate=null_rate,
        reference_sample=reference[:2000],
        current=current,
        thresholds=THRESHOLDS,
    )


def test_numeric_same_distribution_is_not_drifted(rng: np.random.Generator) -> None:
    result = _numeric(rng.normal(size=5000), rng.normal(size=500))
    assert not result.drifted
    assert result.reason == ""


def test_numeric_shift_is_drifted_by_psi_and_ks(rng: np.random.Generator) -> None:
    result = _numeric(rng.normal(size=5000), rng.normal(loc=1.0, size=500))
    assert result.drifted
    assert "PSI" in result.reason and "KS" in result.reason
    assert result.wasserstein == pytest.approx(1.0, abs=0.15)


def test_numeric_small_shift_inside_the_bins_is_caught_by_ks_alone(rng: np.random.Generator) -> None:
    result = _numeric(rng.normal(size=20000), rng.normal(loc=0.15, size=5000))
    assert result.psi < 0.2
    assert result.drifted and result.reason.startswith("KS")


def test_numeric_feature_arriving_empty_drifts_through_the_missing_cell(rng: np.random.Generator) -> None:
    reference = rng.normal(size=5000)
    current = np.where(rng.random(500) < 0.5, math.nan, rng.normal(size=500))
    result = _numeric(reference, current)
    assert result.null_rate_current == pytest.approx(0.5, abs=0.06)
    assert result.drifted and result.reason.startswith("PSI")

    all_missing = _numeric(reference, np.full(100, math.nan))
    assert all_missing.drifted and all_missing.p_value is None


def _categorical(counts: dict[str, int], nulls: int = 0, null_rate: float = 0.0) -> FeatureDrift:
    return categorical_drift(
        "c",
        reference_freq={"a": 0.5, "b": 0.3, "c": 0.2},
        reference_null_rate=null_rate,
        current_counts=counts,
        current_nulls=nulls,
        thresholds=THRESHOLDS,
    )


def test_categorical_large_shift_is_drifted() -> None:
    result = _categorical({"a": 100, "b": 300, "c": 600})
    assert result.drifted
    assert result.test == "chi2" and result.p_value is not None and result.p_value < 0.01


def test_categorical_tiny_shift_on_a_huge_window_is_significant_but_not_drifted() -> None:
    result = _categorical({"a": 480_000, "b": 310_000, "c": 210_000})
    assert result.p_value is not None and result.p_value < 1e-10
    assert result.psi < 0.01
    assert not result.drifted


def test_categorical_counts_unseen_categories() -> None:
    few = _categorical({"a": 500, "b": 300, "c": 195, "new1": 3, "new2": 2})
    assert few.unseen_categories == 2
    assert not few.drifted  # a handful of new values is not a drifted distribution

    many = _categorical({"a": 300, "b": 200, "c": 100, "new": 400})
    assert many.unseen_categories == 1 and many.drifted


def test_categorical_missing_values_are_a_cell() -> None:
    result = _categorical({"a": 250, "b": 150, "c": 100}, nulls=500)
    assert result.null_rate_current == 0.5
    assert result.unseen_categories == 0 and result.drifted
    stable = _categorical({"a": 450, "b": 270, "c": 180}, nulls=100, null_rate=0.1)
    assert not stable.drifted


def test_feature_drift_to_dict_is_strict_json(rng: np.random.Generator) -> None:
    result = _numeric(rng.normal(size=100), np.full(10, math.nan))
    text = json.dumps(result.to_dict(), allow_nan=False)
    assert json.loads(text)["test_statistic"] is None
    assert "psi" in result.statistics() and "ks" not in result.statistics()


@pytest.mark.parametrize(
    "kwargs", [{"psi_threshold": 0.0}, {"ks_pvalue": 1.0}, {"chi2_pvalue": 0.0}, {"ks_pvalue": -0.1}]
)
def test_thresholds_reject_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        DriftThresholds(**kwargs)

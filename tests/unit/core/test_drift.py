from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import binomtest, chisquare, ks_2samp, wasserstein_distance

from mloop.core.drift import (
    EPS,
    KS_EXACT_MAX,
    MIN_EXPECTED,
    DriftThresholds,
    FeatureDrift,
    benjamini_hochberg,
    bin_counts,
    bin_counts_sorted,
    categorical_drift,
    chi2_categorical,
    decide,
    ks_2sample,
    ks_sorted,
    missing_share_pvalue,
    numeric_drift,
    pool_sparse_cells,
    psi,
    sorted_finite,
    wasserstein_sorted,
)
from mloop.core.drift import quantile_edges as edges_of_sorted

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


@pytest.mark.parametrize("bins", [1, 3, 10, 17])
def test_bin_counts_from_the_sorted_values_equal_a_search_per_value(rng: np.random.Generator, bins: int) -> None:
    reference = np.round(rng.gamma(2.0, 10.0, 3000))  # ties on the edges
    edges = edges_of_sorted(np.sort(reference), bins)
    current = np.append(np.round(rng.gamma(2.0, 12.0, 5000)), [math.nan, -1e9, 1e9, *edges])
    inner = edges[1:-1]
    finite = current[~np.isnan(current)]
    by_value = np.bincount(np.searchsorted(inner, finite, side="right"), minlength=inner.size + 1)
    assert bin_counts_sorted(np.sort(finite), edges).tolist() == by_value.tolist()
    assert bin_counts(current, edges).tolist() == by_value.tolist()


def test_quantile_edges_are_numpys_bit_for_bit(rng: np.random.Generator) -> None:
    for size in [1, 2, 3, 7, 10, 11, 999, 1000, 1001, 54_321]:
        for values in (rng.normal(size=size), np.round(rng.exponential(size=size), 1), np.full(size, 2.5)):
            for bins in (1, 4, 10, 13):
                expected = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))
                assert np.array_equal(edges_of_sorted(np.sort(values), bins), expected), (size, bins)
    assert edges_of_sorted(np.array([]), 10).size == 0


def test_sorted_finite_drops_and_counts_nans_without_touching_the_input() -> None:
    values = np.array([3.0, math.nan, 1.0, 2.0, math.nan])
    ordered, nulls = sorted_finite(values)
    assert ordered.tolist() == [1.0, 2.0, 3.0] and nulls == 2
    assert math.isnan(values[1]) and values[0] == 3.0


def test_a_float32_column_is_sorted_in_float32_and_gives_the_widened_values(rng: np.random.Generator) -> None:
    values = np.where(rng.random(10_000) < 0.05, np.nan, rng.normal(size=10_000)).astype(np.float32)
    ordered, nulls = sorted_finite(values)
    widened = values.astype(np.float64)
    assert ordered.dtype == np.float64 and nulls == int(np.isnan(values).sum())
    assert np.array_equal(ordered, np.sort(widened[~np.isnan(widened)]))
    reference = rng.normal(size=3000)
    as32 = _numeric(reference, values)
    as64 = _numeric(reference, widened)
    assert as32 == as64


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


def _samples(rng: np.random.Generator, kind: int, m: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Continuous, heavily tied, skewed and rounded samples: the cases where ECDF steps coincide."""
    if kind == 0:
        return rng.normal(size=m), rng.normal(0.05, size=n)
    if kind == 1:
        return rng.integers(0, 20, m).astype(float), rng.integers(0, 22, n).astype(float)
    if kind == 2:
        return rng.gamma(2.0, 10.0, m), rng.gamma(2.0, 10.5, n)
    return np.round(rng.exponential(size=m), 1), np.round(rng.exponential(size=n), 2)


@pytest.mark.parametrize("kind", range(4))
@pytest.mark.parametrize(("m", "n"), [(2000, 12_000), (2000, 250_000), (15_000, 10_001), (1, 20_000), (3, 30_000)])
def test_ks_on_large_samples_is_scipys_statistic_bit_for_bit_and_its_p_value(
    rng: np.random.Generator, kind: int, m: int, n: int
) -> None:
    # Above KS_EXACT_MAX values the statistic comes from binary searches into the sorted window, not SciPy.
    assert max(m, n) > KS_EXACT_MAX
    a, b = _samples(rng, kind, m, n)
    expected = ks_2samp(a, b)
    statistic, p_value = ks_sorted(np.sort(a), np.sort(b))
    assert statistic == float(expected.statistic)
    assert p_value == pytest.approx(float(expected.pvalue), rel=1e-9, abs=1e-12)
    assert ks_sorted(np.sort(b), np.sort(a))[0] == float(ks_2samp(b, a).statistic)


@pytest.mark.parametrize("kind", range(4))
@pytest.mark.parametrize(
    ("m", "n"), [(2000, 1_000_000), (2000, 333_333), (2000, 2000), (2000, 150), (1, 7), (7, 1), (1, 1)]
)
def test_wasserstein_equals_scipy(rng: np.random.Generator, kind: int, m: int, n: int) -> None:
    a, b = _samples(rng, kind, m, n)
    expected = float(wasserstein_distance(a, b))
    assert wasserstein_sorted(np.sort(a), np.sort(b)) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_wasserstein_of_identical_samples_is_zero_and_of_a_shift_is_the_shift(rng: np.random.Generator) -> None:
    values = np.sort(rng.normal(size=1000))
    assert wasserstein_sorted(values, values) == 0.0
    assert wasserstein_sorted(values, values + 3.0) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        wasserstein_sorted(values, np.array([]))


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
    # The unseen cell expects 0.01 rows, under MIN_EXPECTED: it is pooled with the next smallest cell (b).
    expected = chisquare([60, 38 + 2], f_exp=[shares[0] * 100, (shares[1] + shares[2]) * 100])
    assert statistic == pytest.approx(float(expected.statistic))
    # Two cells are a binomial: its exact p-value, not chi²'s approximation, is the one given.
    assert p_value == pytest.approx(binomtest(40, 100, float(shares[1] + shares[2])).pvalue)
    assert p_value > 0.9  # two new values among a hundred are no evidence of drift

    # On a window large enough for the unseen cell to expect 5 rows it is tested on its own.
    big = chi2_categorical(reference, {"a": 30_000, "b": 20_000, "x": 50_000})
    unpooled = chisquare([30_000, 20_000, 50_000], f_exp=shares * 100_000)
    assert big == pytest.approx((float(unpooled.statistic), float(unpooled.pvalue)))


def test_pool_sparse_cells_follows_cochrans_rule() -> None:
    observed = np.array([50.0, 3.0, 40.0, 1.0, 6.0])
    expected = np.array([48.0, 2.0, 41.0, 4.0, 5.0])
    pooled_obs, pooled_exp = pool_sparse_cells(observed, expected)
    # 2 and 4 are under 5 and pool to 6: enough, so the cell expecting 5 stays; kept cells keep their order.
    assert pooled_obs.tolist() == [50.0, 40.0, 6.0, 4.0] and pooled_exp.tolist() == [48.0, 41.0, 5.0, 6.0]
    # A pool still under 5 takes the next smallest cells until it reaches 5.
    obs, exp = pool_sparse_cells(np.array([1.0, 1.0, 90.0, 8.0]), np.array([1.0, 2.0, 89.0, 8.0]))
    assert obs.tolist() == [90.0, 10.0] and exp.tolist() == [89.0, 11.0]
    # Nothing sparse: unchanged; everything sparse: one cell.
    assert pool_sparse_cells(observed[:1], expected[:1])[1].tolist() == [48.0]
    assert pool_sparse_cells(np.array([1.0, 2.0]), np.array([1.5, 1.5]))[0].tolist() == [3.0]
    assert MIN_EXPECTED == 5.0


def test_chi2_of_a_tiny_window_with_every_cell_sparse_cannot_differ() -> None:
    assert chi2_categorical({"a": 0.5, "b": 0.3, "c": 0.2}, {"a": 1, "b": 2}) == (0.0, 1.0)


def test_chi2_of_one_category_cannot_differ() -> None:
    assert chi2_categorical({"a": 1.0}, {"a": 10}) == (0.0, 1.0)


# --- decisions ---------------------------------------------------------------------------------------

THRESHOLDS = DriftThresholds(psi_threshold=0.2, ks_pvalue=0.01, chi2_pvalue=0.01, decision="per_feature")


def _numeric(
    reference: np.ndarray,
    current: np.ndarray,
    null_rate: float = 0.0,
    thresholds: DriftThresholds = THRESHOLDS,
    name: str = "x",
) -> FeatureDrift:
    edges = quantile_edges(reference)
    return numeric_drift(
        name,
        edges=edges,
        reference_counts=bin_counts(reference, edges),
        reference_null_rate=null_rate,
        reference_sample=reference[:2000],
        current=current,
        thresholds=thresholds,
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


# A categorical feature with a long tail, like Ames' neighbourhoods: 10 common categories and 20 rare
# ones that each expect half a row in a window of 200.
LONG_TAIL = np.array([0.095] * 10 + [0.05 / 20] * 20)
LONG_TAIL_FREQ = {f"c{i:02d}": float(share) for i, share in enumerate(LONG_TAIL / LONG_TAIL.sum())}


def _window(rng: np.random.Generator, size: int = 200) -> dict[str, int]:
    labels, counts = np.unique(
        rng.choice(list(LONG_TAIL_FREQ), size, p=list(LONG_TAIL_FREQ.values())), return_counts=True
    )
    return dict(zip(labels.tolist(), counts.tolist(), strict=True))


def _long_tail(counts: dict[str, int]) -> FeatureDrift:
    return categorical_drift(
        "neighbourhood",
        reference_freq=LONG_TAIL_FREQ,
        reference_null_rate=0.0,
        current_counts=counts,
        current_nulls=0,
        thresholds=THRESHOLDS,
    )


def _unpooled_rule(counts: dict[str, int], result: FeatureDrift) -> bool:
    """The decision before sparse cells were pooled: chi² over every cell, unseen ones at share EPS."""
    cells = list(LONG_TAIL_FREQ)
    unseen = sum(v for k, v in counts.items() if k not in LONG_TAIL_FREQ)
    observed = [counts.get(c, 0) for c in cells] + ([unseen] if unseen else [])
    shares = np.maximum(np.array([LONG_TAIL_FREQ[c] for c in cells] + ([0.0] if unseen else [])), EPS)
    p_value = float(chisquare(observed, f_exp=shares / shares.sum() * sum(observed)).pvalue)
    return p_value < THRESHOLDS.chi2_pvalue and result.psi > THRESHOLDS.psi_threshold / 2


def test_a_stable_small_window_with_rare_and_a_few_unseen_categories_is_not_flagged(
    rng: np.random.Generator,
) -> None:
    counts = _window(rng)
    counts["Landmark"] = 1  # one house from a neighbourhood the training data never saw
    result = _long_tail(counts)
    assert _unpooled_rule(counts, result)  # the old rule called this drift (chi² of ~48 from one row) …
    assert not result.drifted and result.p_value is not None and result.p_value > 0.05  # … pooled, it is not
    assert result.unseen_categories == 1

    # Over many stable windows the false alarm rate stays near the test's level (1%; measured 1.1% over
    # 5,000 windows); unpooled it was 3.8%.
    windows = [_window(rng) for _ in range(1000)]
    flagged = sum(_long_tail(w).drifted for w in windows)
    unpooled = sum(_unpooled_rule(w, _long_tail(w)) for w in windows)
    assert flagged <= 20 and unpooled >= 2 * flagged, (flagged, unpooled)


def test_a_real_shift_in_a_small_window_is_still_flagged(rng: np.random.Generator) -> None:
    counts = _window(rng, 140)
    rare = [c for c in LONG_TAIL_FREQ if LONG_TAIL_FREQ[c] < 0.01]
    for name in rare[:6]:
        counts[name] = counts.get(name, 0) + 10  # the rare neighbourhoods now sell 30% of the houses
    assert _long_tail(counts).drifted
    flood = {**_window(rng, 160), "Landmark": 40}  # a fifth of the window from an unseen neighbourhood
    assert _long_tail(flood).drifted


def test_categorical_missing_values_are_a_cell() -> None:
    result = _categorical({"a": 250, "b": 150, "c": 100}, nulls=500)
    assert result.null_rate_current == 0.5
    assert result.unseen_categories == 0 and result.drifted
    stable = _categorical({"a": 450, "b": 270, "c": 180}, nulls=100, null_rate=0.1)
    assert not stable.drifted


def test_numeric_drift_statistics_equal_scipys_on_a_large_window(rng: np.random.Generator) -> None:
    reference = rng.gamma(2.0, 10.0, 50_000)
    current = np.append(rng.gamma(2.0, 10.4, 300_000), [math.nan] * 10)
    result = _numeric(reference, current)
    sample, finite = reference[:2000], current[~np.isnan(current)]
    expected = ks_2samp(sample, finite)
    assert result.test_statistic == float(expected.statistic)
    assert result.p_value == pytest.approx(float(expected.pvalue), rel=1e-9, abs=1e-12)
    assert result.wasserstein == pytest.approx(float(wasserstein_distance(sample, finite)), rel=1e-9)
    edges = edges_of_sorted(np.sort(reference), 10)
    ref_cells = np.append(bin_counts(reference, edges) / reference.size, 0.0)
    cur_cells = np.append(bin_counts(current, edges), 10.0)
    assert result.js_distance == pytest.approx(float(jensenshannon(ref_cells, cur_cells, base=2)), rel=1e-9)


def test_categorical_js_equals_scipy() -> None:
    result = _categorical({"a": 100, "b": 300, "c": 590, "new": 10}, nulls=5, null_rate=0.02)
    ref_cells = np.array([0.5 * 0.98, 0.3 * 0.98, 0.2 * 0.98, 0.0, 0.02])
    cur_cells = np.array([100, 300, 590, 10, 5], dtype=float)
    assert result.js_distance == pytest.approx(float(jensenshannon(ref_cells, cur_cells, base=2)), rel=1e-9)


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


# The calibrated decision (its alarm rate on real windows: tests/unit/monitor/test_drift_calibration.py).
CALIBRATED = DriftThresholds()


def test_benjamini_hochberg_adjusts_step_up_and_leaves_untested_features_out() -> None:
    # By hand: sorted 0.01, 0.03, 0.04, 0.5 with m = 4 give 0.04, 0.0533, 0.0533 (the step-up minimum), 0.5.
    adjusted = benjamini_hochberg([0.04, None, 0.01, 0.5, 0.03, math.nan])
    assert adjusted[1] is None and adjusted[5] is None
    assert adjusted[0] == pytest.approx(0.04 * 4 / 3)
    assert adjusted[2] == pytest.approx(0.04)
    assert adjusted[3] == pytest.approx(0.5)
    assert adjusted[4] == pytest.approx(0.04 * 4 / 3)
    assert benjamini_hochberg([]) == []


def test_missing_share_pvalue_is_a_binomial_test_with_a_floor_for_a_reference_without_missing() -> None:
    assert missing_share_pvalue(0.1, 10, 100) == pytest.approx(binomtest(10, 100, 0.1).pvalue)
    one = missing_share_pvalue(0.0, 1, 200)  # one empty value where the reference had none: not proof of change
    assert one == pytest.approx(binomtest(1, 200, EPS).pvalue) and one > 0.01
    assert missing_share_pvalue(0.0, 50, 200) < 1e-100
    assert math.isnan(missing_share_pvalue(0.1, 0, 0))


def _significant_features(rng: np.random.Generator, count: int) -> list[FeatureDrift]:
    reference = rng.normal(size=4000)
    return [
        _numeric(reference, rng.normal(loc=0.4 if i < 2 else 0.0, size=400), thresholds=CALIBRATED, name=f"x{i}")
        for i in range(count)
    ]


def test_the_calibrated_decision_corrects_over_the_window(rng: np.random.Generator) -> None:
    features = _significant_features(rng, 30)
    decided = decide(features, thresholds=CALIBRATED)
    adjusted = benjamini_hochberg([f.decision_p_value for f in features])
    assert [f.p_adjusted for f in decided] == adjusted
    drifted = {f.feature for f in decided if f.drifted}
    large = {f.feature for f in features if f.psi >= 0.1 or f.test_statistic >= 0.1}
    significant = {f.feature for f, a in zip(features, adjusted, strict=True) if a is not None and a <= 0.05}
    assert drifted == large & significant
    assert {"x0", "x1"} <= drifted
    # Each alone at p < 0.05 would flag more of the 28 unchanged ones than the corrected decision does.
    assert len([f for f in features if f.p_value is not None and f.p_value < 0.05]) > len(drifted)
    # A feature alone is a family of one: its adjusted p-value is its own.
    assert features[0].p_adjusted == features[0].p_value
    # per_feature leaves each feature's own decision as it was.
    assert decide(features, DriftThresholds(decision="per_feature")) == features


def test_a_marginal_p_value_drifts_alone_but_not_among_many() -> None:
    base = dict(kind="numeric", psi=0.5, test="ks", test_statistic=0.3, js_distance=0.1, wasserstein=1.0, drifted=False)
    stats = dict(reason="", null_rate_reference=0.0, null_rate_current=0.0, unseen_categories=0, n_current=200)
    marginal = FeatureDrift(feature="m", p_value=0.01, **base, **stats)  # type: ignore[arg-type]
    quiet = [FeatureDrift(feature=f"q{i}", p_value=0.9, **base, **stats) for i in range(20)]  # type: ignore[arg-type]
    assert decide([marginal], thresholds=CALIBRATED)[0].drifted
    assert not decide([marginal, *quiet], thresholds=CALIBRATED)[0].drifted  # 0.01 * 21 > 0.05


def test_the_effect_floors_keep_a_significant_but_negligible_shift_quiet(rng: np.random.Generator) -> None:
    result = _numeric(rng.normal(size=20000), rng.normal(loc=0.15, size=20000), thresholds=CALIBRATED)
    assert result.p_value is not None and result.p_value < 1e-6
    assert result.psi < CALIBRATED.effect_floor and result.test_statistic < CALIBRATED.ks_effect_floor
    assert not result.drifted
    floorless = _numeric(
        rng.normal(size=20000), rng.normal(loc=0.15, size=20000), thresholds=DriftThresholds(effect_floor=0)
    )
    assert floorless.drifted and "PSI" in floorless.reason


def test_a_constant_reference_column_drifts_on_the_ks_floor(rng: np.random.Generator) -> None:
    result = _numeric(np.zeros(1000), rng.normal(loc=5, size=200), thresholds=CALIBRATED)
    assert result.psi < CALIBRATED.effect_floor  # one bin holds every value: PSI cannot see the move
    assert result.drifted and "KS statistic 1" in result.reason


def test_missing_values_count_in_the_calibrated_decision(rng: np.random.Generator) -> None:
    current = np.where(rng.random(500) < 0.3, math.nan, rng.normal(size=500))
    result = _numeric(rng.normal(size=5000), current, thresholds=CALIBRATED)
    assert result.null_p_value is not None and result.null_p_value < 1e-50
    assert result.drifted and "missing-share p-value" in result.reason
    assert result.decision_p_value == pytest.approx(min(1.0, 2 * min(result.null_p_value, result.p_value or 1)))


def test_decision_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="decision"):
        DriftThresholds(decision="majority")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="false_alarm_rate"):
        DriftThresholds(false_alarm_rate=0)
    with pytest.raises(ValueError, match="ks_effect_floor"):
        DriftThresholds(ks_effect_floor=-1)

"""Property tests of the drift statistics (issue 15): PSI, KS, Wasserstein, chi², Jensen–Shannon.

For every statistic, on generated data that includes NaN, ±inf, ±1e308 (and the largest float), subnormals,
single values, a single category, all-null and empty windows:

* identical reference and window give the "no difference" value (0 for PSI, KS, Wasserstein, chi² and JS;
  p-value 1) and no drift;
* symmetric statistics are symmetric (PSI, KS, Wasserstein), bounded ones stay in bounds (KS and JS in
  [0, 1], p-values in [0, 1], PSI and chi² at least 0), and nothing depends on the order of the rows;
* every result is finite, or a documented NaN/None: KS and Wasserstein of a side with no values; an empty
  window is a :class:`~mloop.errors.MonitorError` from the monitor and a ``ValueError`` naming the problem
  from the core functions; never a stray ``RuntimeWarning`` (pytest turns warnings into errors);
* a window moved far away from its reference is flagged as drift.

The core functions are tested directly and through :func:`mloop.monitor.drift.compute_drift` and
:func:`~mloop.monitor.drift.drift_report` against :func:`~mloop.data.profile.build_profile`, which is how
production rows reach them. Each test ``note``s its inputs: with the schemathesis pytest plugin loaded,
hypothesis prints a falsifying argument as an empty ``x=,``.
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, assume, example, given, note, settings
from hypothesis import strategies as st
from scipy.stats import wasserstein_distance

from mloop.core.drift import (
    KS_EXACT_MAX,
    DriftThresholds,
    FeatureDrift,
    bin_counts,
    categorical_drift,
    chi2_categorical,
    ks_2sample,
    ks_sorted,
    numeric_drift,
    psi,
    quantile_edges,
    wasserstein_sorted,
)
from mloop.data.profile import NumericProfile, build_profile
from mloop.errors import MonitorError, ProfileError
from mloop.monitor.drift import compute_drift, drift_report

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    database=None,  # no .hypothesis folder in the shared work tree
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],  # no slow "explain"
)
MONITOR = settings(PROPERTY, max_examples=30)  # a compute_drift of five columns costs ~25 ms
THRESHOLDS = DriftThresholds()
BIGGEST = sys.float_info.max
EXTREMES = (math.nan, math.inf, -math.inf, 1e308, -1e308, BIGGEST, -BIGGEST, 5e-324, 0.0, -0.0)
TINY = 1e-12  # "zero" for a statistic of identical inputs, which only rounding separates from 0

CELLS = st.one_of(st.floats(-1e6, 1e6), st.floats(), st.sampled_from(EXTREMES))  # NaN, ±inf, huge, subnormal
FINITE_CELLS = st.one_of(
    st.floats(-1e6, 1e6), st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(EXTREMES[3:])
)


def arrays(
    cells: st.SearchStrategy[float] = CELLS, min_size: int = 0, max_size: int = 40
) -> st.SearchStrategy[np.ndarray]:
    return st.lists(cells, min_size=min_size, max_size=max_size).map(lambda v: np.array(v, dtype=np.float64))


def finite_sorted(min_size: int = 1, max_size: int = 20) -> st.SearchStrategy[np.ndarray]:
    return arrays(FINITE_CELLS, min_size, max_size).map(np.sort)


# --------------------------------------------------------------------------------------------- PSI

WEIGHTS = st.one_of(st.floats(0, 1e6), st.floats(0, BIGGEST), st.sampled_from([0.0, 1e308, BIGGEST, 5e-324]))


@st.composite
def histograms(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    size = draw(st.integers(1, 12))
    cells = st.lists(WEIGHTS, min_size=size, max_size=size).filter(lambda v: sum(v) > 0)
    return np.array(draw(cells)), np.array(draw(cells))


@PROPERTY
@given(histograms())
@example(pair=(np.array([0.0, 1.0]), np.array([8.450745320230097e307, 9.526186028393062e307])))
def test_psi_is_zero_for_equal_shares_non_negative_symmetric_and_order_free(
    pair: tuple[np.ndarray, np.ndarray],
) -> None:
    ref, cur = pair
    note(f"ref={ref.tolist()} cur={cur.tolist()}")
    value = psi(ref, cur)
    assert math.isfinite(value) and value >= 0
    assert psi(ref, ref) == 0.0
    scaled = ref * 4.0 if ref.max() < 1e300 else ref / 4.0
    assert psi(ref, scaled) == pytest.approx(0.0, abs=TINY)  # shares, not counts
    assert psi(cur, ref) == pytest.approx(value, rel=1e-9, abs=TINY)
    order = np.random.default_rng(len(ref)).permutation(len(ref))
    assert psi(ref[order], cur[order]) == pytest.approx(value, rel=1e-9, abs=TINY)


@PROPERTY
@given(st.lists(WEIGHTS | st.sampled_from([math.nan, math.inf, -1.0]), min_size=0, max_size=6))
@example(counts=[math.nan, 1.0])
@example(counts=[math.inf])
def test_psi_refuses_counts_that_are_not_a_histogram_with_a_value_error(counts: list[float]) -> None:
    note(f"counts={counts}")
    array = np.array(counts, dtype=np.float64)
    valid = array.size > 0 and bool(np.all(np.isfinite(array))) and bool(np.all(array >= 0)) and bool(np.any(array > 0))
    assume(not valid)
    with pytest.raises(ValueError, match="counts must be"):
        psi(array, np.ones_like(array) if array.size else array)
    with pytest.raises(ValueError, match="counts must be"):
        psi(np.ones_like(array) if array.size else array, array)


# ---------------------------------------------------------------------------------------------- KS


def _ks_ok(statistic: float, p_value: float) -> None:
    assert 0.0 <= statistic <= 1.0 and 0.0 <= p_value <= 1.0, (statistic, p_value)


@PROPERTY
@given(arrays(), arrays())
@example(a=np.zeros(5), b=np.array([0.0, 0.0, 0.0, 0.0, 1.0]))
def test_ks_is_bounded_symmetric_order_free_and_nan_only_without_values(a: np.ndarray, b: np.ndarray) -> None:
    note(f"a={a.tolist()} b={b.tolist()}")
    statistic, p_value = ks_2sample(a, b)
    if np.isnan(a).all() or np.isnan(b).all():  # an empty side (all NaN counts as empty): the test is undefined
        assert math.isnan(statistic) and math.isnan(p_value)
        return
    _ks_ok(statistic, p_value)
    assert ks_2sample(b, a) == pytest.approx((statistic, p_value), rel=1e-9, abs=1e-12)
    assert ks_2sample(a[::-1], np.random.default_rng(0).permutation(b)) == (statistic, p_value)
    assert ks_2sample(a, a) == (0.0, 1.0)


@settings(PROPERTY, max_examples=25)
@given(finite_sorted(1, 6), finite_sorted(1, 6), st.integers(1, 6))
def test_ks_on_large_samples_is_bounded_symmetric_and_zero_for_itself(
    a: np.ndarray, b: np.ndarray, spread: int
) -> None:
    """Past KS_EXACT_MAX values ks_sorted uses its own binary searches, not SciPy: the same properties hold."""
    note(f"a={a.tolist()} b={b.tolist()} spread={spread}")
    big_a = np.repeat(a, KS_EXACT_MAX // a.size + spread)
    big_b = np.repeat(b, KS_EXACT_MAX // b.size + 2 * spread)
    assert big_a.size > KS_EXACT_MAX and big_b.size > KS_EXACT_MAX
    statistic, p_value = ks_sorted(big_a, big_b)
    _ks_ok(statistic, p_value)
    assert ks_sorted(big_b, big_a)[0] == pytest.approx(statistic, abs=1e-12)
    assert ks_sorted(big_a, big_a) == (0.0, 1.0)


# -------------------------------------------------------------------------------------- Wasserstein


def _exact_wasserstein(a: np.ndarray, b: np.ndarray) -> Fraction:
    """∫₀¹ |Q_a(p) - Q_b(p)| dp in exact rational arithmetic: the quantile functions are steps at k/len."""
    breaks = sorted({Fraction(i, a.size) for i in range(a.size + 1)} | {Fraction(j, b.size) for j in range(b.size + 1)})
    total = Fraction(0)
    for low, high in zip(breaks, breaks[1:], strict=False):
        middle = (low + high) / 2
        qa, qb = Fraction(float(a[int(middle * a.size)])), Fraction(float(b[int(middle * b.size)]))
        total += abs(qa - qb) * (high - low)
    return total


def _as_float(value: Fraction) -> float:
    try:
        return float(value)
    except OverflowError:  # past the largest float: the float answer is inf
        return math.inf


@PROPERTY
@given(finite_sorted(), finite_sorted())
@example(a=np.array([0.0, 0.0]), b=np.array([8.98846567431158e307]))
@example(a=np.array([-1e308]), b=np.array([1e308]))
@example(a=np.array([BIGGEST]), b=np.array([-1e308, 1e308]))
def test_wasserstein_is_the_exact_distance_rounded_even_for_huge_values(a: np.ndarray, b: np.ndarray) -> None:
    note(f"a={a.tolist()} b={b.tolist()}")
    value = wasserstein_sorted(a, b)
    exact = _as_float(_exact_wasserstein(a, b))
    assert value >= 0
    if math.isinf(exact):  # the distance itself is beyond the largest float
        assert value == math.inf
    elif value == math.inf:  # rounding may carry a distance right at the largest float past it, nothing less
        assert exact > BIGGEST * (1 - 1e-9)
    else:
        assert value == pytest.approx(exact, rel=1e-9, abs=1e-300)
    assert wasserstein_sorted(b, a) == pytest.approx(value, rel=1e-12, abs=1e-300)
    assert wasserstein_sorted(a, a) == 0.0


@PROPERTY
@given(finite_sorted(max_size=30).filter(lambda v: bool(np.all(np.abs(v) <= 1e6))), st.floats(-1e6, 1e6))
def test_wasserstein_equals_scipy_and_a_shift_moves_it_by_the_shift(a: np.ndarray, shift: float) -> None:
    note(f"a={a.tolist()} shift={shift}")
    b = np.sort(a + shift)
    assert wasserstein_sorted(a, b) == pytest.approx(float(wasserstein_distance(a, b)), rel=1e-9, abs=1e-9)
    assert wasserstein_sorted(a, b) == pytest.approx(abs(shift), rel=1e-6, abs=1e-6)


# ------------------------------------------------------------------------------------ bins and edges


@PROPERTY
@given(arrays(FINITE_CELLS, 1, 40), st.integers(1, 12), arrays())
@example(values=np.array([1e308, -7.976931348623158e307]), bins=1, window=np.array([]))
@example(values=np.array([-BIGGEST, 0.0, BIGGEST]), bins=10, window=np.array([math.inf, -math.inf, math.nan]))
def test_quantile_edges_are_finite_sorted_span_the_values_and_bins_count_every_value(
    values: np.ndarray, bins: int, window: np.ndarray
) -> None:
    note(f"values={values.tolist()} bins={bins} window={window.tolist()}")
    ordered = np.sort(values)
    edges = quantile_edges(ordered, bins)
    assert np.all(np.isfinite(edges)) and np.all(edges[1:] > edges[:-1])  # no np.diff: it overflows
    assert edges[0] == ordered[0] and edges[-1] == ordered[-1]
    with np.errstate(all="ignore"):  # NumPy's own interpolation overflows across a span past the largest float
        numpy_edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))
    if np.all(np.isfinite(numpy_edges)):
        assert np.array_equal(edges, numpy_edges)  # bit for bit wherever NumPy's answer is a number
    counts = bin_counts(values, edges)
    assert counts.sum() == values.size and counts.size == max(edges.size - 1, 1)
    assert bin_counts(window, edges).sum() == np.count_nonzero(~np.isnan(window))  # outer bins are open-ended


# ----------------------------------------------------------------------------------------- chi²

CATEGORIES = st.sampled_from(["a", "b", "c", "d", "e", "f"])


@st.composite
def category_counts(draw: st.DrawFn, min_size: int = 1) -> dict[str, int]:
    return draw(st.dictionaries(CATEGORIES, st.integers(1, 10**6), min_size=min_size, max_size=6))


@PROPERTY
@given(category_counts(), st.integers(1, 50))
@example(counts={"a": 1, "b": 10000}, factor=5)
def test_chi2_of_counts_in_the_reference_shares_cannot_differ(counts: dict[str, int], factor: int) -> None:
    note(f"counts={counts} factor={factor}")
    total = sum(counts.values())
    shares = {k: v / total for k, v in counts.items()}
    statistic, p_value = chi2_categorical(shares, {k: v * factor for k, v in counts.items()})
    assert statistic == pytest.approx(0.0, abs=1e-6) and p_value == pytest.approx(1.0, abs=1e-6)


@PROPERTY
@given(category_counts(), st.dictionaries(CATEGORIES | st.just("unseen"), st.integers(0, 10**6), max_size=7))
def test_chi2_is_bounded_and_nan_only_for_an_empty_window(reference: dict[str, int], current: dict[str, int]) -> None:
    note(f"reference={reference} current={current}")
    total = sum(reference.values())
    statistic, p_value = chi2_categorical({k: v / total for k, v in reference.items()}, current)
    if sum(current.values()) == 0:
        assert math.isnan(statistic) and math.isnan(p_value)
    else:
        assert math.isfinite(statistic) and statistic >= 0 and 0.0 <= p_value <= 1.0


# ------------------------------------------------------------------------- decisions (core functions)


def _numeric(reference: np.ndarray, current: np.ndarray) -> FeatureDrift:
    """numeric_drift against the profile build_profile keeps of ``reference`` (±inf and NaN as missing)."""
    finite = reference[np.isfinite(reference)]
    ordered = np.sort(finite)
    edges = quantile_edges(ordered, 10)
    return numeric_drift(
        "x",
        edges=edges,
        reference_counts=bin_counts(ordered, edges),
        reference_null_rate=1 - finite.size / reference.size,
        reference_sample=finite,
        current=current,
        thresholds=THRESHOLDS,
    )


def _sane(result: FeatureDrift) -> None:
    """Every statistic is finite and in its range, or a documented gap: no test without values on a side."""
    assert math.isfinite(result.psi) and result.psi >= 0
    assert math.isfinite(result.js_distance) and 0 <= result.js_distance <= 1 + 1e-12
    assert 0 <= result.null_rate_current <= 1
    if result.p_value is None:
        assert math.isnan(result.test_statistic) or result.kind == "categorical"
    else:
        assert 0 <= result.p_value <= 1 and math.isfinite(result.test_statistic) and result.test_statistic >= 0
    if result.kind == "numeric":
        assert (result.wasserstein is None) == (result.p_value is None)
        if result.wasserstein is not None:
            assert result.wasserstein >= 0 and not math.isnan(result.wasserstein)
        assert result.test_statistic <= 1 or math.isnan(result.test_statistic)
    values = result.statistics()
    assert all(math.isfinite(v) for v in values.values())  # what the Prometheus gauges get
    assert all(v is None or not isinstance(v, float) or math.isfinite(v) for v in result.to_dict().values())
    assert result.drifted == bool(result.reason)


@PROPERTY
@given(arrays(min_size=1))
@example(values=np.array([0.0, 0.0, 0.0, math.inf, math.inf]))
@example(values=np.array([math.inf]))
def test_a_window_identical_to_its_numeric_reference_does_not_drift(values: np.ndarray) -> None:
    note(f"values={values.tolist()}")
    result = _numeric(values, values)
    _sane(result)
    assert result.psi <= TINY and result.js_distance <= 1e-6
    if np.isfinite(values).any():
        assert (result.test_statistic, result.p_value, result.wasserstein) == (0.0, 1.0, 0.0)
    else:  # nothing but NaN and ±inf: no values to test, documented as None
        assert result.p_value is None and result.wasserstein is None
    assert not result.drifted


@PROPERTY
@given(arrays(min_size=1), arrays(min_size=1))
@example(reference=np.array([0.0]), current=np.array([math.inf]))
@example(reference=np.array([1e308, -7.976931348623158e307]), current=np.array([0.0]))
@example(reference=np.array([0.0]), current=np.array([7.976931348623158e307, 1e308]))
def test_numeric_drift_of_any_window_is_sane_and_row_order_free(reference: np.ndarray, current: np.ndarray) -> None:
    note(f"reference={reference.tolist()} current={current.tolist()}")
    result = _numeric(reference, current)
    _sane(result)
    assert result.null_rate_current == np.count_nonzero(~np.isfinite(current)) / current.size  # ±inf is missing
    assert _numeric(reference[::-1], current[::-1]).to_dict() == result.to_dict()


@PROPERTY
@given(category_counts(), st.integers(0, 100))
@example(counts={"a": 1, "b": 10000}, nulls=0)
def test_a_window_identical_to_its_categorical_reference_does_not_drift(counts: dict[str, int], nulls: int) -> None:
    note(f"counts={counts} nulls={nulls}")
    total = sum(counts.values())
    result = categorical_drift(
        "c",
        reference_freq={k: v / total for k, v in counts.items()},
        reference_null_rate=nulls / (total + nulls),
        current_counts=counts,
        current_nulls=nulls,
        thresholds=THRESHOLDS,
    )
    _sane(result)
    assert result.psi <= 1e-9 and result.test_statistic == pytest.approx(0.0, abs=1e-6)
    assert result.p_value == pytest.approx(1.0, abs=1e-6) and not result.drifted


def test_empty_windows_are_a_value_error_naming_the_feature_in_core() -> None:
    with pytest.raises(ValueError, match="no current values for feature 'x'"):
        _numeric(np.array([1.0, 2.0]), np.array([]))
    with pytest.raises(ValueError, match="no current values for feature 'c'"):
        categorical_drift(
            "c", reference_freq={"a": 1.0}, reference_null_rate=0.0, current_counts={}, current_nulls=0,
            thresholds=THRESHOLDS,
        )  # fmt: skip


# --------------------------------------------------------------- through the monitor: compute_drift

NUMERIC_COLUMNS = arrays(min_size=1, max_size=60)
CATEGORY_CELLS = st.none() | CATEGORIES | st.text(max_size=2)


@st.composite
def frames(draw: st.DrawFn, rows: int | None = None) -> pd.DataFrame:
    n = rows if rows is not None else draw(st.integers(1, 40))
    data: dict[str, object] = {
        "x": np.array(draw(st.lists(CELLS, min_size=n, max_size=n)), dtype=np.float64),
        "c": draw(st.lists(CATEGORY_CELLS, min_size=n, max_size=n)),
        "one": draw(st.lists(st.none() | st.just("only"), min_size=n, max_size=n)),  # a single category
        "big": np.array(draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n)), dtype=np.int64),
        "nulls": [None] * n,  # an all-null column
    }
    return pd.DataFrame(data)


def _frame(x: list[float]) -> pd.DataFrame:
    """A frame like ``frames()`` draws, with ``x`` as its float column and the other columns plain."""
    n = len(x)
    data = {"x": x, "c": ["a"] * n, "one": ["only"] * n, "big": [0] * n, "nulls": [None] * n}
    return pd.DataFrame(data).astype({"x": "float64", "big": "int64"})


def _rows(result: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {str(row["feature"]): row for row in _records(result)}


def _records(result: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(key): value for key, value in row.items()} for row in result.to_dict(orient="records")]


def _frame_sane(result: pd.DataFrame) -> None:
    for row in _records(result):
        assert math.isfinite(row["psi"]) and row["psi"] >= 0, row
        assert 0 <= row["js_distance"] <= 1 + 1e-12, row
        if not math.isnan(row["p_value"]):
            assert 0 <= row["p_value"] <= 1 and row["test_statistic"] >= 0, row
        if row["kind"] == "numeric":
            assert math.isnan(row["wasserstein"]) == math.isnan(row["p_value"]), row
            assert math.isnan(row["test_statistic"]) or row["test_statistic"] <= 1, row


@MONITOR
@given(frames())
@example(frame=_frame([0.0, 7.976931348623158e307, 1e308]))
def test_compute_drift_of_a_frame_against_itself_finds_nothing(frame: pd.DataFrame) -> None:
    note(f"frame={frame.to_dict(orient='list')}")
    result = compute_drift(frame, frame)
    _frame_sane(result)
    assert not result["drifted"].any()
    for name, row in _rows(result).items():
        assert row["psi"] <= TINY and row["js_distance"] <= 1e-6, (name, row)
        if not math.isnan(row["p_value"]):
            assert row["test_statistic"] == pytest.approx(0.0, abs=1e-9), (name, row)
            assert row["p_value"] == pytest.approx(1.0, abs=1e-9), (name, row)
        if row["kind"] == "numeric" and not math.isnan(row["wasserstein"]):
            assert row["wasserstein"] == 0.0, (name, row)


@MONITOR
@given(frames(), frames(), st.data())
def test_compute_drift_is_sane_symmetric_where_it_should_be_and_row_order_free(
    reference: pd.DataFrame, current: pd.DataFrame, data: st.DataObject
) -> None:
    note(f"reference={reference.to_dict(orient='list')} current={current.to_dict(orient='list')}")
    result = compute_drift(reference, current)
    _frame_sane(result)
    rows = _rows(result)
    # Every reference value is in its KS sample here (under SAMPLE_SIZE rows), so KS and Wasserstein are the
    # two samples' own, symmetric statistics; PSI, chi² and JS use the reference's cells and are not.
    swapped = _rows(compute_drift(current, reference))
    for name, row in rows.items():
        if row["kind"] == "numeric":
            for key in ("test_statistic", "p_value", "wasserstein"):
                assert swapped[name][key] == pytest.approx(row[key], rel=1e-9, abs=1e-12, nan_ok=True), (name, key)
    ref_order = data.draw(st.permutations(range(len(reference))), label="reference order")
    cur_order = data.draw(st.permutations(range(len(current))), label="current order")
    shuffled = compute_drift(reference.iloc[list(ref_order)], current.iloc[list(cur_order)])
    pd.testing.assert_frame_equal(shuffled, result)


@PROPERTY
@given(arrays(st.floats(-1e6, 1e6), 10, 60), st.integers(10, 60), st.floats(1, 1e300))
def test_a_numeric_window_moved_past_the_reference_drifts(reference: np.ndarray, n: int, gap: float) -> None:
    note(f"reference={reference.tolist()} n={n} gap={gap}")
    current = np.linspace(0, 1, n) + reference.max() + gap  # every value above every reference value
    result = compute_drift(pd.DataFrame({"x": reference}), pd.DataFrame({"x": current}))
    _frame_sane(result)
    (row,) = _records(result)
    assert row["drifted"] and row["test_statistic"] == 1.0, row


@PROPERTY
@given(category_counts(), st.integers(0, 5), st.booleans())
@example(counts={"a": 1}, extra=0, unseen=True)
@example(counts={"a": 99, "b": 1}, extra=0, unseen=False)
def test_a_categorical_window_moved_to_a_new_or_rare_category_drifts(
    counts: dict[str, int], extra: int, unseen: bool
) -> None:
    """The whole window in a category the reference never saw, or in one it gave at most half its rows."""
    note(f"counts={counts} extra={extra} unseen={unseen}")
    reference = pd.DataFrame({"c": [k for k, v in counts.items() for _ in range(min(v, 50))]})
    shares = reference["c"].value_counts(normalize=True)
    if unseen:
        target = "zz"
    else:
        assume(bool((shares <= 0.5).any()))
        target = str(shares[shares <= 0.5].index[0])
    n = 10 * len(counts) + 40 + extra  # enough rows that the reference's commonest category expects 5 of them
    result = compute_drift(reference, pd.DataFrame({"c": [target] * n}))
    _frame_sane(result)
    (row,) = _records(result)
    assert row["drifted"], row


def test_empty_sides_are_a_monitor_error_not_a_numpy_traceback() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "b"]})
    with pytest.raises(MonitorError, match="window has no rows"):
        compute_drift(frame, frame.iloc[:0])
    with pytest.raises(MonitorError, match="reference frame has no rows"):
        compute_drift(frame.iloc[:0], frame)
    with pytest.raises(ProfileError, match="empty frame"):
        build_profile(frame.iloc[:0], ["x"], ["c"])
    with pytest.raises(MonitorError, match="window has no rows"):
        drift_report(build_profile(frame, ["x"], ["c"]), frame.iloc[:0], THRESHOLDS)


# ----------------------------------------------------------------- through the profile: drift_report


@MONITOR
@given(frames())
@example(frame=_frame([7.976931348623158e307, 1e308]))
@example(frame=_frame([0.0, 2.6815615859885194e154]))
def test_the_profile_of_any_frame_is_finite_and_the_frame_does_not_drift_from_it(frame: pd.DataFrame) -> None:
    note(f"frame={frame.to_dict(orient='list')}")
    profile = build_profile(frame, ["x", "big"], ["c", "one", "nulls"])
    for name in ("x", "big"):
        column = profile.columns[name]
        assert isinstance(column, NumericProfile)
        for value in (column.mean, column.std, column.min, column.max, *column.edges, *column.sample):
            assert value is None or math.isfinite(value), (name, column)
    assert type(profile).from_json(profile.to_json()) == profile
    report = drift_report(profile, frame, THRESHOLDS)
    assert not report.dataset_drift and report.n_drifted == 0
    for feature in report.features:
        _sane(feature)

"""Mergeable window profiles: merged halves are the whole, and their drift is drift_report's on the rows."""

from __future__ import annotations

import json
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from mloop.core.drift import DriftThresholds, FeatureDrift, categorical_drift, numeric_drift
from mloop.core.window_profile import (
    EXACT_MAX,
    CategoricalWindow,
    NumericLayout,
    NumericWindow,
    WindowProfile,
    categorical_window,
    categorical_window_drift,
    merge,
    merge_all,
    numeric_window,
    numeric_window_drift,
)
from mloop.data.profile import Profile, build_profile, infer_kinds, numeric_summary
from mloop.monitor.drift import DriftReport, drift_report
from mloop.monitor.profiles import window_drift_report, window_profile

THRESHOLDS = DriftThresholds()
TARGET = "Sale_Price"


@pytest.fixture(scope="module")
def reference(ames: pd.DataFrame) -> pd.DataFrame:
    return ames[ames["Year_Sold"] <= 2007].drop(columns=[TARGET]).reset_index(drop=True)


@pytest.fixture(scope="module")
def profile(ames: pd.DataFrame) -> Profile:
    early = ames[ames["Year_Sold"] <= 2007].reset_index(drop=True)
    numeric, categorical = infer_kinds(early.drop(columns=[TARGET]))
    return build_profile(early, numeric, categorical, prediction=early[TARGET].to_numpy())


@pytest.fixture(scope="module")
def later(ames: pd.DataFrame) -> pd.DataFrame:
    """The later sales with a drift in two features, missing and infinite values, and an unseen category."""
    frame = ames[ames["Year_Sold"] >= 2008].reset_index(drop=True)
    frame["Gr_Liv_Area"] = frame["Gr_Liv_Area"] * 1.4
    frame["Lot_Frontage"] = frame["Lot_Frontage"].astype("float64").where(frame.index % 9 != 0, np.nan)
    frame.loc[::50, "Lot_Frontage"] = np.inf
    frame.loc[frame.index % 13 == 0, "Neighborhood"] = "Atlantis"
    frame.loc[frame.index % 17 == 0, "MS_Zoning"] = None
    return frame


def _same(a: FeatureDrift, b: FeatureDrift, skip: tuple[str, ...] = ()) -> None:
    """Every field equal: numbers to 1e-9 (relative), everything else exactly."""
    for f in fields(FeatureDrift):
        if f.name in skip:
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, float) and isinstance(y, float):
            assert x == pytest.approx(y, rel=1e-9, abs=1e-12, nan_ok=True), (a.feature, f.name, x, y)
        else:
            assert x == y, (a.feature, f.name, x, y)


def _same_report(a: DriftReport, b: DriftReport, skip: tuple[str, ...] = ()) -> None:
    assert [f.feature for f in a.features] == [f.feature for f in b.features]
    for x, y in zip(a.features, b.features, strict=True):
        _same(x, y, skip)
    assert (a.prediction is None) == (b.prediction is None)
    if a.prediction is not None and b.prediction is not None:
        _same(a.prediction, b.prediction, skip)
    assert (a.n_rows, a.n_drifted, a.dataset_drift, a.drifted_features) == (
        b.n_rows,
        b.n_drifted,
        b.dataset_drift,
        b.drifted_features,
    )


def _parts(frame: pd.DataFrame, cuts: list[int]) -> list[pd.DataFrame]:
    bounds = [0, *cuts, len(frame)]
    return [frame.iloc[lo:hi] for lo, hi in zip(bounds, bounds[1:], strict=False)]


def test_the_merged_profile_of_parts_gives_drift_reports_statistics_and_decisions(
    profile: Profile, later: pd.DataFrame
) -> None:
    whole = drift_report(profile, later, THRESHOLDS, predictions=later[TARGET].to_numpy())
    assert whole.n_drifted >= 2  # the drift is there to be found: the decisions are not all "no"
    parts = [
        window_profile(profile, part, part[TARGET].to_numpy()) for part in _parts(later, [1, 500, 1100])
    ]  # one part of a single row
    merged = merge_all(parts)
    assert merged.n_rows == len(later)
    assert all(isinstance(c, NumericWindow) and c.exact for c in merged.columns.values() if c.kind == "numeric")
    report = window_drift_report(profile, merged, THRESHOLDS)
    _same_report(report, whole)
    # bit for bit, in fact: the same arrays reach the same functions
    assert [f.to_dict() for f in report.features] == [f.to_dict() for f in whole.features]


def test_past_the_exact_cap_every_statistic_but_wasserstein_is_still_exact(
    profile: Profile, later: pd.DataFrame
) -> None:
    whole = drift_report(profile, later, THRESHOLDS, predictions=later[TARGET].to_numpy())
    parts = [window_profile(profile, part, part[TARGET].to_numpy(), exact_max=40) for part in _parts(later, [700])]
    merged = merge(*parts, exact_max=40)
    report = window_drift_report(profile, merged, THRESHOLDS)
    _same_report(report, whole, skip=("wasserstein",))  # PSI, KS (statistic and p-value), JS, chi², decisions
    for got, want in zip(report.features, whole.features, strict=True):
        column = merged.columns[got.feature]
        if isinstance(column, NumericWindow) and want.wasserstein is not None:
            assert got.wasserstein is not None
            finite = pd.to_numeric(later[got.feature], errors="coerce").to_numpy(dtype=float)
            finite = finite[np.isfinite(finite)]
            bound = column.rank_error * float(finite.max() - finite.min())
            assert abs(got.wasserstein - want.wasserstein) <= bound + 1e-9 * abs(want.wasserstein), got.feature


def test_halves_merge_into_the_profile_of_the_whole(profile: Profile, later: pd.DataFrame) -> None:
    whole = window_profile(profile, later, later[TARGET].to_numpy())
    halves = [window_profile(profile, part, part[TARGET].to_numpy()) for part in _parts(later, [800])]
    assert merge(*halves).to_dict() == whole.to_dict()
    assert merge(halves[1], halves[0]).to_dict() == whole.to_dict()  # commutative


def test_exact_parts_merge_associatively_and_sketched_counts_add_exactly(profile: Profile, later: pd.DataFrame) -> None:
    a, b, c = (window_profile(profile, p, p[TARGET].to_numpy()) for p in _parts(later, [300, 900]))
    left, right = merge(merge(a, b), c), merge(a, merge(b, c))
    assert left.to_dict() == right.to_dict() == merge(merge(c, a), b).to_dict()
    small = [window_profile(profile, p, p[TARGET].to_numpy(), exact_max=100) for p in _parts(later, [300, 900])]
    one, two = (
        merge(merge(small[0], small[1], exact_max=100), small[2], exact_max=100),
        merge(small[0], merge(small[1], small[2], exact_max=100), exact_max=100),
    )
    for name, column in one.columns.items():
        other = two.columns[name]
        assert (column.n, column.nulls) == (other.n, other.nulls)
        if isinstance(column, NumericWindow) and isinstance(other, NumericWindow):
            assert np.array_equal(column.cells, other.cells) and column.layout == other.layout
            assert column.exact == other.exact == (column.count <= 100)


def test_a_large_sample_is_sketched_within_the_stated_error() -> None:
    rng = np.random.default_rng(3)
    reference = rng.lognormal(3.0, 0.5, size=50_000)
    summary = numeric_summary(reference)
    layout = NumericLayout.of(summary.edges, summary.sample)
    current = rng.lognormal(3.1, 0.55, size=200_000)
    current[::97] = np.nan
    kwargs = {
        "edges": summary.edges,
        "reference_counts": summary.counts,
        "reference_null_rate": 0.0,
        "reference_sample": summary.sample,
        "thresholds": THRESHOLDS,
    }
    want = numeric_drift("x", current=current, **kwargs)
    window = merge_all(
        WindowProfile(len(chunk), {"x": numeric_window(chunk, layout)}) for chunk in np.array_split(current, 4)
    ).columns["x"]
    assert isinstance(window, NumericWindow) and not window.exact and window.count > EXACT_MAX
    assert 0 < window.rank_error < 0.02  # KLL k=200: 1.65% double-sided, at 99% confidence
    got = numeric_window_drift("x", window, **kwargs)
    _same(got, want, skip=("wasserstein",))  # the KS statistic and p-value exact, not merely within the error
    finite = current[np.isfinite(current)]
    assert got.wasserstein is not None and want.wasserstein is not None
    assert abs(got.wasserstein - want.wasserstein) <= window.rank_error * float(finite.max() - finite.min())
    items, weights = window.quantile_items()  # the sketch's CDF is within its rank error everywhere
    cdf = np.cumsum(weights) / weights.sum()
    true_cdf = np.searchsorted(np.sort(finite), items, side="right") / finite.size
    assert weights.sum() == finite.size and np.max(np.abs(cdf - true_cdf)) <= window.rank_error


def test_the_dict_form_round_trips_through_json(profile: Profile, later: pd.DataFrame) -> None:
    for exact_max in (EXACT_MAX, 30):
        built = window_profile(profile, later, later[TARGET].to_numpy(), exact_max=exact_max)
        text = json.dumps(built.to_dict(), allow_nan=False)
        back = WindowProfile.from_dict(json.loads(text))
        assert json.dumps(back.to_dict(), allow_nan=False) == text
        _same_report(window_drift_report(profile, back, THRESHOLDS), window_drift_report(profile, built, THRESHOLDS))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format_version=99), "format_version 99"),
        (lambda d: d.update(format="other"), "not a window profile"),
        (lambda d: d.update(n_rows=-1), "n_rows"),
        (lambda d: d["columns"]["Gr_Liv_Area"].update(nulls=10**9), "columns.Gr_Liv_Area.nulls"),
        (lambda d: d["columns"]["Gr_Liv_Area"]["cells"]["count"].append(1), "columns.Gr_Liv_Area.cells"),
        (lambda d: d["columns"]["Gr_Liv_Area"].update(values=[3.0, 1.0]), "columns.Gr_Liv_Area.values"),
        (lambda d: d["columns"]["Gr_Liv_Area"].update(sketch="AAAA"), "exactly one of values and sketch"),
        (lambda d: d["columns"]["Neighborhood"]["counts"].update(Atlantis=-2), "columns.Neighborhood.counts"),
        (lambda d: d["columns"]["Neighborhood"].update(kind="text"), "columns.Neighborhood.kind"),
    ],
)
def test_a_damaged_dict_is_refused_naming_the_field(
    profile: Profile, later: pd.DataFrame, change: object, message: str
) -> None:
    data = window_profile(profile, later.head(50), later[TARGET].head(50).to_numpy()).to_dict()
    change(data)  # type: ignore[operator]
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        WindowProfile.from_dict(data)


def test_a_damaged_sketch_is_refused() -> None:
    layout = NumericLayout.of([0.0, 1.0, 2.0], [0.5, 1.5])
    data = WindowProfile(5000, {"x": numeric_window(np.linspace(0, 2, 5000), layout)}).to_dict()
    data["columns"]["x"]["sketch"] = data["columns"]["x"]["sketch"][:12]
    with pytest.raises(ValueError, match="columns.x.sketch: not a KLL sketch"):
        WindowProfile.from_dict(data)


def test_missing_infinite_empty_and_single_category_columns() -> None:
    layout = NumericLayout.of([0.0, 1.0, 2.0, 3.0], [0.5, 1.0, 1.5, 2.5])
    kwargs = {
        "edges": [0.0, 1.0, 2.0, 3.0],
        "reference_counts": [2, 1, 1],
        "reference_null_rate": 0.1,
        "reference_sample": [0.5, 1.0, 1.5, 2.5],
        "thresholds": THRESHOLDS,
    }
    values = np.array([np.nan, np.inf, -np.inf, 1.0, 1.0, 7.0, -3.0])
    window = numeric_window(values, layout)
    assert (window.n, window.nulls, window.count) == (7, 3, 4)
    _same(numeric_window_drift("x", window, **kwargs), numeric_drift("x", current=values, **kwargs))
    nothing = numeric_window(np.array([np.nan, np.inf]), layout)  # no finite value: no KS, no Wasserstein
    got = numeric_window_drift("x", nothing, **kwargs)
    _same(got, numeric_drift("x", current=np.array([np.nan, np.inf]), **kwargs))
    assert got.p_value is None and got.wasserstein is None
    empty = numeric_window(np.array([]), layout)
    assert (empty.n, empty.count) == (0, 0) and empty.exact
    one = WindowProfile(7, {"x": window})
    assert merge(one, WindowProfile(0, {"x": empty})).to_dict() == one.to_dict()  # an empty profile merges as nothing
    with pytest.raises(ValueError, match="no current values"):
        numeric_window_drift("x", empty, **kwargs)

    constant = NumericLayout.of([4.0], [4.0, 4.0])  # a column the reference holds constant
    window = numeric_window(np.array([4.0, 4.0, 5.0]), constant)
    constant_kwargs = {**kwargs, "edges": [4.0], "reference_counts": [2], "reference_sample": [4.0, 4.0]}
    _same(
        numeric_window_drift("c", window, **constant_kwargs),
        numeric_drift("c", current=np.array([4.0, 4.0, 5.0]), **constant_kwargs),
    )

    single = {"only": 1.0}
    counts = categorical_window({"only": 3, "new": 2}, nulls=1)
    assert (counts.n, counts.nulls, dict(counts.counts)) == (6, 1, {"only": 3, "new": 2})
    _same(
        categorical_window_drift("k", counts, reference_freq=single, reference_null_rate=0.0, thresholds=THRESHOLDS),
        categorical_drift(
            "k",
            reference_freq=single,
            reference_null_rate=0.0,
            current_counts={"only": 3, "new": 2},
            current_nulls=1,
            thresholds=THRESHOLDS,
        ),
    )
    merged = merge(WindowProfile(6, {"k": counts}), WindowProfile(2, {"k": categorical_window({"new": 2}, 0)}))
    column = merged.columns["k"]
    assert isinstance(column, CategoricalWindow) and dict(column.counts) == {"new": 4, "only": 3}


def test_profiles_of_different_structures_do_not_merge() -> None:
    a = NumericLayout.of([0.0, 1.0, 2.0], [0.5])
    b = NumericLayout.of([0.0, 1.5, 2.0], [0.5])
    one = WindowProfile(1, {"x": numeric_window(np.array([1.0]), a)})
    with pytest.raises(ValueError, match="column 'x': numeric layouts differ"):
        merge(one, WindowProfile(1, {"x": numeric_window(np.array([1.0]), b)}))
    with pytest.raises(ValueError, match="column 'x' is numeric in one profile and categorical"):
        merge(one, WindowProfile(1, {"x": categorical_window({"1": 1}, 0)}))
    with pytest.raises(ValueError, match="different column sets"):
        merge(one, WindowProfile(1, {"y": numeric_window(np.array([1.0]), a)}))
    with pytest.raises(ValueError, match="another reference"):
        numeric_window_drift(
            "x",
            one.columns["x"],  # type: ignore[arg-type]
            edges=[0.0, 1.5, 2.0],
            reference_counts=[1, 1],
            reference_null_rate=0.0,
            reference_sample=[0.5],
            thresholds=THRESHOLDS,
        )
    with pytest.raises(ValueError, match="at least one"):
        merge_all([])


def test_the_layout_cells_count_each_boundary_and_each_gap() -> None:
    layout = NumericLayout.of([0.0, 1.0, 3.0, 9.0], [2.0, 2.0, 5.0, np.nan])
    assert layout.boundaries.tolist() == [1.0, 2.0, 3.0, 5.0]
    values = np.sort(np.array([-1.0, 1.0, 1.5, 2.0, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0]))
    assert layout.cells(values).tolist() == [1, 1, 1, 2, 1, 1, 1, 1, 2]
    reps = layout.representatives()
    assert np.array_equal(layout.cells(np.repeat(reps, layout.cells(values))), layout.cells(values))
    assert layout.key == NumericLayout.of([0.0, 1.0, 3.0, 9.0], [5.0, 2.0]).key != NumericLayout.of([0, 1], [2]).key


EXTREMES = (np.nan, np.inf, -np.inf, 1e308, -1e308, 1.7976931348623157e308, -1.7976931348623157e308, 5e-324, 0.0, 1.0)
VALUES = st.lists(st.one_of(st.floats(-10, 10), st.floats(), st.sampled_from(EXTREMES)), max_size=30)


@settings(max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES.filter(lambda v: any(np.isfinite(v))), VALUES, st.integers(0, 30), st.sampled_from([0, 3, EXACT_MAX]))
def test_any_split_of_any_values_merges_into_the_drift_of_the_whole(
    reference: list[float], current: list[float], cut: int, exact_max: int
) -> None:
    """Huge, subnormal, repeated, missing and infinite values, exact or sketched: only Wasserstein may differ."""
    ref = np.array(reference, dtype=np.float64)
    cur = np.array(current + [1.0], dtype=np.float64)  # at least one row
    note(f"ref={ref.tolist()} cur={cur.tolist()} cut={cut} exact_max={exact_max}")
    summary = numeric_summary(ref[np.isfinite(ref)])
    layout = NumericLayout.of(summary.edges, summary.sample)
    kwargs = {
        "edges": summary.edges,
        "reference_counts": summary.counts,
        "reference_null_rate": float(np.mean(~np.isfinite(ref))),
        "reference_sample": summary.sample,
        "thresholds": THRESHOLDS,
    }
    cut = min(cut, cur.size)
    parts = [
        WindowProfile(p.size, {"x": numeric_window(p, layout, exact_max=exact_max)}) for p in (cur[:cut], cur[cut:])
    ]
    window = merge(*parts, exact_max=exact_max).columns["x"]
    assert isinstance(window, NumericWindow)
    got, want = numeric_window_drift("x", window, **kwargs), numeric_drift("x", current=cur, **kwargs)
    _same(got, want, skip=() if window.exact else ("wasserstein",))
    assert (got.wasserstein is None) == (want.wasserstein is None)

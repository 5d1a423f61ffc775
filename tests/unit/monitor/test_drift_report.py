from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mloop.core.drift import DriftThresholds, FeatureDrift
from mloop.data.profile import PREDICTION, Profile, build_profile, category_counts, infer_kinds
from mloop.errors import MonitorError
from mloop.monitor.drift import FRAME_COLUMNS, compute_drift, count_categories, drift_report, numeric_array

REPO = Path(__file__).resolve().parents[3]
AMES_CANDIDATES = [
    *sorted((REPO / "src" / "mloop").glob("**/ames.csv.gz")),
    REPO.parent / "shared" / "data" / "ames.csv.gz",
]
THRESHOLDS = DriftThresholds()


@pytest.fixture(scope="module")
def ames_reference() -> pd.DataFrame:
    path = next((p for p in AMES_CANDIDATES if p.is_file()), None)
    if path is None:
        pytest.skip("Ames data not found")
    data = pd.read_csv(path)
    return data[data["Year_Sold"] <= 2007].reset_index(drop=True)


@pytest.fixture(scope="module")
def ames_profile(ames_reference: pd.DataFrame) -> Profile:
    numeric, categorical = infer_kinds(ames_reference.drop(columns=["Sale_Price"]))
    return build_profile(ames_reference, numeric, categorical, prediction=ames_reference["Sale_Price"].to_numpy())


def _feature(report_features: list[FeatureDrift], name: str) -> FeatureDrift:
    return next(f for f in report_features if f.feature == name)


def test_random_half_of_the_reference_does_not_drift(ames_reference: pd.DataFrame, ames_profile: Profile) -> None:
    half = ames_reference.sample(frac=0.5, random_state=0)
    report = drift_report(ames_profile, half, THRESHOLDS, predictions=half["Sale_Price"].to_numpy())
    assert report.n_rows == len(half)
    assert not _feature(report.features, "Gr_Liv_Area").drifted
    assert not _feature(report.features, "Neighborhood").drifted
    assert report.n_drifted == 0 and not report.dataset_drift
    assert report.prediction is not None and not report.prediction.drifted
    assert len(report.features) == len(ames_profile.columns)


def test_shifted_living_area_drifts(ames_reference: pd.DataFrame, ames_profile: Profile) -> None:
    shifted = ames_reference.assign(Gr_Liv_Area=ames_reference["Gr_Liv_Area"] * 1.5)
    report = drift_report(ames_profile, shifted, THRESHOLDS)
    area = _feature(report.features, "Gr_Liv_Area")
    assert area.drifted and area.psi > 0.2 and area.p_value is not None and area.p_value < 0.01
    assert report.drifted_features == ["Gr_Liv_Area"]
    assert report.dataset_drift
    assert report.prediction is None  # no predictions passed


def test_shifted_neighbourhood_mix_drifts(ames_reference: pd.DataFrame, ames_profile: Profile) -> None:
    window = ames_reference.sample(n=400, random_state=1)
    window.loc[window.index[:200], "Neighborhood"] = "Stone_Brook"  # a rare neighbourhood floods in
    report = drift_report(ames_profile, window, THRESHOLDS)
    assert report.drifted_features == ["Neighborhood"]


def test_min_drifted_features_sets_dataset_drift(ames_reference: pd.DataFrame, ames_profile: Profile) -> None:
    shifted = ames_reference.assign(Gr_Liv_Area=ames_reference["Gr_Liv_Area"] * 1.5)
    report = drift_report(ames_profile, shifted, THRESHOLDS, min_drifted_features=2)
    assert report.n_drifted == 1 and not report.dataset_drift


def test_missing_profile_columns_raise_naming_them(ames_reference: pd.DataFrame, ames_profile: Profile) -> None:
    window = ames_reference.drop(columns=["Gr_Liv_Area", "Neighborhood"])
    with pytest.raises(MonitorError, match="Gr_Liv_Area, Neighborhood"):
        drift_report(ames_profile, window, THRESHOLDS)


def test_extra_window_columns_are_ignored(ames_reference: pd.DataFrame, ames_profile: Profile) -> None:
    window = ames_reference.assign(request_id="r", latency_ms=1.0)
    report = drift_report(ames_profile, window, THRESHOLDS)
    assert {f.feature for f in report.features} == set(ames_profile.columns)


def test_empty_window_and_wrong_prediction_count_raise(ames_reference: pd.DataFrame, ames_profile: Profile) -> None:
    with pytest.raises(MonitorError, match="no rows"):
        drift_report(ames_profile, ames_reference.head(0), THRESHOLDS)
    with pytest.raises(MonitorError, match="3 predictions for a window of 10 rows"):
        drift_report(ames_profile, ames_reference.head(10), THRESHOLDS, predictions=np.zeros(3))


def test_window_read_back_as_text_is_compared_by_value() -> None:
    # A prediction log may hand numbers back as strings and codes back as floats.
    reference = pd.DataFrame({"x": np.arange(1000.0), "code": np.tile([20, 30, 60, 90], 250)})
    profile = build_profile(reference, ["x"], ["code"])
    window = pd.DataFrame(
        {"x": reference["x"].astype(str), "code": reference["code"].astype(float).where(reference.index > 0)}
    )
    report = drift_report(profile, window, THRESHOLDS)
    assert report.n_drifted == 0
    assert _feature(report.features, "code").unseen_categories == 0


def test_report_serialises(ames_reference: pd.DataFrame, ames_profile: Profile) -> None:
    window = ames_reference.sample(n=200, random_state=2)
    window.loc[window.index[:50], "Lot_Frontage"] = np.nan
    report = drift_report(ames_profile, window, THRESHOLDS, predictions=window["Sale_Price"].to_numpy())
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["n_rows"] == 200 and data["prediction"]["feature"] == PREDICTION
    assert data["n_drifted"] == len(data["drifted_features"]) == report.n_drifted
    assert "Lot_Frontage" in data["drifted_features"]  # a quarter of the values went missing

    frame = report.to_frame()
    assert list(frame.columns) == FRAME_COLUMNS
    assert len(frame) == len(ames_profile.columns)
    assert frame["drifted"].sum() == report.n_drifted
    assert frame["p_value"].dtype == np.float64
    assert report.to_frame(include_prediction=True)["feature"].iloc[-1] == PREDICTION


# --- compute_drift ---------------------------------------------------------------------------------------


def test_compute_drift_infers_kinds_and_flags_the_shift(ames_reference: pd.DataFrame) -> None:
    current = ames_reference.assign(Gr_Liv_Area=ames_reference["Gr_Liv_Area"] * 1.5)
    frame = compute_drift(ames_reference, current)
    kinds = dict(zip(frame["feature"], frame["kind"], strict=True))
    assert kinds["Gr_Liv_Area"] == "numeric" and kinds["Neighborhood"] == "categorical"
    assert frame.loc[frame["drifted"], "feature"].tolist() == ["Gr_Liv_Area"]


def test_compute_drift_on_selected_columns_and_thresholds() -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {
            "a": rng.normal(size=2000),
            "s": rng.choice(["u", "v"], size=2000),
            "b": rng.random(2000) < 0.5,
            "when": pd.date_range("2020-01-01", periods=2000, freq="h"),
        }
    )
    current = reference.assign(a=reference["a"] + 0.3)
    frame = compute_drift(reference, current, columns=["a", "b"])
    assert frame["feature"].tolist() == ["a", "b"]
    assert frame.set_index("feature")["kind"].to_dict() == {"a": "numeric", "b": "categorical"}
    assert frame.set_index("feature")["drifted"].to_dict() == {"a": True, "b": False}
    # Impossible-to-reach thresholds switch the decision off, calibrated or feature by feature.
    lax = compute_drift(reference, current, columns=["a"], effect_floor=100, ks_effect_floor=1)
    assert not lax["drifted"].any()
    lax = compute_drift(reference, current, columns=["a"], psi_threshold=100, ks_pvalue=1e-300, decision="per_feature")
    assert not lax["drifted"].any()
    # Datetimes are skipped by default and refused when asked for.
    assert "when" not in compute_drift(reference, reference)["feature"].tolist()
    with pytest.raises(MonitorError, match="when"):
        compute_drift(reference, current, columns=["when"])


def test_compute_drift_names_missing_columns() -> None:
    reference = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    with pytest.raises(MonitorError, match="lacks 1 column.*: b"):
        compute_drift(reference, reference[["a"]])
    with pytest.raises(MonitorError, match="no column.*zz"):
        compute_drift(reference, reference, columns=["zz"])


def _mixed_frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Every dtype compute_drift accepts, with NaNs, infinities, constants and near-empty columns."""
    return pd.DataFrame(
        {
            "f": rng.normal(size=n),
            "f_nan": np.where(rng.random(n) < 0.1, np.nan, rng.gamma(2.0, 3.0, n)),
            "f_inf": np.where(rng.random(n) < 0.01, np.inf, rng.normal(size=n)),
            "f32": rng.normal(size=n).astype("float32"),
            "i": rng.integers(0, 50, n),
            "i32": rng.integers(0, 5, n).astype("int32"),
            "nullable_int": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 9, n)), dtype="Int64"),
            "const": np.ones(n),
            "few": np.r_[rng.normal(size=10), np.full(n - 10, np.nan)],
            "cat": pd.Categorical(rng.choice(list("abcde"), n)),
            "cat_nulls": pd.Categorical(np.where(rng.random(n) < 0.2, None, rng.choice(list("xyz"), n))),
            "cat_int": pd.Categorical(rng.choice([20, 30, 60], n)),
            "cat_float": pd.Categorical(rng.choice([1.5, 2.0], n)),
            "obj": pd.Series(rng.choice(["u", "v", "w"], n), dtype=object),
            "obj_nulls": pd.Series(rng.choice(["u", "v", None], n), dtype=object),
            "string": pd.Series(rng.choice(["p", "q"], n), dtype="string"),
            "bool": rng.random(n) < 0.3,
            "boolean": pd.array(np.where(rng.random(n) < 0.1, None, rng.random(n) < 0.5), dtype="boolean"),
            "mixed": pd.Series([1, "1", 2.5, None] * (n // 4), dtype=object),
        }
    )


def test_compute_drift_equals_the_report_against_the_stored_profile() -> None:
    # compute_drift summarises the reference itself (one sort per column); it must be build_profile's summary.
    rng = np.random.default_rng(3)
    reference = _mixed_frame(rng, 6000)
    current = _mixed_frame(rng, 4000).assign(
        f=lambda d: d["f"] + 0.2, cat=pd.Categorical(rng.choice(list("abcdefg"), 4000))
    )
    numeric, categorical = infer_kinds(reference)
    assert len(numeric) + len(categorical) == reference.shape[1]
    stored = drift_report(build_profile(reference, numeric, categorical), current, THRESHOLDS).to_frame()
    pd.testing.assert_frame_equal(compute_drift(reference, current), stored)


def test_categories_are_counted_as_category_counts_counts_them() -> None:
    frame = _mixed_frame(np.random.default_rng(4), 2000)
    for name in ["cat", "cat_nulls", "cat_int", "cat_float", "obj", "obj_nulls", "string", "bool", "boolean", "mixed"]:
        assert count_categories(frame[name]) == category_counts(frame[name]), name
    # Labels that print alike are one category, as when the values are turned into strings.
    same = pd.Series(pd.Categorical([1, "1", "1", 2], categories=[1, "1", 2]))
    assert count_categories(same) == category_counts(same) == ({"1": 3, "2": 1}, 0)


def test_float_columns_are_read_in_place() -> None:
    column = pd.Series(np.arange(10.0))
    assert np.shares_memory(numeric_array(column), column.to_numpy())
    with_inf = pd.Series([1.0, np.inf, -np.inf, np.nan])
    assert np.isnan(numeric_array(with_inf)[1:]).all() and with_inf.iloc[1] == np.inf  # a copy, the input kept

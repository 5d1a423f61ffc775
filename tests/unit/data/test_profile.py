from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mloop.data.profile import (
    PREDICTION,
    CategoricalProfile,
    NumericProfile,
    Profile,
    build_profile,
    category_counts,
    infer_kinds,
    numeric_values,
)
from mloop.errors import ProfileError


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 5000
    x = rng.normal(loc=10.0, scale=2.0, size=n)
    x[:500] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "k": rng.integers(0, 4, size=n),
            "city": rng.choice(["paris", "oslo", "rome"], size=n, p=[0.5, 0.3, 0.2]),
            "flag": rng.random(n) < 0.25,
        }
    )


def _numeric(profile: Profile, name: str) -> NumericProfile:
    column = profile.columns[name]
    assert isinstance(column, NumericProfile)
    return column


def _categorical(profile: Profile, name: str) -> CategoricalProfile:
    column = profile.columns[name]
    assert isinstance(column, CategoricalProfile)
    return column


def test_numeric_column_profile(frame: pd.DataFrame) -> None:
    profile = build_profile(frame, ["x", "k"], ["city"])
    x = _numeric(profile, "x")
    values = frame["x"].dropna()
    assert x.count == 4500 and x.null_rate == 0.1
    assert x.edges == sorted(set(x.edges)) and len(x.edges) == 11
    assert x.edges[0] == values.min() and x.edges[-1] == values.max()
    assert sum(x.counts) == 4500 and len(x.counts) == 10
    assert x.mean == pytest.approx(values.mean()) and x.std == pytest.approx(values.std())
    assert len(x.sample) == 2000 and set(x.sample) <= set(values)
    # A column of four integers has at most four unique edges, so at most three bins.
    k = _numeric(profile, "k")
    assert k.edges == [0.0, 1.0, 2.0, 3.0] and sum(k.counts) == 5000


def test_sample_is_deterministic_and_seeded(frame: pd.DataFrame) -> None:
    first = _numeric(build_profile(frame, ["x"], []), "x").sample
    again = _numeric(build_profile(frame, ["x"], []), "x").sample
    other = _numeric(build_profile(frame, ["x"], [], seed=1), "x").sample
    assert first == again and first != other
    small = _numeric(build_profile(frame.iloc[450:550], ["x"], [], sample_size=2000), "x")
    assert len(small.sample) == small.count == 50


def test_categorical_column_profile(frame: pd.DataFrame) -> None:
    frame.loc[:99, "city"] = None
    city = _categorical(build_profile(frame, [], ["city", "flag"]), "city")
    assert city.null_rate == 100 / 5000 and city.count == 4900
    assert list(city.frequencies) == ["paris", "oslo", "rome"]  # most frequent first
    assert math.fsum(city.frequencies.values()) == pytest.approx(1.0)
    assert city.frequencies["paris"] == pytest.approx(0.5, abs=0.02)


def test_profile_json_round_trip_is_exact(frame: pd.DataFrame, tmp_path: Path) -> None:
    frame["x"] = frame["x"] / 3  # floats with long expansions
    profile = build_profile(frame, ["x", "k"], ["city", "flag"], prediction=frame["x"].fillna(0).to_numpy())
    text = profile.to_json()
    again = Profile.from_json(text)
    assert again == profile
    assert _numeric(again, "x").sample == _numeric(profile, "x").sample  # float equality, not approx
    assert again.to_json() == text
    assert json.loads(text)["columns"]["x"]["kind"] == "numeric"

    path = tmp_path / "profile.json"
    profile.save(path)
    assert Profile.load(path) == profile


def test_round_trip_keeps_awkward_floats_exact() -> None:
    values = [0.1 + 0.2, 1 / 3, 1e-300, 2.0**-1074, 123456789.12345679, -0.0]
    profile = build_profile(pd.DataFrame({"v": values}), ["v"], [], sample_size=100)
    sample = _numeric(Profile.from_json(profile.to_json()), "v").sample
    assert [v.hex() for v in sample] == [float(v).hex() for v in values]


def test_all_missing_numeric_column_still_round_trips() -> None:
    profile = build_profile(pd.DataFrame({"v": [math.nan, math.nan]}), ["v"], [])
    v = _numeric(profile, "v")
    assert v.null_rate == 1.0 and v.edges == [] and v.counts == [0] and v.mean is None
    assert Profile.from_json(profile.to_json()) == profile


def test_numeric_prediction_is_profiled_numeric(frame: pd.DataFrame) -> None:
    profile = build_profile(frame, ["x"], [], prediction=np.linspace(0, 1, len(frame)))
    assert isinstance(profile.prediction, NumericProfile)
    assert PREDICTION not in profile.columns


def test_label_predictions_are_profiled_categorical(frame: pd.DataFrame) -> None:
    labels = np.where(frame["flag"], "yes", "no")
    profile = build_profile(frame, ["x"], [], prediction=labels)
    assert isinstance(profile.prediction, CategoricalProfile)
    assert set(profile.prediction.frequencies) == {"yes", "no"}

    ints = build_profile(frame, [], ["city"], prediction=frame["k"].to_numpy(), prediction_kind="categorical")
    assert isinstance(ints.prediction, CategoricalProfile)
    assert set(ints.prediction.frequencies) == {"0", "1", "2", "3"}


def test_missing_columns_are_named(frame: pd.DataFrame) -> None:
    with pytest.raises(ProfileError, match="nope, gone"):
        build_profile(frame, ["x", "nope"], ["gone"])


def test_prediction_length_must_match(frame: pd.DataFrame) -> None:
    with pytest.raises(ProfileError, match="3 predictions for 5000 rows"):
        build_profile(frame, ["x"], [], prediction=np.zeros(3))


def test_load_reports_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="No reference profile"):
        Profile.load(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"n_rows": 1, "columns": {"a": {"kind": "numeric"}}}')
    with pytest.raises(ProfileError, match="Not a valid reference profile"):
        Profile.load(broken)


def test_counts_must_match_edges() -> None:
    with pytest.raises(ProfileError):
        Profile.from_json(
            '{"n_rows": 1, "columns": {"a": {"kind": "numeric", "count": 1, "null_rate": 0, '
            '"edges": [0, 1, 2], "counts": [1], "sample": [1]}}}'
        )


def test_category_labels_of_integral_floats_match_integers() -> None:
    assert category_counts(pd.Series([20, 30, 20])) == ({"20": 2, "30": 1}, 0)
    assert category_counts(pd.Series([20.0, None, 20.0])) == ({"20": 2}, 1)
    assert category_counts(pd.Series([True, False, None], dtype=object)) == ({"False": 1, "True": 1}, 1)


def test_text_columns_count_alike_whatever_their_dtype() -> None:
    # Object columns of text take a shortcut (no string copy); it must count as the general path does.
    values = ["b", None, "a", float("nan"), "b", "a", "c", pd.NA]
    expected = ({"a": 2, "b": 2, "c": 1}, 3)  # ties by label; None, NaN and NA all missing
    assert category_counts(pd.Series(values, dtype=object)) == expected
    assert category_counts(pd.Series(values, dtype="string")) == expected
    assert category_counts(pd.Series(values, dtype="category")) == expected
    # Mixed objects are labelled by their text, so 1 and "1" are one category.
    assert category_counts(pd.Series([1, "1", "x", None], dtype=object)) == ({"1": 2, "x": 1}, 1)


def test_infer_kinds_by_dtype() -> None:
    frame = pd.DataFrame(
        {
            "i": [1, 2],
            "f": [1.0, 2.0],
            "s": ["a", "b"],
            "b": [True, False],
            "c": pd.Categorical(["x", "y"]),
            "o": pd.Series(["a", 1], dtype=object),
            "t": pd.to_datetime(["2020-01-01", "2020-01-02"]),
        }
    )
    assert infer_kinds(frame) == (["i", "f"], ["s", "b", "c", "o"])


def test_numeric_values_treats_unparseable_and_infinite_as_missing() -> None:
    values = numeric_values(pd.Series(["1.5", "x", None, "inf"]))
    assert values[0] == 1.5 and np.isnan(values[1:]).all()

"""build_profile reads quantile edges, bin counts, min and max off one sort per column; the profile is the
one the straightforward computation (np.quantile, np.searchsorted, min/max on the unsorted values) gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mloop.data.profile import NumericProfile, build_profile, numeric_values


def straightforward(values: pd.Series, bins: int) -> tuple[list[float], list[int], float, float]:
    array = numeric_values(values)
    finite = array[~np.isnan(array)]
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)))
    inner = edges[1:-1]
    below = np.searchsorted(np.sort(finite), inner, side="left")
    counts = np.diff(np.concatenate(([0], below, [finite.size])))
    return [float(e) for e in edges], [int(c) for c in counts], float(finite.min()), float(finite.max())


@pytest.mark.parametrize("bins", [1, 3, 10, 37])
def test_numeric_profile_matches_the_straightforward_computation(bins: int) -> None:
    rng = np.random.default_rng(11)
    rows = 5003
    frame = pd.DataFrame(
        {
            "gamma": rng.gamma(2.0, 3.0, rows),
            "ties": rng.integers(0, 4, rows).astype(np.int64),  # few distinct values: merged edges
            "holes": np.where(rng.random(rows) < 0.2, np.nan, rng.normal(0, 1e6, rows)),
            "infinite": np.where(rng.random(rows) < 0.05, np.inf, rng.normal(size=rows)),
            "f32": rng.normal(5, 2, rows).astype(np.float32),
        }
    )
    profile = build_profile(frame, list(frame.columns), [], bins=bins)
    for name in frame.columns:
        column = profile.columns[name]
        assert isinstance(column, NumericProfile)
        edges, counts, low, high = straightforward(frame[name], bins)
        assert column.edges == edges, name
        assert column.counts == counts, name
        assert (column.min, column.max) == (low, high), name
        assert sum(column.counts) == column.count


def test_empty_and_constant_numeric_columns_keep_their_shape() -> None:
    frame = pd.DataFrame({"empty": [np.nan] * 4, "constant": [2.5] * 4})
    profile = build_profile(frame, ["empty", "constant"], [])
    empty, constant = profile.columns["empty"], profile.columns["constant"]
    assert isinstance(empty, NumericProfile) and isinstance(constant, NumericProfile)
    assert (empty.edges, empty.counts, empty.min, empty.null_rate) == ([], [0], None, 1.0)
    assert (constant.edges, constant.counts, constant.min, constant.max) == ([2.5], [4], 2.5, 2.5)

"""Distributions for the report, the published monitoring file, and the report's SVG charts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mloop.data.profile import build_profile
from mloop.monitor.drift import distribution
from mloop.monitor.report import bar_chart, distribution_chart, line_chart
from mloop.monitor.runner import published


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {"area": rng.normal(100, 10, 1000), "zone": rng.choice(["a", "b", "c"], 1000, p=[0.6, 0.3, 0.1])}
    )


def test_numeric_distribution_uses_the_reference_bins(frame: pd.DataFrame) -> None:
    profile = build_profile(frame, ["area"], ["zone"], bins=10)
    same = distribution("area", profile.columns["area"], frame["area"])
    assert len(same.cells) == len(same.reference) == len(same.current) == 10
    assert sum(same.reference) == pytest.approx(1) and same.current == pytest.approx(same.reference)
    shifted = distribution("area", profile.columns["area"], frame["area"] + 100)
    assert shifted.current[-1] == 1.0  # everything lands in the open-ended top bin


def test_categorical_distribution_keeps_top_categories_and_pools_the_rest(frame: pd.DataFrame) -> None:
    profile = build_profile(frame, [], ["zone"])
    current = pd.Series(["a"] * 5 + ["new"] * 5)
    dist = distribution("zone", profile.columns["zone"], current, top=2)
    assert dist.cells == ["a", "b", "other"]
    assert dist.current == [0.5, 0.0, 0.5]
    assert dist.reference[2] == pytest.approx(0.1, abs=0.03)


def test_published_results_carry_the_decay_as_a_quality_gauge() -> None:
    data = {"quality": {"rmse": 30.0}, "decay": 0.2}
    assert published(data)["quality"] == {"rmse": 30.0, "decay": 0.2}
    assert data["quality"] == {"rmse": 30.0}  # the history keeps the metrics only
    assert published({"quality": {}, "decay": None}) == {"quality": {}, "decay": None}


def test_charts_draw_data_and_say_so_when_there_is_none() -> None:
    svg = line_chart({"live rmse": [1.0, None, 3.0]}, ["1·0", "1·1", "1·2"], "rmse")
    assert svg.count("<circle") == 2 and "class='series'" in svg
    assert "no data yet" in line_chart({}, [], "rmse")
    bars = bar_chart({"a": 0.5, "b": 0.1}, 0.2, "psi")
    assert bars.count("class='bar'") == 2 and "#d62728" in bars  # the drifted one is red
    dist = distribution_chart({"feature": "a<b", "cells": ["x"], "reference": [1.0], "current": [1.0]})
    assert dist.count("class='bar'") == 2 and "a&lt;b" in dist
    assert "no data" in distribution_chart({"feature": "a", "cells": ["x"], "reference": [], "current": []})

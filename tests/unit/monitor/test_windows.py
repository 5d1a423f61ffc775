from __future__ import annotations

import pandas as pd
import pytest

from mloop.monitor.windows import split_windows


def test_windows_are_consecutive_and_cover_the_rows() -> None:
    rows = pd.DataFrame({"x": range(450)})
    windows = split_windows(rows, 200)
    assert [len(w) for w in windows] == [200, 200]  # the 50-row remainder is under half a window
    assert windows[1]["x"].iloc[0] == 200


def test_a_partial_window_of_at_least_half_is_kept() -> None:
    assert [len(w) for w in split_windows(pd.DataFrame({"x": range(520)}), 200)] == [200, 200, 120]


def test_a_single_short_window_is_still_returned() -> None:
    assert [len(w) for w in split_windows(pd.DataFrame({"x": range(30)}), 200)] == [30]


def test_window_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        split_windows(pd.DataFrame({"x": [1]}), 0)

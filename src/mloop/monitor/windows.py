"""Cut the prediction log into windows by count."""

from __future__ import annotations

import pandas as pd


def split_windows(rows: pd.DataFrame, size: int, min_rows: int | None = None) -> list[pd.DataFrame]:
    """Consecutive windows of ``size`` rows; a last partial window is kept if it has ``min_rows``."""
    if size < 1:
        raise ValueError("window size must be at least 1")
    floor = size // 2 if min_rows is None else min_rows
    windows = [rows.iloc[start : start + size] for start in range(0, len(rows), size)]
    return [w for w in windows if len(w) >= floor or len(windows) == 1]

"""Holdout splits: temporal when the data has a time column, random (stratified) otherwise."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from mloop.errors import TrainError


def holdout_split(
    frame: pd.DataFrame,
    test_fraction: float,
    time_column: str | None,
    seed: int,
    stratify: pd.Series | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and test parts; with a time column the test part is the most recent rows."""
    n_test = int(round(len(frame) * test_fraction))
    if n_test < 1 or len(frame) - n_test < 2:
        raise TrainError(
            f"{len(frame)} labelled rows are too few to hold out {test_fraction:.0%} for testing; "
            "add data or change split.test_fraction."
        )
    if time_column is not None:
        if time_column not in frame.columns:
            raise TrainError(f"time column {time_column!r} (data.time_column) is not in the data.")
        order = np.argsort(frame[time_column].to_numpy(), kind="stable")
        ordered = frame.iloc[order]
        return ordered.iloc[:-n_test], ordered.iloc[-n_test:]
    strat = stratify if stratify is not None and stratify.value_counts().min() >= 2 else None
    train, test = train_test_split(frame, test_size=n_test, random_state=seed, stratify=strat)
    return train, test

"""Holdout splits: temporal when the data has a time column, random (stratified) otherwise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from mloop.config import MloopConfig
from mloop.data.contract import Contract, coerce_frame
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


def labelled(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    if target not in frame.columns:
        raise TrainError(
            f"target column {target!r} (data.target) is not in the data; columns are: "
            f"{', '.join(map(str, frame.columns[:20]))}{'…' if frame.shape[1] > 20 else ''}"
        )
    rows = frame[frame[target].notna()]
    if rows.empty:
        raise TrainError(f"target column {target!r} has no values: nothing to learn from.")
    return rows


def _check_classes(y: pd.Series, target: str, config: MloopConfig) -> None:
    if config.task == "classification" and y.nunique() < 2:
        raise TrainError(f"target {target!r} has a single class; classification needs two or more.")
    if config.task == "regression" and y.nunique() < 2:
        raise TrainError(f"target {target!r} is constant; there is nothing to learn.")


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    test: pd.DataFrame
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


def prepare(frame: pd.DataFrame, contract: Contract, config: MloopConfig) -> Split:
    """The labelled rows split into a training part and a holdout, typed as the model reads them.

    The target is the contract's (``Project.contract`` has checked that ``data.target`` agrees).
    """
    rows = labelled(frame, contract.target)
    y_all = contract.target_values(rows, config.task)
    _check_classes(y_all, contract.target, config)
    time_col = config.data.time_column if config.split.strategy == "temporal" else None
    stratify = y_all if config.task == "classification" else None
    train, test = holdout_split(rows, config.split.test_fraction, time_col, config.split.seed, stratify)
    return Split(
        train,
        test,
        coerce_frame(train, contract),
        coerce_frame(test, contract),
        contract.target_values(train, config.task),
        contract.target_values(test, config.task),
    )

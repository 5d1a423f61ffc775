"""`mloop monitor --window PATH`: the drift of a window stored as a table, from mergeable profiles.

A window that is not in the prediction log (the output of a batch scoring job, a streamed sink, a day's
partition of a warehouse table) is a Parquet file or folder, or a CSV file. Its rows are read in batches,
each batch coerced to the contract as :func:`mloop.monitor.runner.evaluate_window` coerces logged rows,
profiled against the version's reference (:func:`mloop.monitor.profiles.window_profile`) and merged, so
memory stays flat whatever the table's size; the drift of the merged profile is the drift of the rows
(:mod:`mloop.core.window_profile`). The Spark engine (:mod:`mloop.spark.profiles`) makes the same profiles
per partition and merges them on the driver, so both engines give the same report.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mloop.core.window_profile import WindowProfile
from mloop.data.contract import Contract, coerce_frame
from mloop.data.profile import Profile
from mloop.errors import MonitorError
from mloop.monitor.drift import DriftReport, thresholds_from_config
from mloop.monitor.profiles import window_drift_report, window_profile
from mloop.monitor.runner import Reference
from mloop.project import Project

PREDICTION = "prediction"
BATCH_ROWS = 65_536


@dataclass(frozen=True)
class TableDrift:
    """The drift of a stored window against a version's reference."""

    version: str
    source: str
    engine: str
    report: DriftReport

    @property
    def n_rows(self) -> int:
        return self.report.n_rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_version": self.version,
            "window": self.source,
            "engine": self.engine,
            "n_rows": self.n_rows,
            "dataset_drift": self.report.dataset_drift,
            "drifted_features": self.report.drifted_features,
            "prediction_drift": self.report.prediction.drifted if self.report.prediction else None,
            "report": self.report.to_dict(),
        }


def window_columns(profile: Profile, contract: Contract) -> list[str]:
    """The columns a window is judged on: the reference profile's that the contract types."""
    return [c for c in profile.columns if c in contract.columns]


def check_columns(profile: Profile, contract: Contract, names: list[str], source: str) -> None:
    """A window must hold every column it is judged on: a missing one would read as all missing."""
    missing = [c for c in window_columns(profile, contract) if c not in names]
    if missing:
        raise MonitorError(
            f"{source}: the window lacks {len(missing)} column(s) of the reference: {', '.join(missing)}."
        )


def batch_profile(profile: Profile, contract: Contract, batch: pd.DataFrame) -> WindowProfile:
    """One batch of window rows, coerced to the contract and profiled against the reference ``profile``.

    The model's answers are judged too when the batch has a ``prediction`` column (a scoring job's output).
    """
    X = coerce_frame(batch, contract, window_columns(profile, contract))
    predictions = batch[PREDICTION] if PREDICTION in batch.columns and profile.prediction is not None else None
    return window_profile(profile, X, predictions)


def _batches(path: Path) -> tuple[list[str], Iterator[pd.DataFrame]]:
    name = path.name.lower()
    if path.is_file() and name.endswith((".csv", ".csv.gz")):
        head = pd.read_csv(path, nrows=0)
        return list(head.columns), iter(pd.read_csv(path, chunksize=BATCH_ROWS, dtype=object))
    import pyarrow.dataset as ds

    try:
        dataset = ds.dataset(path, format="parquet")
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise MonitorError(f"{path}: not a readable Parquet file or folder ({exc}).") from None
    # Arrow reads ahead 4 files and 16 batches by default: memory that grows with the table's parts.
    scan = dataset.to_batches(batch_size=BATCH_ROWS, fragment_readahead=1, batch_readahead=1)
    batches = (b.to_pandas() for b in scan)
    return list(dataset.schema.names), batches


def local_window_profile(profile: Profile, contract: Contract, path: Path) -> WindowProfile:
    """The merged profile of the table at ``path``, read and profiled a batch at a time in this process."""
    if not path.exists():
        raise MonitorError(f"{path}: no such file or folder to monitor.")
    names, batches = _batches(path)
    check_columns(profile, contract, names, str(path))
    merged: WindowProfile | None = None
    for batch in batches:  # merged as they come: one profile held at a time, whatever the table's size
        if len(batch):
            part = batch_profile(profile, contract, batch)
            merged = part if merged is None else merged.merge(part)
    return merged if merged is not None else batch_profile(profile, contract, _empty(names))


def _empty(names: list[str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series([], dtype=object) for name in names})


def table_drift(project: Project, ref: Reference, window: WindowProfile, source: str, engine: str) -> TableDrift:
    """The drift report of a stored window's merged profile, with the project's monitoring settings."""
    if window.n_rows == 0:
        raise MonitorError(f"{source}: the window has no rows.")
    settings = project.config.monitor
    report = window_drift_report(
        ref.profile, window, thresholds_from_config(settings), min_drifted_features=settings.min_drifted_features
    )
    return TableDrift(ref.version.version, source, engine, report)

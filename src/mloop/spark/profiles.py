"""Window profiles and drift on Spark: each partition profiles its rows, the driver merges the profiles.

Every partition runs :func:`mloop.monitor.window_table.batch_profile` on its Arrow batches (through
``mapInArrow``) and merges them into one profile, sent to the driver as JSON: counts in the reference's
cells and bins, category counts, and at most :data:`~mloop.core.window_profile.EXACT_MAX` values a column,
a KLL sketch beyond. The driver holds one such profile per partition, whatever the number of rows, so
its memory does not grow with the table (``bench/scale.py`` measures it). The merged profile is the one
the local engine makes of the same rows in one process, so the drift report is the same: statistics
equal and decisions identical, only a sketched Wasserstein distance within the sketch's stated error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from mloop.core.window_profile import WindowProfile
from mloop.data.contract import Contract
from mloop.data.profile import Profile
from mloop.errors import MonitorError
from mloop.monitor.window_table import BATCH_ROWS, PREDICTION, batch_profile, check_columns, window_columns

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

PROFILE = "profile"


def read_window(session: SparkSession, path: Path | str) -> DataFrame:
    """A stored window as a Spark DataFrame: a Parquet file or folder (Delta-style folders of Parquet
    parts included), or a CSV file with a header (every value read as text, typed by the contract)."""
    text = str(path)
    reader = session.read
    if text.lower().endswith((".csv", ".csv.gz")):
        return reader.option("header", "true").option("inferSchema", "false").csv(text)
    return reader.parquet(text)


def _partition_profiles(
    profile: Profile, contract: Contract
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function ``mapInArrow`` runs on each partition: its batches' profiles merged, as one JSON row."""

    def profile_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        merged: WindowProfile | None = None
        pending: list[pa.RecordBatch] = []
        rows = 0

        def flush() -> None:
            nonlocal merged, rows
            part = batch_profile(profile, contract, pa.Table.from_batches(pending).to_pandas())
            merged = part if merged is None else merged.merge(part)
            pending.clear()
            rows = 0

        # Arrow batches come 10,000 rows at a time (spark.sql.execution.arrow.maxRecordsPerBatch); profiling
        # them in groups of BATCH_ROWS pays the per-call cost of a profile and a merge far less often.
        for batch in batches:
            if batch.num_rows:
                pending.append(batch)
                rows += batch.num_rows
            if rows >= BATCH_ROWS:
                flush()
        if pending:
            flush()
        if merged is not None:
            yield pa.RecordBatch.from_pydict({PROFILE: [json.dumps(merged.to_dict())]})

    return profile_partition


def spark_window_profile(profile: Profile, contract: Contract, frame: DataFrame) -> WindowProfile:
    """The merged profile of ``frame``'s rows against the reference ``profile``, made per partition on the
    executors (the profile and the contract are shipped with each task; the model never is)."""
    check_columns(profile, contract, list(frame.columns), "the Spark window")
    wanted = window_columns(profile, contract)
    if PREDICTION in frame.columns:  # the column batch_profile judges as the model's answers
        wanted.append(PREDICTION)
    parts = frame.select(*wanted).mapInArrow(_partition_profiles(profile, contract), f"{PROFILE} string")
    merged: WindowProfile | None = None
    for row in parts.toLocalIterator():  # one partition's profile on the driver at a time
        part = WindowProfile.from_dict(json.loads(row[PROFILE]))
        merged = part if merged is None else merged.merge(part)
    if merged is None:
        raise MonitorError("The Spark window has no rows.")
    return merged

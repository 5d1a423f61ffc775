"""compute_drift and drift_report on Arrow tables, datasets and Parquet files, read one column at a time:
the same results as on the DataFrames, and the peak memory of a couple of columns, not of two frames."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from pandas.testing import assert_frame_equal

from mloop.core.drift import DriftThresholds
from mloop.data.profile import build_profile, infer_kinds
from mloop.errors import MonitorError
from mloop.monitor.columns import column_source
from mloop.monitor.drift import compute_drift, drift_report

ROWS = 30_000  # above KS_EXACT_MAX, so the asymptotic KS path is the one compared


def mixed_frame(rows: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    price = rng.gamma(2.0, 10.0, rows) * (1 + shift)
    price[rng.random(rows) < 0.05] = np.nan
    price[:3] = np.inf  # infinite values count as missing
    words = rng.choice(["north", "south", "east", "west"], rows, p=[0.4, 0.3, 0.2 + shift / 2, 0.1 - shift / 2])
    return pd.DataFrame(
        {
            "price": price,
            "area": rng.normal(1500, 300, rows).astype(np.float32),
            "rooms": rng.integers(1, 9, rows),
            "floors": pd.array(np.where(rng.random(rows) < 0.1, None, rng.integers(1, 4, rows)), dtype="Int64"),
            "garage": rng.random(rows) < 0.3 + shift,
            "side": pd.Series(words, dtype=object).where(rng.random(rows) > 0.02, None),
            "zone": pd.Categorical(rng.choice(list("abcde"), rows), categories=list("edcbaz")),
            "sold": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, rows), unit="D"),
        },
        index=pd.Index(np.arange(rows) * 3, name="row"),  # written by pandas as an extra column
    )


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    return mixed_frame(ROWS, 1, 0.0), mixed_frame(ROWS // 2, 2, 0.2)


@pytest.fixture(scope="module")
def files(frames: tuple[pd.DataFrame, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("drift-parquet")
    reference, current = frames
    reference.to_parquet(folder / "reference.parquet", row_group_size=7_000)  # several row groups
    parts = folder / "current"  # a folder of two files: a dataset
    parts.mkdir()
    half = len(current) // 2
    current.iloc[:half].to_parquet(parts / "part-0.parquet")
    current.iloc[half:].to_parquet(parts / "part-1.parquet")
    return folder / "reference.parquet", parts


def test_parquet_tables_and_datasets_give_the_dataframe_results(
    frames: tuple[pd.DataFrame, pd.DataFrame], files: tuple[Path, Path]
) -> None:
    reference, current = frames
    expected = compute_drift(reference, current)
    assert sorted(expected["feature"]) == ["area", "floors", "garage", "price", "rooms", "side", "zone"]
    assert expected["drifted"].any() and not expected["drifted"].all()
    ref_path, cur_path = files
    sources = {
        "paths": (ref_path, cur_path),
        "str paths": (str(ref_path), str(cur_path)),
        "tables": (pq.read_table(ref_path), ds.dataset(cur_path).to_table()),
        "datasets": (ds.dataset(ref_path), ds.dataset(cur_path)),
        "parquet file": (pq.ParquetFile(ref_path), cur_path),
        "mixed": (reference, cur_path),
    }
    for name, (ref, cur) in sources.items():
        assert_frame_equal(compute_drift(ref, cur), expected, check_exact=True, obj=name)
    chosen = compute_drift(ref_path, cur_path, columns=["zone", "price"], psi_threshold=0.1)
    assert_frame_equal(chosen, compute_drift(reference, current, columns=["zone", "price"], psi_threshold=0.1))


def test_index_columns_and_unsupported_types_are_not_compared(files: tuple[Path, Path]) -> None:
    source = column_source(files[0], "reference")
    assert "row" not in source.names and "__index_level_0__" not in source.names
    assert source.num_rows == ROWS
    assert source.kind("sold") is None and source.kind("zone") == "categorical" and source.kind("rooms") == "numeric"
    with pytest.raises(MonitorError, match="Cannot compute drift of column.*sold"):
        compute_drift(files[0], files[1], columns=["price", "sold"])


def test_drift_report_reads_a_parquet_window(
    frames: tuple[pd.DataFrame, pd.DataFrame], files: tuple[Path, Path]
) -> None:
    reference, current = frames
    numeric, categorical = infer_kinds(reference)
    profile = build_profile(reference, numeric, categorical)
    thresholds = DriftThresholds()
    from_frame = drift_report(profile, current, thresholds)
    from_file = drift_report(profile, files[1], thresholds)
    assert from_file.to_dict() == from_frame.to_dict()
    assert from_file.n_rows == len(current)


def test_bad_sources_are_clear_errors(tmp_path: Path, frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, _ = frames
    with pytest.raises(MonitorError, match=r"current data .*nowhere\.parquet does not exist"):
        compute_drift(reference, tmp_path / "nowhere.parquet")
    text = tmp_path / "window.parquet"
    text.write_text("price,area\n1,2\n")
    with pytest.raises(MonitorError, match=r"current data .*window\.parquet is not readable as Parquet"):
        compute_drift(reference, text)
    with pytest.raises(MonitorError, match="reference data is a list; pass a pandas DataFrame"):
        compute_drift([1, 2, 3], reference)  # type: ignore[arg-type]
    empty = tmp_path / "empty.parquet"
    reference.iloc[:0].to_parquet(empty)
    with pytest.raises(MonitorError, match="window has no rows"):
        compute_drift(reference, empty)
    table = pa.table({"other": [1.0, 2.0]})
    with pytest.raises(MonitorError, match="lacks 7 column"):
        compute_drift(reference, table)


# The peak memory of a streaming run, measured in a process of its own (VmHWM, as bench/drift.py does).
STREAMING_WORKER = """
import json, sys
from mloop.monitor.drift import compute_drift
import pyarrow.dataset, scipy.special, scipy.stats  # imported up front: libraries are not what this measures
def rss(key):
    return next(int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith(key + ":"))
base = rss("VmRSS")
result = compute_drift(sys.argv[1], sys.argv[2])
print(json.dumps({"work_mb": rss("VmHWM") - base, "drifted": result.loc[result["drifted"], "feature"].tolist()}))
"""


def test_streaming_holds_a_couple_of_columns_not_the_frames(tmp_path: Path) -> None:
    rows, width = 400_000, 16
    rng = np.random.default_rng(5)
    for name, shift in (("reference", 0.0), ("current", 1.0)):
        frame = pd.DataFrame({f"x{i}": rng.normal(shift * (i % 2), 1.0, rows) for i in range(width)})
        frame.to_parquet(tmp_path / f"{name}.parquet")
    frames_mb = 2 * rows * width * 8 / 2**20  # 98 MB of float64 in the two frames
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            STREAMING_WORKER,
            str(tmp_path / "reference.parquet"),
            str(tmp_path / "current.parquet"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    # The shifted half is caught, so the run really read and compared the columns.
    assert {f"x{i}" for i in range(1, width, 2)} <= set(measured["drifted"])
    # A column is 3 MB: a few of them (the read, the sort, the reader's buffers) stay far below both frames
    # (about 28 MB measured; reading the frames whole would be 98 MB and more).
    assert measured["work_mb"] < frames_mb / 2, measured

"""Fixtures shared by the whole suite: real data sets, read once per session, never mutated."""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from pathlib import Path

import pandas as pd
import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On CI every service a test needs is installed and started by .ci/run, so a skip there is a failure."""
    report = yield
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped on CI, where .ci/run provides every service: {report.longrepr}"
    return report


# The Ames house prices (2,930 sales 2006-2010, target Sale_Price): the copy shipped as package data,
# or the shared copy it was made from.
AMES_CANDIDATES = (
    Path(__file__).resolve().parents[1] / "src" / "mloop" / "examples" / "ames.csv.gz",
    Path("/work/shared/data/ames.csv.gz"),
)


@pytest.fixture(scope="session")
def ames_path() -> Path:
    for path in AMES_CANDIDATES:
        if path.is_file():
            return path
    pytest.skip("the Ames data set is not available")


@pytest.fixture(scope="session")
def ames(ames_path: Path) -> pd.DataFrame:
    """All 2,930 Ames sales; slice it (``ames.iloc[:600]``), pandas copy-on-write keeps it intact."""
    return pd.read_csv(ames_path)


def _write_table(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        frame.to_csv(path, index=False)
    elif name.endswith(".tsv"):
        frame.to_csv(path, sep="\t", index=False)
    elif name.endswith((".parquet", ".pq")):
        frame.to_parquet(path, index=False)
    elif name.endswith((".jsonl", ".ndjson")):
        frame.to_json(path, orient="records", lines=True)
    else:
        raise ValueError(f"no writer for {path}")
    return path


@pytest.fixture(scope="session")
def write_table() -> Callable[[pd.DataFrame, Path], Path]:
    """``write_table(frame, path)`` writes in the format the file name asks for (csv, tsv, parquet, jsonl)."""
    return _write_table

"""Drift on Spark (issue 14): partition profiles merged on the driver give the local engine's answers.

A real local[2] session (conftest.py); the frames are bench/drift.py's (20 numeric and 5 categorical
columns, 6 + 2 of them drifted), the end-to-end case a real Ames champion and `mloop monitor --window`.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
from tests.helpers.cli import failed, mloop, mloop_json
from tests.helpers.projects import early_sales, train_champion, write_project

from mloop.core.drift import DriftThresholds
from mloop.core.window_profile import NumericWindow
from mloop.data.contract import coerce_frame, infer_contract
from mloop.data.profile import build_profile, infer_kinds
from mloop.monitor.drift import DriftReport, drift_report
from mloop.monitor.profiles import window_drift_report
from mloop.monitor.window_table import local_window_profile
from mloop.registry.versions import CHAMPION, alias_version, load_model
from mloop.spark.profiles import read_window, spark_window_profile

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
ROWS = 200_000  # per side; each column passes EXACT_MAX, so every numeric one is sketched
PARTS = 4


def _bench_drift() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_drift", ROOT / "bench" / "drift.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_parts(frame: pd.DataFrame, folder: Path, parts: int = PARTS) -> Path:
    """A Delta-style folder of Parquet parts, as a Spark job or a warehouse partition writes it."""
    folder.mkdir(parents=True)
    step = math.ceil(len(frame) / parts)
    for i in range(parts):
        frame.iloc[i * step : (i + 1) * step].to_parquet(folder / f"part-{i:05d}.parquet", index=False)
    return folder


def _statistics(report: DriftReport) -> dict[tuple[str, str], Any]:
    return {(f.feature, name): value for f in report.features for name, value in f.statistics().items()}


def _assert_same(got: DriftReport, expected: DriftReport, bounds: dict[str, float] | None = None) -> None:
    """Decisions identical; statistics equal to 1e-9, the Wasserstein distance within ``bounds`` (the sketch's
    stated error: its rank error times the window's range) where a column was sketched."""
    assert [(f.feature, f.drifted) for f in got.features] == [(f.feature, f.drifted) for f in expected.features]
    assert got.dataset_drift == expected.dataset_drift and got.n_rows == expected.n_rows
    want = _statistics(expected)
    have = _statistics(got)
    assert have.keys() == want.keys()
    for key, value in want.items():
        if key[1] == "wasserstein" and bounds is not None:
            assert abs(have[key] - value) <= bounds[key[0]], key  # from a KLL sketch past 2,000 values
        else:
            assert have[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_drift_of_the_bench_frames_on_spark_equals_the_local_engine(spark: SparkSession, tmp_path: Path) -> None:
    reference, current, injected = _bench_drift().make_frames(ROWS)
    numeric, categorical = infer_kinds(reference)
    profile = build_profile(reference, numeric, categorical)
    contract = infer_contract(reference.assign(target=0.0), target="target")
    folder = _write_parts(current, tmp_path / "current")
    coerced = coerce_frame(current, contract, list(profile.columns))

    on_spark = spark_window_profile(profile, contract, read_window(spark, folder))
    locally = local_window_profile(profile, contract, folder)
    assert on_spark.n_rows == locally.n_rows == ROWS
    bounds = {}
    for name in numeric:
        window = on_spark.columns[name]
        assert isinstance(window, NumericWindow) and not window.exact  # 200,000 values: sketched
        bounds[name] = window.rank_error * float(current[name].max() - current[name].min())
    decided = {}
    for thresholds in (DriftThresholds(), DriftThresholds(decision="per_feature")):
        rows = drift_report(profile, coerced, thresholds)
        _assert_same(window_drift_report(profile, on_spark, thresholds), rows, bounds)
        _assert_same(window_drift_report(profile, locally, thresholds), rows, bounds)
        decided[thresholds.decision] = set(rows.drifted_features)
    # Each decision flags injected columns only (the smaller shifts stay under the effect thresholds).
    assert all(found and found <= set(injected) for found in decided.values()), decided


def test_monitor_window_on_spark_and_locally_give_the_same_report(
    spark: SparkSession, tmp_path: Path, ames: pd.DataFrame
) -> None:
    """`mloop monitor --window` on a scoring job's output: features and predictions, both engines."""
    project = train_champion(write_project(tmp_path / "ames", early_sales(ames, 800), "ames-spark-drift"))
    champion = alias_version(project, CHAMPION)
    assert champion is not None
    later = ames[ames["Year_Sold"] >= 2009].reset_index(drop=True)
    scored = later.assign(prediction=load_model(project, champion.version).predict(later))
    folder = _write_parts(scored, tmp_path / "scored", parts=3)

    local = mloop_json("monitor", "--window", str(folder), "--engine", "local", "--json", project=project)
    remote = mloop_json("monitor", "--window", str(folder), "--engine", "spark", "--json", project=project)
    assert local["engine"] == "local" and remote["engine"] == "spark"
    assert local["n_rows"] == remote["n_rows"] == len(later)
    assert local["drifted_features"] == remote["drifted_features"] and local["drifted_features"]
    assert local["report"] == remote["report"]  # every column under 2,000 rows: kept exactly on both
    assert local["prediction_drift"] is not None

    absent = tmp_path / "narrow.parquet"
    later[["Gr_Liv_Area", "Lot_Area"]].to_parquet(absent)
    err = failed(mloop("monitor", "--window", str(absent), "--engine", "spark", project=project))
    assert "the window lacks" in err and "Neighborhood" in err

"""Daily window profiles of a real SQLite prediction log: a week's drift from stored days equals the drift of
the week's rows read at once, and a rerun reads only today's rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mloop.config import MloopConfig
from mloop.core.window_profile import NumericWindow
from mloop.data.contract import Contract, coerce_frame, infer_contract
from mloop.data.predictions import PredictionRow, PredictionStore
from mloop.data.profile import Profile, build_profile, infer_kinds
from mloop.errors import MonitorError
from mloop.monitor.drift import DriftReport, drift_report, thresholds_from_config
from mloop.monitor.profiles import (
    load_day_profile,
    profile_path,
    save_day_profile,
    span_drift,
    window_drift_report,
    window_profile,
)
from mloop.monitor.runner import Reference
from mloop.project import Project
from mloop.registry.versions import VersionInfo

TARGET = "Sale_Price"
VERSION = "3"
NOW = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)  # "today" is 2026-03-07; the week starts on 2026-03-01
WEEK_START = "2026-03-01T00:00:00.000000+00:00"
TODAY_START = "2026-03-07T00:00:00.000000+00:00"
TOMORROW_START = "2026-03-08T00:00:00.000000+00:00"


class CountingStore:
    """The real store, with each ``read`` (its ``since`` and the rows it returned) and ``count`` recorded."""

    def __init__(self, inner: PredictionStore) -> None:
        self.inner = inner
        self.reads: list[tuple[Any, int]] = []
        self.counts = 0

    def read(self, **kwargs: Any) -> pd.DataFrame:
        frame = self.inner.read(**kwargs)
        self.reads.append((kwargs.get("since"), len(frame)))
        return frame

    def count(self, **kwargs: Any) -> int:
        self.counts += 1
        return self.inner.count(**kwargs)


@pytest.fixture(scope="module")
def reference(ames: pd.DataFrame) -> Reference:
    """Version 3's reference as ``load_reference`` returns it: the profile of the coerced early sales."""
    early = ames[ames["Year_Sold"] <= 2007].reset_index(drop=True)
    contract = infer_contract(early, TARGET)
    features = coerce_frame(early, contract, contract.features)
    numeric, categorical = infer_kinds(features)
    profile = build_profile(features, numeric, categorical, prediction=early[TARGET].to_numpy())
    return Reference(VersionInfo(VERSION, "run-3", ["champion"], {}, 0), profile, contract)


def _project(root: Path) -> Project:
    config = MloopConfig.from_file_values(name="ames", data={"source": "train.csv", "target": TARGET})
    return Project(root=root.resolve(), config=config)


def _rows(frame: pd.DataFrame, stamps: list[str], version: str = VERSION, prefix: str = "r") -> list[PredictionRow]:
    features = frame.drop(columns=[TARGET]).astype(object).where(frame.drop(columns=[TARGET]).notna(), None)
    records = features.to_dict(orient="records")
    predictions = (frame[TARGET] * 1.05).tolist()
    return [
        PredictionRow(f"{prefix}{i}", stamps[i], version, records[i], predictions[i], 1.0) for i in range(len(frame))
    ]


def _stamp(day: int, minute: int) -> str:
    return (datetime(2026, 3, 1, tzinfo=UTC) + timedelta(days=day, minutes=minute)).isoformat(timespec="microseconds")


@pytest.fixture
def logged(tmp_path: Path, ames: pd.DataFrame) -> tuple[Project, PredictionStore]:
    """A week of the later Ames sales served by version 3 (days 0-6, today's rows before 15:00), with rows
    outside the week, of another version and shadow rows around them."""
    project = _project(tmp_path / "ames")
    later = ames[ames["Year_Sold"] >= 2008].reset_index(drop=True)
    later.loc[later.index % 11 == 0, "Gr_Liv_Area"] = np.nan
    stamps = [_stamp(i % 7, (i // 7) % 840) for i in range(len(later))]
    store = PredictionStore(project.predictions_db)
    store.write_many(_rows(later, stamps))
    store.write_many(_rows(later.head(40), [_stamp(-1, m) for m in range(40)], prefix="before"))  # 2026-02-28
    store.write_many(_rows(later.head(30), [_stamp(7, m) for m in range(30)], prefix="after"))  # tomorrow
    store.write_many(_rows(later.head(25), [_stamp(2, m) for m in range(25)], version="2", prefix="old"))
    shadow = _rows(later.head(20), [_stamp(4, m) for m in range(20)], prefix="s")
    store.write_many([PredictionRow(f"{r.request_id}:shadow", *_fields(r)) for r in shadow])
    return project, store


def _fields(row: PredictionRow) -> tuple[Any, ...]:
    return row.ts, row.model_version, row.features, row.prediction, row.latency_ms


def _drift_of_rows(project: Project, reference: Reference, rows: pd.DataFrame) -> DriftReport:
    """What ``runner.evaluate_window`` computes from the rows themselves."""
    columns = [c for c in reference.profile.columns if c in reference.contract.columns]
    return drift_report(
        reference.profile,
        coerce_frame(rows, reference.contract, columns),
        thresholds_from_config(project.config.monitor),
        predictions=rows["prediction"].to_numpy(),
        min_drifted_features=project.config.monitor.min_drifted_features,
    )


def _week(store: PredictionStore) -> pd.DataFrame:
    rows = store.read(model_version=VERSION, since=WEEK_START)
    return rows[rows["ts"] < TOMORROW_START]


def test_a_weeks_drift_from_daily_profiles_is_the_drift_of_its_rows_and_a_rerun_reads_only_today(
    logged: tuple[Project, PredictionStore], reference: Reference
) -> None:
    project, store = logged
    week = _week(store)
    whole = _drift_of_rows(project, reference, week)
    counting = CountingStore(store)
    first = span_drift(project, VERSION, days=7, now=NOW, reference=reference, store=counting)  # type: ignore[arg-type]
    assert first.report.to_dict() == whole.to_dict()  # every statistic bit for bit, every decision
    assert first.n_rows == len(week) and first.version == VERSION
    assert [d.source for d in first.days] == ["built"] * 6 + ["today"]
    assert [d.day.isoformat() for d in first.days] == [f"2026-03-0{d}" for d in range(1, 8)]
    assert sum(d.n_rows for d in first.days) == len(week)
    assert counting.reads == [(WEEK_START, len(store.read(model_version=VERSION, since=WEEK_START)))]  # one read
    assert counting.counts == 0  # no stored day to check against the log
    stored = sorted(p.name for p in (project.monitor_dir / "profiles" / VERSION).iterdir())
    assert stored == [f"2026-03-0{d}.json" for d in range(1, 7)]  # whole past days only; no temporary files

    today_rows = store.count(model_version=VERSION, since=TODAY_START)
    again = CountingStore(store)
    second = span_drift(project, VERSION, days=7, now=NOW, reference=reference, store=again)  # type: ignore[arg-type]
    assert again.reads == [(TODAY_START, today_rows)]  # only today's rows are read again
    assert again.counts == 6  # each stored day's rows counted (an index-only COUNT), none read
    assert second.span.rows_read == today_rows < len(week) / 5
    assert [d.source for d in second.days] == ["stored"] * 6 + ["today"]
    assert second.report.to_dict() == whole.to_dict()
    assert json.loads(json.dumps(second.to_dict()))["days"][0] == {
        "day": "2026-03-01",
        "n_rows": 231,
        "source": "stored",
    }

    # Three days, from the same files: the drift of those days' rows.
    three = span_drift(project, VERSION, days=3, now=NOW, reference=reference, store=store)
    rows = store.read(model_version=VERSION, since="2026-03-05T00:00:00+00:00")
    assert three.report.to_dict() == _drift_of_rows(project, reference, rows[rows["ts"] < TOMORROW_START]).to_dict()


def test_past_the_exact_cap_the_decisions_stay_and_wasserstein_is_within_the_sketch_error(
    logged: tuple[Project, PredictionStore], reference: Reference
) -> None:
    project, store = logged
    week = _week(store)
    whole = _drift_of_rows(project, reference, week)
    sketched = span_drift(project, VERSION, days=7, now=NOW, reference=reference, store=store, exact_max=100)
    got, want = sketched.report.to_dict(), whole.to_dict()
    for feature in (*got["features"], got["prediction"]):
        feature.pop("wasserstein")
    for feature in (*want["features"], want["prediction"]):
        feature.pop("wasserstein")
    assert got == want
    for feature, exact in zip(sketched.report.features, whole.features, strict=True):
        column = sketched.span.profile.columns[feature.feature]
        if isinstance(column, NumericWindow) and exact.wasserstein is not None:
            assert feature.wasserstein is not None
            values = coerce_frame(week, reference.contract, [feature.feature])[feature.feature].dropna()
            assert abs(feature.wasserstein - exact.wasserstein) <= column.rank_error * float(np.ptp(values)) + 1e-9


def test_a_row_logged_late_for_a_past_day_has_that_day_profiled_again(
    logged: tuple[Project, PredictionStore], reference: Reference, ames: pd.DataFrame
) -> None:
    project, store = logged
    span_drift(project, VERSION, days=7, now=NOW, reference=reference, store=store)
    late = ames[ames["Year_Sold"] >= 2008].head(3)
    store.write_many(_rows(late, [_stamp(2, 900 + m) for m in range(3)], prefix="late"))  # 2026-03-03, replayed
    counting = CountingStore(store)
    again = span_drift(project, VERSION, days=7, now=NOW, reference=reference, store=counting)  # type: ignore[arg-type]
    assert [d.source for d in again.days] == ["stored", "stored", "rebuilt", "stored", "stored", "stored", "today"]
    assert counting.reads[0][0] == "2026-03-03T00:00:00.000000+00:00"
    assert "2026-03-03.json holds 230 rows of 2026-03-03 but the prediction log now holds 233" in again.span.notes[0]
    assert again.report.to_dict() == _drift_of_rows(project, reference, _week(store)).to_dict()


def test_an_unusable_day_file_is_named_and_profiled_again_then_used(
    logged: tuple[Project, PredictionStore], reference: Reference
) -> None:
    project, store = logged
    first = span_drift(project, VERSION, days=7, now=NOW, reference=reference, store=store)
    broken = profile_path(project, VERSION, first.days[1].day)
    broken.write_text('{"format": "mloop.window_profile", "format_version": 1, "n_rows": ', encoding="utf-8")
    with pytest.raises(MonitorError, match=f"The window profile {broken} is not a usable profile"):
        load_day_profile(broken)
    foreign = profile_path(project, VERSION, first.days[4].day)
    data = json.loads(foreign.read_text(encoding="utf-8"))
    data["columns"]["Gr_Liv_Area"]["layout"] = "2009:0000000000000000"  # built against another reference
    foreign.write_text(json.dumps(data), encoding="utf-8")

    again = span_drift(project, VERSION, days=7, now=NOW, reference=reference, store=store)
    assert [d.source for d in again.days] == ["stored", "rebuilt", "stored", "stored", "rebuilt", "stored", "today"]
    assert str(broken) in again.span.notes[0] and "not a usable profile" in again.span.notes[0]
    assert str(foreign) in again.span.notes[1] and "another reference profile" in again.span.notes[1]
    assert again.report.to_dict() == first.report.to_dict()
    assert load_day_profile(broken).n_rows == first.days[1].n_rows  # replaced by a good one
    third = span_drift(project, VERSION, days=7, now=NOW, reference=reference, store=store)
    assert [d.source for d in third.days] == ["stored"] * 6 + ["today"] and not third.span.notes


def test_clear_errors(tmp_path: Path, logged: tuple[Project, PredictionStore], reference: Reference) -> None:
    project, store = logged
    with pytest.raises(MonitorError, match="no rows for version 9 from 2026-03-01 to 2026-03-07"):
        span_drift(project, days=7, now=NOW, reference=Reference(VersionInfo("9", "r", [], {}, 0), *_pieces(reference)))
    with pytest.raises(MonitorError, match="at least 1 day"):
        span_drift(project, VERSION, days=0, now=NOW, reference=reference, store=store)
    with pytest.raises(MonitorError, match="No prediction log at"):
        span_drift(_project(tmp_path / "empty"), VERSION, now=NOW, reference=reference)
    missing = tmp_path / "nowhere" / "2026-03-01.json"
    with pytest.raises(MonitorError, match=f"Cannot read the window profile {missing}"):
        load_day_profile(missing)
    with pytest.raises(MonitorError, match="no rows"):
        window_drift_report(reference.profile, window_profile(reference.profile, _empty(reference)), _thresholds())
    target = tmp_path / "blocked"
    target.write_text("a file where the folder should be", encoding="utf-8")
    with pytest.raises(MonitorError, match="Cannot write the window profile .*blocked/2026-03-01.json"):
        save_day_profile(target / "2026-03-01.json", window_profile(reference.profile, _empty(reference)))


def test_an_unknown_version_is_a_monitor_error(logged: tuple[Project, PredictionStore]) -> None:
    project, store = logged
    with pytest.raises(MonitorError, match="Cannot monitor version 99: .*no version '99'"):
        span_drift(project, "99", now=NOW, store=store)


def _pieces(reference: Reference) -> tuple[Profile, Contract]:
    return reference.profile, reference.contract


def _empty(reference: Reference) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="float64") for name in reference.profile.columns})


def _thresholds() -> Any:
    return thresholds_from_config(MloopConfig.from_file_values(name="x", data={"source": "a", "target": "y"}).monitor)

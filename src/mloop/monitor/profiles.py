"""Daily window profiles of the prediction log: the drift of a span of days without rereading it.

Each whole past day (UTC) of a version's logged rows is profiled once (:func:`window_profile`, the mergeable
summary of :mod:`mloop.core.window_profile`) and stored as ``<monitor_dir>/profiles/<version>/<YYYY-MM-DD>.json``
(written to a temporary file and renamed over, so a reader never sees half a file). :func:`span_drift` then
merges the stored days of a span with a profile of today's rows so far (read every run, never stored: the
day is not over) and compares the merged profile with the reference: the same :class:`DriftReport` that
:func:`~mloop.monitor.drift.drift_report` gives from all the span's rows at once (the decisions identical,
the statistics equal; only a Wasserstein distance from a sketch is approximate, see
:mod:`mloop.core.window_profile`). A rerun over the same span reads only today's rows.

A stored day is used only when its row count is still the log's count of that day (one ``COUNT`` each, on
the ``(model_version, ts)`` index): a row logged late for a past day (a writer's queue, a spill file
replayed after an outage) makes the day be profiled again. A file that cannot be read, is not a profile,
or was built against another reference is likewise profiled again and replaced, and said so in
:attr:`Span.notes`. The rows of every day to profile come from one read, from the first such day on (the
log's ``read`` has a lower bound only); rows are assigned to days by comparing their ``ts`` text with each
day's start, as the log's own ``since``/``before`` filters compare them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from mloop.core.drift import DriftThresholds, FeatureDrift, decide
from mloop.core.window_profile import (
    EXACT_MAX,
    KLL_K,
    CategoricalWindow,
    ColumnWindow,
    NumericLayout,
    NumericWindow,
    WindowProfile,
    categorical_window,
    categorical_window_drift,
    merge_all,
    numeric_window,
    numeric_window_drift,
)
from mloop.data.contract import Contract, coerce_frame
from mloop.data.predictions import PredictionLog
from mloop.data.profile import PREDICTION, CategoricalProfile, NumericProfile, Profile, prediction_series
from mloop.errors import MonitorError, RegistryError
from mloop.monitor.drift import DriftReport, count_categories, numeric_array, thresholds_from_config
from mloop.project import Project

if TYPE_CHECKING:
    from mloop.monitor.runner import Reference

PROFILES = "profiles"

DaySource = Literal["stored", "built", "rebuilt", "today"]


# ------------------------------------------------------------------------------------ profile and drift


def _column_window(
    reference: NumericProfile | CategoricalProfile, values: pd.Series, exact_max: int, kll_k: int
) -> ColumnWindow:
    """The summary of one window column, counted as :func:`~mloop.monitor.drift.column_drift` counts it."""
    if isinstance(reference, NumericProfile):
        layout = NumericLayout.of(reference.edges, reference.sample)
        return numeric_window(numeric_array(values), layout, exact_max=exact_max, kll_k=kll_k)
    counts, nulls = count_categories(values)
    return categorical_window(counts, nulls)


def window_profile(
    profile: Profile,
    frame: pd.DataFrame,
    predictions: np.ndarray | pd.Series | None = None,
    *,
    exact_max: int = EXACT_MAX,
    kll_k: int = KLL_K,
) -> WindowProfile:
    """The mergeable profile of ``frame`` (and the model's ``predictions`` on it) against ``profile``.

    ``frame`` is the *coerced* feature frame that :func:`~mloop.monitor.drift.drift_report` would be given
    (``coerce_frame(rows, contract, columns)``, as ``runner.evaluate_window`` makes it). Columns the profile
    does not know are ignored; profile columns missing from ``frame`` raise :class:`MonitorError`, as in
    ``drift_report``. A frame without rows is profiled too (an empty day merges as nothing).
    """
    missing = [name for name in profile.columns if name not in frame.columns]
    if missing:
        raise MonitorError(
            f"The monitoring window lacks {len(missing)} column(s) of the reference profile: "
            f"{', '.join(missing)}. Log every feature the model was trained on, or compare against "
            "the profile of a model trained without them."
        )
    columns = {name: _column_window(ref, frame[name], exact_max, kll_k) for name, ref in profile.columns.items()}
    prediction = None
    if predictions is not None and profile.prediction is not None:
        values = prediction_series(predictions)
        if len(values) != len(frame):
            raise MonitorError(f"Got {len(values)} predictions for a window of {len(frame)} rows; pass one per row.")
        prediction = _column_window(profile.prediction, values, exact_max, kll_k)
    return WindowProfile(len(frame), columns, prediction)


def _expected(profile: Profile) -> dict[str, tuple[str, str | None]]:
    """Each column's kind and (numeric) layout key, as a window profile against ``profile`` has them."""
    named: list[tuple[str, NumericProfile | CategoricalProfile]] = list(profile.columns.items())
    if profile.prediction is not None:
        named.append((PREDICTION, profile.prediction))
    return {
        name: ("numeric", NumericLayout.of(ref.edges, ref.sample).key)
        if isinstance(ref, NumericProfile)
        else ("categorical", None)
        for name, ref in named
    }


def _structure(window: WindowProfile) -> dict[str, tuple[str, str | None]]:
    named: list[tuple[str, ColumnWindow]] = list(window.columns.items())
    if window.prediction is not None:
        named.append((PREDICTION, window.prediction))
    return {name: (c.kind, c.layout if isinstance(c, NumericWindow) else None) for name, c in named}


def _column_drift(
    name: str, reference: NumericProfile | CategoricalProfile, window: ColumnWindow, thresholds: DriftThresholds
) -> FeatureDrift:
    try:
        if isinstance(reference, NumericProfile) and isinstance(window, NumericWindow):
            return numeric_window_drift(
                name,
                window,
                edges=reference.edges,
                reference_counts=reference.counts,
                reference_null_rate=reference.null_rate,
                reference_sample=reference.sample,
                thresholds=thresholds,
            )
        if isinstance(reference, CategoricalProfile) and isinstance(window, CategoricalWindow):
            return categorical_window_drift(
                name,
                window,
                reference_freq=reference.frequencies,
                reference_null_rate=reference.null_rate,
                thresholds=thresholds,
            )
    except ValueError as exc:
        raise MonitorError(f"Cannot compare the window profile with the reference: {exc}.") from None
    raise MonitorError(
        f"Column {name!r} is {reference.kind} in the reference profile but {window.kind} in the window profile; "
        "profile the window against this reference."
    )


def window_drift_report(
    profile: Profile, window: WindowProfile, thresholds: DriftThresholds, min_drifted_features: int = 1
) -> DriftReport:
    """:func:`~mloop.monitor.drift.drift_report` of the rows ``window`` summarises, from the summary alone.

    The decisions are identical and the statistics equal (bit for bit in the tests) to ``drift_report`` on
    the rows; only a Wasserstein distance from a KLL sketch (past ``EXACT_MAX`` values of a column) is
    approximate, within the sketch's stated error (:mod:`mloop.core.window_profile`).
    """
    if min_drifted_features < 1:
        raise ValueError("min_drifted_features must be at least 1")
    if window.n_rows == 0:
        raise MonitorError("The monitoring window has no rows; wait for predictions to be logged.")
    missing = [name for name in profile.columns if name not in window.columns]
    if missing:
        raise MonitorError(
            f"The window profile lacks {len(missing)} column(s) of the reference profile: {', '.join(missing)}. "
            "Profile the window against this reference."
        )
    features = [_column_drift(name, ref, window.columns[name], thresholds) for name, ref in profile.columns.items()]
    prediction = None
    if profile.prediction is not None and window.prediction is not None:
        prediction = _column_drift(PREDICTION, profile.prediction, window.prediction, thresholds)
    return DriftReport(
        features=decide(features, thresholds),
        prediction=prediction,
        n_rows=window.n_rows,
        thresholds=thresholds,
        min_drifted_features=min_drifted_features,
    )


# ---------------------------------------------------------------------------------------- day files


def profile_path(project: Project, version: str, day: date) -> Path:
    """Where the profile of ``version``'s rows logged on ``day`` (UTC) is stored."""
    return project.monitor_dir / PROFILES / str(version) / f"{day.isoformat()}.json"


def load_day_profile(path: Path) -> WindowProfile:
    """The window profile stored at ``path``; :class:`MonitorError` naming the file when it cannot be used."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MonitorError(f"Cannot read the window profile {path}: {exc}.") from None
    try:
        return WindowProfile.from_dict(json.loads(text))
    except ValueError as exc:  # json.JSONDecodeError is one
        raise MonitorError(
            f"The window profile {path} is not a usable profile ({exc}); delete it and it is profiled again "
            "from the prediction log."
        ) from None


def save_day_profile(path: Path, profile: WindowProfile) -> None:
    """Store ``profile`` at ``path``: a temporary file beside it, renamed over it (atomic)."""
    text = json.dumps(profile.to_dict(), allow_nan=False, separators=(",", ":"))
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise MonitorError(
            f"Cannot write the window profile {path}: {exc}. Make {path.parent} writable, or free disk space."
        ) from None


# --------------------------------------------------------------------------------------------- spans


@dataclass(frozen=True)
class SpanDay:
    """One day of a span: its rows, and where its profile came from.

    ``stored``: its file; ``built``: profiled from the log and stored; ``rebuilt``: its file was unusable
    or stale, profiled again and replaced; ``today``: profiled from the log, not stored (the day goes on).
    """

    day: date
    n_rows: int
    source: DaySource

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), "n_rows": self.n_rows, "source": self.source}


@dataclass(frozen=True)
class Span:
    """The merged profile of the ``days`` (UTC) up to and including today, and how it was made."""

    version: str
    profile: WindowProfile
    days: list[SpanDay]
    rows_read: int  # rows read from the log by this call
    notes: list[str] = field(default_factory=list)  # day files found unusable or stale, and profiled again

    @property
    def n_rows(self) -> int:
        return self.profile.n_rows


@dataclass(frozen=True)
class SpanDrift:
    """The drift of a span's merged profile against the version's reference."""

    span: Span
    report: DriftReport

    @property
    def version(self) -> str:
        return self.span.version

    @property
    def n_rows(self) -> int:
        return self.report.n_rows

    @property
    def days(self) -> list[SpanDay]:
        return self.span.days

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "n_rows": self.n_rows,
            "days": [d.to_dict() for d in self.days],
            "rows_read": self.span.rows_read,
            "notes": list(self.span.notes),
            "report": self.report.to_dict(),
        }


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _start(day: date) -> str:
    """The first instant of ``day`` (UTC) in the log's text form, which sorts as time."""
    return datetime.combine(day, time(), tzinfo=UTC).isoformat(timespec="microseconds")


def _open_store(project: Project) -> PredictionLog:
    if not project.has_prediction_log():
        raise MonitorError(f"No prediction log at {project.predictions_db}; serve the model and send traffic first.")
    return project.prediction_store()


def _stored_day(
    path: Path, day: date, expected: Mapping[str, tuple[str, str | None]], log: PredictionLog, version: str
) -> tuple[WindowProfile | None, str | None]:
    """``(the stored profile, None)`` when it can be used, else ``(None, why not)``; ``(None, None)``: no file."""
    if not path.exists():
        return None, None
    try:
        stored = load_day_profile(path)
    except MonitorError as exc:
        return None, str(exc)
    if _structure(stored) != expected:
        return None, f"The window profile {path} was built against another reference profile; profiled again."
    logged = log.count(model_version=version, since=_start(day), before=_start(day + timedelta(days=1)))
    if stored.n_rows != logged:
        return None, (
            f"The window profile {path} holds {stored.n_rows} rows of {day.isoformat()} but the prediction log "
            f"now holds {logged}; profiled again."
        )
    return stored, None


def span_profile(
    project: Project,
    version: str,
    profile: Profile,
    contract: Contract,
    days: int = 7,
    now: datetime | None = None,
    *,
    store: PredictionLog | None = None,
    exact_max: int = EXACT_MAX,
    kll_k: int = KLL_K,
) -> Span:
    """The merged profile of ``version``'s rows logged in the ``days`` UTC days up to and including today.

    Each whole past day without a usable stored profile is profiled and stored; today's rows so far are
    read and profiled every call, never stored. ``now`` (default: the current time; naive means UTC) fixes
    "today". Rows are coerced with ``contract`` as ``runner.evaluate_window`` coerces them.
    """
    if days < 1:
        raise MonitorError(f"A span must be at least 1 day long, not {days}.")
    today = _utc(now).date()
    span = [today - timedelta(days=back) for back in range(days - 1, -1, -1)]
    log = store if store is not None else _open_store(project)
    expected = _expected(profile)
    profiles: dict[date, WindowProfile] = {}
    sources: dict[date, DaySource] = {}
    notes: list[str] = []
    for day in span[:-1]:
        stored, problem = _stored_day(profile_path(project, version, day), day, expected, log, version)
        if stored is not None:
            profiles[day], sources[day] = stored, "stored"
        elif problem is not None:
            notes.append(problem)
            sources[day] = "rebuilt"
    todo = [day for day in span if day not in profiles]  # today is always among them
    rows = log.read(model_version=version, since=_start(todo[0]))
    bounds = np.array([_start(todo[0] + timedelta(days=i)) for i in range((today - todo[0]).days + 2)])
    slot = np.searchsorted(bounds, rows["ts"].astype(str).to_numpy(dtype=str), side="right") - 1
    columns = [c for c in profile.columns if c in contract.columns]
    for day in todo:
        day_rows = rows[slot == (day - todo[0]).days]
        features = coerce_frame(day_rows, contract, columns)
        built = window_profile(profile, features, day_rows["prediction"].to_numpy(), exact_max=exact_max, kll_k=kll_k)
        profiles[day] = built
        if day == today:
            sources[day] = "today"
        else:
            save_day_profile(profile_path(project, version, day), built)
            sources.setdefault(day, "built")
    merged = merge_all((profiles[day] for day in span), exact_max=exact_max, kll_k=kll_k)
    return Span(
        version=str(version),
        profile=merged,
        days=[SpanDay(day, profiles[day].n_rows, sources[day]) for day in span],
        rows_read=len(rows),
        notes=notes,
    )


def span_drift(
    project: Project,
    version: str | None = None,
    days: int = 7,
    now: datetime | None = None,
    *,
    reference: Reference | None = None,
    store: PredictionLog | None = None,
    exact_max: int = EXACT_MAX,
    kll_k: int = KLL_K,
) -> SpanDrift:
    """The drift of ``version``'s (default: the champion's) rows of the last ``days`` UTC days, today included,
    from daily profiles (:func:`span_profile`), with the project's ``monitor`` thresholds.

    ``reference`` (``runner.load_reference``'s) saves loading it again. :class:`MonitorError` when the version
    is unknown, there is no log, or the span has no rows.
    """
    if reference is None:
        from mloop.monitor.runner import load_reference  # here, not above: the runner may import this module

        try:
            reference = load_reference(project, version)
        except RegistryError as exc:
            raise MonitorError(f"Cannot monitor version {version}: {exc}") from None
    name = reference.version.version
    span = span_profile(
        project,
        name,
        reference.profile,
        reference.contract,
        days,
        now,
        store=store,
        exact_max=exact_max,
        kll_k=kll_k,
    )
    if span.n_rows == 0:
        first, last = span.days[0].day.isoformat(), span.days[-1].day.isoformat()
        raise MonitorError(
            f"The prediction log has no rows for version {name} from {first} to {last} (UTC); "
            "serve the model and send traffic first, or monitor a longer span."
        )
    monitor = project.config.monitor
    report = window_drift_report(
        reference.profile, span.profile, thresholds_from_config(monitor), monitor.min_drifted_features
    )
    return SpanDrift(span, report)


__all__ = [
    "PROFILES",
    "Span",
    "SpanDay",
    "SpanDrift",
    "load_day_profile",
    "profile_path",
    "save_day_profile",
    "span_drift",
    "span_profile",
    "window_drift_report",
    "window_profile",
]

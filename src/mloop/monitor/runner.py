"""`mloop monitor`: windows of the prediction log against the model's training reference."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from mloop.core.metrics import GREATER_IS_BETTER
from mloop.data.contract import Contract, coerce_frame
from mloop.data.predictions import PredictionLog
from mloop.data.profile import Profile
from mloop.errors import MonitorError
from mloop.monitor.drift import Distribution, DriftReport, distribution, drift_report, thresholds_from_config
from mloop.monitor.quality import quality
from mloop.monitor.windows import split_windows
from mloop.project import Project
from mloop.registry.gate import version_contract
from mloop.registry.versions import CHAMPION, VersionInfo, alias_version, download_run_artifact, get_version

LATEST = "latest.json"
HISTORY = "history.jsonl"
DISTRIBUTIONS_KEPT = 6


@dataclass(frozen=True)
class Reference:
    version: VersionInfo
    profile: Profile
    contract: Contract


@dataclass(frozen=True)
class WindowResult:
    version: str
    index: int
    start_ts: str
    end_ts: str
    n_rows: int
    n_labelled: int
    drift: DriftReport
    quality: dict[str, float]
    training_quality: dict[str, float]
    metric: str
    distributions: tuple[Distribution, ...] = ()

    @property
    def decay(self) -> float | None:
        """How much worse the live primary metric is than at training time (0.1 = 10% worse)."""
        live, trained = self.quality.get(self.metric), self.training_quality.get(self.metric)
        if live is None or trained is None or trained == 0:
            return None
        change = (live - trained) / abs(trained)
        return -change if GREATER_IS_BETTER[self.metric] else change

    def to_dict(self) -> dict[str, Any]:
        drift = [
            {"feature": f.feature, "statistic": name, "value": value, "drifted": f.drifted}
            for f in self.drift.features
            for name, value in f.statistics().items()
        ]
        return {
            "model_version": self.version,
            "window": self.index,
            "ts": datetime.now(UTC).isoformat(timespec="seconds"),
            "start_ts": self.start_ts,
            "end_ts": self.end_ts,
            "n_rows": self.n_rows,
            "n_labelled": self.n_labelled,
            "dataset_drift": self.drift.dataset_drift,
            "n_drifted": self.drift.n_drifted,
            "drifted_features": self.drift.drifted_features,
            "prediction_drift": self.drift.prediction.drifted if self.drift.prediction else None,
            "drift": drift,
            "quality": self.quality,
            "training_quality": self.training_quality,
            "metric": self.metric,
            "decay": self.decay,
            "report": self.drift.to_dict(),
            "distributions": [d.to_dict() for d in self.distributions],
        }


def load_reference(project: Project, version: str | None = None) -> Reference:
    info = get_version(project, version) if version else alias_version(project, CHAMPION)
    if info is None:
        raise MonitorError("There is no champion to monitor; run `mloop run` first.")
    profile = Profile.load(Path(download_run_artifact(project, info.run_id, "reference_profile.json")))
    return Reference(info, profile, version_contract(project, info))


def evaluate_window(project: Project, ref: Reference, rows: pd.DataFrame, index: int = 0) -> WindowResult:
    """Drift and (labelled rows only) quality of one window of logged predictions."""
    config = project.config
    X = coerce_frame(rows, ref.contract, [c for c in ref.profile.columns if c in ref.contract.columns])
    predictions = rows["prediction"].to_numpy()
    report = drift_report(
        ref.profile,
        X,
        thresholds_from_config(config.monitor),
        predictions=predictions,
        min_drifted_features=config.monitor.min_drifted_features,
    )
    labelled = rows[rows["label"].notna()]
    live: dict[str, float] = {}
    if len(labelled):
        live = quality(labelled["label"].to_numpy(), labelled["prediction"].to_numpy(), config.task)
    trained = {
        k.removeprefix("mloop.metric."): float(v) for k, v in ref.version.tags.items() if k.startswith("mloop.metric.")
    }
    # The report plots the distributions of the features that moved most; storing all would bloat the history.
    shown = sorted(report.features, key=lambda f: -f.psi)[:DISTRIBUTIONS_KEPT]
    distributions = tuple(distribution(f.feature, ref.profile.columns[f.feature], X[f.feature]) for f in shown)
    return WindowResult(
        distributions=distributions,
        version=ref.version.version,
        index=index,
        start_ts=str(rows["ts"].iloc[0]),
        end_ts=str(rows["ts"].iloc[-1]),
        n_rows=len(rows),
        n_labelled=len(labelled),
        drift=report,
        quality=live,
        training_quality=trained,
        metric=config.primary_metric,
    )


def _store(project: Project) -> PredictionLog:
    if not project.has_prediction_log():
        raise MonitorError(f"No prediction log at {project.predictions_db}; serve the model and send traffic first.")
    return project.prediction_store()


def _no_rows(version: str) -> MonitorError:
    return MonitorError(f"The prediction log has no rows for version {version} yet.")


def _rows(project: Project, version: str) -> pd.DataFrame:
    rows = _store(project).read(model_version=version)
    if rows.empty:
        raise _no_rows(version)
    return rows


def monitor(project: Project, version: str | None = None, last: int | None = None, write: bool = True) -> WindowResult:
    """The last window (``monitor.window_size`` rows by default) of the model's traffic.

    Reads only that window (and a count for its index), not the version's whole history: a scheduled run
    costs the same with ten thousand logged rows as with ten million.
    """
    ref = load_reference(project, version)
    size = last or project.config.monitor.window_size
    store = _store(project)
    total = store.count(model_version=ref.version.version)
    if total == 0:
        raise _no_rows(ref.version.version)
    rows = store.read(model_version=ref.version.version, last=size)
    result = evaluate_window(project, ref, rows, index=max(0, (total - 1) // size))
    if write:
        record(project, result)
    return result


def monitor_windows(project: Project, version: str | None = None, size: int | None = None) -> list[WindowResult]:
    """Every full window of the model's traffic, oldest first (a final partial window included)."""
    ref = load_reference(project, version)
    rows = _rows(project, ref.version.version)
    return [
        evaluate_window(project, ref, window, i)
        for i, window in enumerate(split_windows(rows, size or project.config.monitor.window_size))
    ]


def record(project: Project, result: WindowResult) -> None:
    """Publish the result for the server's gauges (atomic replace) and append it to the history."""
    project.monitor_dir.mkdir(parents=True, exist_ok=True)
    data = result.to_dict()
    text = json.dumps(data, default=str)
    fd, tmp = tempfile.mkstemp(dir=project.monitor_dir, prefix=".latest.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(published(data), default=str))
    os.replace(tmp, project.monitor_dir / LATEST)
    with (project.monitor_dir / HISTORY).open("a", encoding="utf-8") as handle:
        handle.write(text + "\n")


def published(data: dict[str, Any]) -> dict[str, Any]:
    """What the server exports: the window as recorded, plus the decay as ``mloop_model_quality{metric="decay"}``.

    The server turns every ``quality`` entry into a gauge; the decay rides along there so the quality-decay
    alert of deploy/prometheus needs no training value on the Prometheus side.
    """
    if data.get("decay") is None:
        return data
    return {**data, "quality": {**data["quality"], "decay": data["decay"]}}


def history(project: Project) -> list[dict[str, Any]]:
    path = project.monitor_dir / HISTORY
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

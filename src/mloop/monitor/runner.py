"""`mloop monitor`: windows of the prediction log against the model's training reference."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from mloop.core.metrics import GREATER_IS_BETTER
from mloop.data.contract import Contract, coerce_frame
from mloop.data.multivariate import ARTIFACT as MULTIVARIATE_ARTIFACT
from mloop.data.multivariate import MultivariateDrift, MultivariateReference, multivariate_drift
from mloop.data.predictions import PredictionLog
from mloop.data.profile import Profile
from mloop.errors import MonitorError, RegistryError
from mloop.monitor.data_quality import DataQualityReport, data_quality
from mloop.monitor.drift import Distribution, DriftReport, distribution, drift_report, thresholds_from_config
from mloop.monitor.quality import quality
from mloop.monitor.windows import split_windows
from mloop.project import Project
from mloop.registry.estimator import ESTIMATOR_ARTIFACT, QualityEstimator
from mloop.registry.gate import version_contract
from mloop.registry.versions import (
    CHAMPION,
    VersionInfo,
    alias_version,
    download_run_artifact,
    get_version,
    load_model,
)

LATEST = "latest.json"
COUNTS = "counts.json"  # Tally: rows logged per version before a time
HISTORY = "history.jsonl"
DISTRIBUTIONS_KEPT = 6


@dataclass(frozen=True)
class Reference:
    version: VersionInfo
    profile: Profile
    contract: Contract
    estimator: QualityEstimator | None = None  # None for a version trained before estimators, or too small
    multivariate: MultivariateReference | None = None  # None when monitor.multivariate is off or was at training


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
    estimated_quality: dict[str, float] = field(default_factory=dict)  # before labels: registry.estimator
    data_quality: DataQualityReport | None = None  # of the logged features: monitor.data_quality
    multivariate: MultivariateDrift | None = None  # the features taken together: monitor.multivariate

    @property
    def decay(self) -> float | None:
        """How much worse the live primary metric is than at training time (0.1 = 10% worse)."""
        return self._worse(self.quality)

    @property
    def estimated_decay(self) -> float | None:
        """:attr:`decay` of the estimated primary metric: known as soon as the window has rows."""
        return self._worse(self.estimated_quality)

    def _worse(self, quality: dict[str, float]) -> float | None:
        value, trained = quality.get(self.metric), self.training_quality.get(self.metric)
        if value is None or trained is None or trained == 0:
            return None
        change = (value - trained) / abs(trained)
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
            "estimated_quality": self.estimated_quality,
            "estimated_decay": self.estimated_decay,
            "report": self.drift.to_dict(),
            "distributions": [d.to_dict() for d in self.distributions],
            "data_quality": self.data_quality.to_dict() if self.data_quality is not None else None,
            "multivariate": self.multivariate.to_dict() if self.multivariate is not None else None,
        }


def load_reference(project: Project, version: str | None = None) -> Reference:
    info = get_version(project, version) if version else alias_version(project, CHAMPION)
    if info is None:
        raise MonitorError("There is no champion to monitor; run `mloop run` first.")
    profile = Profile.load(Path(download_run_artifact(project, info.run_id, "reference_profile.json")))
    try:
        estimator = QualityEstimator.from_bytes(
            Path(download_run_artifact(project, info.run_id, ESTIMATOR_ARTIFACT)).read_bytes()
        )
    except RegistryError:
        estimator = None  # trained before quality estimators existed: windows just have no estimate
    multivariate = _multivariate_reference(project, info) if project.config.monitor.multivariate.enabled else None
    return Reference(info, profile, version_contract(project, info), estimator, multivariate)


def _calibration_path(project: Project, info: VersionInfo) -> Path:
    return project.monitor_dir / "multivariate" / f"{info.run_id}.json"


def _multivariate_reference(project: Project, info: VersionInfo) -> MultivariateReference | None:
    """The run's multivariate reference, with the thresholds earlier runs calibrated on this machine.

    The domain classifier's threshold for a window size costs about 40 fits, paid on first use of the size
    and kept under ``.mloop/monitor/multivariate/<run id>.json``; an unreadable copy there is ignored.
    """
    cached = _calibration_path(project, info)
    reference: MultivariateReference | None = None
    if cached.is_file():
        try:
            reference = MultivariateReference.from_bytes(cached.read_bytes())
        except (OSError, MonitorError):
            reference = None  # a damaged cache costs a recalibration, never the run
    if reference is None:
        try:
            path = Path(download_run_artifact(project, info.run_id, MULTIVARIATE_ARTIFACT))
        except RegistryError:
            return None  # trained before multivariate references, or with monitor.multivariate off
        reference = MultivariateReference.from_bytes(path.read_bytes())
    rate = project.config.monitor.multivariate.false_alarm_rate
    if rate != reference.false_alarm_rate:  # the reconstruction thresholds are quantiles at the rate
        reference = replace(reference, false_alarm_rate=rate, reconstruction_thresholds={})
    return reference


def _save_calibration(project: Project, ref: Reference) -> None:
    """Keep the thresholds calibrated so far for the next run (atomic replace)."""
    if ref.multivariate is None:
        return
    path = _calibration_path(project, ref.version)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".calibration.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(ref.multivariate.to_bytes())
    os.replace(tmp, path)


def window_multivariate(project: Project, ref: Reference, X: pd.DataFrame) -> MultivariateDrift | None:
    """The window's multivariate drift (``None`` without a reference), calibrating a new size once."""
    if ref.multivariate is None or not len(X):
        return None
    settings = project.config.monitor.multivariate
    before = len(ref.multivariate.classifier_null)
    # A partial window (fewer rows than monitor.window_size) skips the classifier rather than pay ~40 fits to
    # calibrate a size seen once; the reconstruction error's threshold is cheap for any size.
    classifier = settings.domain_classifier and len(X) >= project.config.monitor.window_size
    result = multivariate_drift(ref.multivariate, X, domain_classifier=classifier)
    if len(ref.multivariate.classifier_null) != before:  # the costly part; reconstruction thresholds are not
        _save_calibration(project, ref)
    return result


def estimated_quality(project: Project, ref: Reference, X: pd.DataFrame, predictions: Any) -> dict[str, float]:
    """The window's quality as its version's estimator sees it, before any label (``{}`` without one)."""
    if ref.estimator is None or not len(X):
        return {}
    probabilities = None
    if ref.estimator.task == "classification":
        model = load_model(project, ref.version.version)  # the log keeps labels, not probabilities
        probabilities = model.predict_proba(X[list(ref.contract.features)])
    try:
        return ref.estimator.estimate(X, predictions, probabilities)
    except (ValueError, KeyError) as exc:
        raise MonitorError(f"Cannot estimate the quality of version {ref.version.version}'s window: {exc}") from None


def evaluate_window(project: Project, ref: Reference, rows: pd.DataFrame, index: int = 0) -> WindowResult:
    """Drift and (labelled rows only) quality of one window of logged predictions."""
    config = project.config
    columns = [c for c in ref.profile.columns if c in ref.contract.columns]
    X = coerce_frame(rows, ref.contract, columns)
    checked = data_quality(rows, ref.contract, ref.profile, config.monitor.data_quality, columns=columns, coerced=X)
    predictions = rows["prediction"].to_numpy()
    report = drift_report(
        ref.profile,
        X,
        thresholds_from_config(config.monitor),
        predictions=predictions,
        min_drifted_features=config.monitor.min_drifted_features,
    )
    estimated = estimated_quality(project, ref, X, predictions)
    together = window_multivariate(project, ref, X)
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
        data_quality=checked,
        multivariate=together,
        estimated_quality=estimated,
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

    Reads only that window, and counts only the rows logged since the previous run (:class:`Tally`), not
    the version's whole history: a scheduled run costs the same with ten thousand logged rows as with ten
    million (``bench/monitor_history.py``).
    """
    ref = load_reference(project, version)
    size = last or project.config.monitor.window_size
    store = _store(project)
    tally = Tally.load(project, ref.version.version)
    total = tally.rows_before + store.count(model_version=ref.version.version, since=tally.ts)
    if total == 0:
        raise _no_rows(ref.version.version)
    rows = store.read(model_version=ref.version.version, last=size)
    result = evaluate_window(project, ref, rows, index=max(0, (total - 1) // size))
    if write:
        newest = str(rows["ts"].iloc[-1])
        passed = store.count(model_version=ref.version.version, since=tally.ts, before=newest)
        Tally(ref.version.version, newest, tally.rows_before + passed).save(project)
        record(project, result)
    return result


@dataclass(frozen=True)
class Tally:
    """How many rows of a version were logged before ``ts``: where the next run's count starts.

    Rows before a timestamp the log has passed hardly change (writers log in time order), so a run counts
    from ``ts`` on and adds ``rows_before``. Rows stored later with an earlier timestamp (still in a
    writer's queue during the run, or a spill file replayed after an outage of the log) are judged in
    their windows all the same; only the window number, which is a label, leaves them out until a run
    without a tally (``counts.json`` deleted) counts everything again.
    """

    version: str
    ts: str | None = None
    rows_before: int = 0

    @staticmethod
    def load(project: Project, version: str) -> Tally:
        try:
            known = json.loads((project.monitor_dir / COUNTS).read_text(encoding="utf-8"))[version]
            return Tally(version, str(known["ts"]), int(known["rows_before"]))
        except (OSError, ValueError, KeyError, TypeError):
            return Tally(version)  # no tally yet (or an unreadable one): count from the start

    def save(self, project: Project) -> None:
        path = project.monitor_dir / COUNTS
        try:
            known = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            known = {}
        known = known if isinstance(known, dict) else {}
        known[self.version] = {"ts": self.ts, "rows_before": self.rows_before}
        project.monitor_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=project.monitor_dir, prefix=".counts.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(known))
        os.replace(tmp, path)


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

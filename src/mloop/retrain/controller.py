"""`mloop retrain`: train a challenger on the training data plus labelled production rows, gate it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from mloop import failpoints
from mloop.core.gate import GateDecision
from mloop.data.contract import Contract
from mloop.data.snapshot import Snapshot, load_snapshot
from mloop.errors import ContractError, LockBusy, MloopError, RetrainError
from mloop.monitor.runner import WindowResult, history, monitor, record
from mloop.pipeline import stages
from mloop.project import Project
from mloop.registry import audit
from mloop.registry.gate import promote, version_contract
from mloop.registry.versions import CHAMPION, VersionInfo, alias_version, register
from mloop.retrain.guard import reject, trusted_holdout_check
from mloop.retrain.journal import record_decision
from mloop.retrain.labels import RejectedLabel, conform_labels
from mloop.retrain.lock import RetrainLock
from mloop.retrain.policy import RetrainDecision, decide, drift_streak
from mloop.retrain.schedule import due_since
from mloop.train.trainer import train

log = logging.getLogger(__name__)

BASE_DATA_TAG = "mloop.base_data_hash"
LOCK_FILE = "retrain.lock"
REJECTED_EXAMPLES = 20  # rejected feedback labels named in the audit entry; all are counted and logged


@dataclass(frozen=True)
class RetrainResult:
    decision: RetrainDecision
    window: WindowResult | None
    snapshot: Snapshot | None = None
    version: VersionInfo | None = None
    gate: GateDecision | None = None
    #: Feedback labels left out of the retraining data because they do not fit the target's type.
    rejected_labels: list[RejectedLabel] = field(default_factory=list)

    @property
    def promoted(self) -> bool:
        return self.gate is not None and self.gate.promote


def _training_frame(project: Project, champion: VersionInfo) -> pd.DataFrame:
    """The data the loop started from (before any production rows), or the source if it is gone.

    Retraining adds every labelled production row to this base, so rows are never counted twice.
    """
    digest = champion.tags.get(BASE_DATA_TAG) or champion.tags.get("mloop.data_hash")
    if digest:
        try:
            return load_snapshot(project.snapshots_dir, digest).read()
        except MloopError:
            pass
    return stages.read_project_source(project)


def labelled_production_rows(
    project: Project, columns: list[str], windows: int | None = None, target: str | None = None
) -> pd.DataFrame:
    """Logged predictions with a label, as training rows (features, time column, target), indexed by
    request id.

    ``windows`` keeps only the labelled rows among the last ``windows × monitor.window_size`` logged
    predictions (``retrain.training_windows``); ``None`` keeps them all. The label column is named
    ``target``, by default the contract's.
    """
    target = target or project.contract().target
    if not project.has_prediction_log():
        return pd.DataFrame(columns=[*columns, target], index=pd.Index([], name="request_id"))
    store = project.prediction_store()
    if windows is None:
        rows = store.read(labelled_only=True)
    else:
        rows = store.read(last=windows * project.config.monitor.window_size)
        rows = rows[rows["label"].notna()]
    rows = rows.drop_duplicates("request_id")
    out = pd.DataFrame(index=rows.index)
    for name in columns:
        out[name] = rows[name] if name in rows.columns else np.nan
    out[target] = rows["label"]
    out.index = pd.Index(rows["request_id"].astype(str), name="request_id")
    return out


@dataclass(frozen=True)
class RetrainingData:
    """The retraining set, and the feedback labels left out of it."""

    frame: pd.DataFrame
    production_rows: int
    rejected_labels: list[RejectedLabel]


def _same_target(project: Project, champion: VersionInfo, contract: Contract | None = None) -> str:
    """The project's target (checked against mloop.yaml), refused unless the champion predicts it too.

    The feedback labels answer the champion's predictions: they are values of its target, not of a new one.
    """
    target = project.contract().target
    predicted = (contract or version_contract(project, champion)).target
    if predicted != target:
        raise RetrainError(
            f"champion v{champion.version} predicts {predicted!r} but the data contract's target is now "
            f"{target!r}, so its feedback labels are not {target!r} values; train and promote a model for "
            f"{target!r} first (`mloop run`, then `mloop promote --force` if the gate cannot compare them)."
        )
    return target


def retraining_data(project: Project, champion: VersionInfo) -> RetrainingData:
    """Training data the loop started from plus labelled production rows, typed as the training data is.

    Labels that do not fit the target's contract dtype are left out, each logged as a warning naming
    its request id (see :mod:`mloop.retrain.labels`).
    """
    contract = version_contract(project, champion)
    target = _same_target(project, champion, contract)
    base = _training_frame(project, champion)
    # Only what the model reads (features, time, target): production rows carry nothing else.
    keep = [c for c in base.columns if c in contract.columns and contract.columns[c].role in ("feature", "time")]
    base = base[[*keep, target]]
    fresh = labelled_production_rows(project, keep, project.config.retrain.training_windows, target)
    spec = contract.columns.get(target)
    labels, rejected = conform_labels(fresh[target], fresh.index.to_series(), target, spec.dtype if spec else "string")
    for bad in rejected:
        log.warning("%s", bad.message)
    fresh = fresh.loc[labels.index].reset_index(drop=True)
    fresh[target] = labels.to_numpy()
    time_col = project.config.data.time_column
    if time_col and time_col in base.columns and len(fresh):
        # Rows served without their time value still came after the training data.
        fresh[time_col] = fresh[time_col].fillna(base[time_col].max())
    for name in base.columns:
        # JSON gave the logged values their own types; store them as the training data stores them.
        if pd.api.types.is_numeric_dtype(base[name]):
            fresh[name] = pd.to_numeric(fresh[name], errors="coerce")
        else:
            fresh[name] = fresh[name].astype(object).where(fresh[name].notna(), None)
    frame = pd.concat([base, fresh[base.columns]], ignore_index=True)
    return RetrainingData(frame, len(fresh), rejected)


def combined_data(project: Project, champion: VersionInfo) -> pd.DataFrame:
    """:func:`retraining_data`'s frame."""
    return retraining_data(project, champion).frame


def last_retrain(project: Project) -> datetime | None:
    """When the last retrain (promoted or not) was recorded in the audit log."""
    stamps = [e["ts"] for e in audit.read(project.audit_log) if e.get("event") == "retrain"]
    return datetime.fromisoformat(stamps[-1]) if stamps else None


def _streak(project: Project, version: str) -> int:
    """Consecutive drifted windows of ``version``, a window re-evaluated on the same traffic counted once.

    A window drifted when its features did (``dataset_drift``), or, with ``retrain.on_multivariate_drift``,
    when they drifted together.
    """
    together = project.config.retrain.on_multivariate_drift
    seen: dict[str, bool] = {}
    for entry in history(project):
        if entry.get("model_version") == version:
            multivariate = entry.get("multivariate")
            moved = together and isinstance(multivariate, dict) and bool(multivariate.get("drifted"))
            seen[str(entry.get("end_ts"))] = bool(entry.get("dataset_drift")) or moved
    return drift_streak(list(seen.values()))


def _latest_window(project: Project, if_needed: bool) -> WindowResult | None:
    try:
        window = monitor(project, write=False)
    except MloopError:
        if if_needed:
            raise
        return None
    recorded = {(e.get("model_version"), e.get("end_ts")) for e in history(project)}
    if (window.version, window.end_ts) not in recorded:  # `mloop monitor` may have recorded it already
        record(project, window)
    return window


def evaluate_policy(project: Project, champion: VersionInfo, window: WindowResult | None) -> RetrainDecision:
    """The policy's decision on the latest window, from the settings, the history and the audit log."""
    config = project.config
    policy = config.retrain
    since = last_retrain(project)
    new_labels = 0
    if project.has_prediction_log():
        new_labels = project.prediction_store().count(since=since.isoformat() if since else None, labelled_only=True)
    due = None
    if policy.schedule:
        start = since or datetime.fromtimestamp(champion.created_ms / 1000, UTC)
        when = due_since(policy.schedule, start)
        due = f"cron '{policy.schedule}' was due at {when.isoformat(timespec='minutes')}" if when else None
    prediction = window.drift.prediction if window else None
    return decide(
        dataset_drift=bool(window and window.drift.dataset_drift),
        drifted_features=window.drift.drifted_features if window else [],
        decay=window.decay if window else None,
        metric=config.primary_metric,
        new_labels=new_labels,
        on_drift=policy.on_drift,
        max_quality_decay=policy.max_quality_decay,
        min_new_labels=policy.min_new_labels,
        streak=_streak(project, champion.version) if window else 0,
        drift_windows=policy.drift_windows,
        prediction_drift=bool(prediction and prediction.drifted),
        on_prediction_drift=policy.on_prediction_drift,
        schedule_due=due,
        estimated_decay=window.estimated_decay if window else None,
        max_estimated_decay=policy.max_estimated_decay,
        multivariate_drift=window.multivariate.reason() if window and window.multivariate else None,
        on_multivariate_drift=policy.on_multivariate_drift,
    )


def retrain_lock(project: Project) -> RetrainLock:
    return RetrainLock(project.workspace / LOCK_FILE)


def retrain(project: Project, if_needed: bool = False) -> RetrainResult:
    """Retrain now, or with ``if_needed`` only when the policy says so; the gate decides promotion.

    Every decision is journaled (audit log + MLflow). Training runs under the project's retrain lock:
    a second controller finds it taken and skips (``if_needed``) or fails (a forced retrain).
    """
    project.contract()  # a data.target that disagrees with the contract fails before anything is recorded
    champion = alias_version(project, CHAMPION)
    if champion is None:
        raise RetrainError("There is no champion to retrain; run `mloop run` first.")
    _same_target(project, champion)  # also before anything is recorded
    window = _latest_window(project, if_needed)
    decision = evaluate_policy(project, champion, window)
    if not if_needed:
        decision = RetrainDecision(True, ["requested"] + decision.reasons, decision.blockers)
    if not decision.retrain:
        record_decision(project, decision, window, champion.version)
        return RetrainResult(decision, window)
    lock = retrain_lock(project)
    try:
        lock.acquire()
    except LockBusy as busy:
        decision = RetrainDecision(False, decision.reasons, [*decision.blockers, busy.message])
        record_decision(project, decision, window, champion.version)
        if not if_needed:
            raise
        return RetrainResult(decision, window)
    try:
        record_decision(project, decision, window, champion.version)
        return _train_and_gate(project, decision, window)
    finally:
        lock.release()


def _train_and_gate(project: Project, decision: RetrainDecision, window: WindowResult | None) -> RetrainResult:
    champion = alias_version(project, CHAMPION)  # re-read under the lock: another controller may have promoted
    if champion is None:
        raise RetrainError("The champion alias disappeared while retraining; run `mloop promote`.")
    assembled = retraining_data(project, champion)
    data, fresh_rows = assembled.frame, assembled.production_rows
    ingested = stages.ingest(project, f"retrain:{champion.tags.get('mloop.data_hash', '')[:12]}+feedback", data)
    snapshot, report = stages.validate(project, ingested.snapshot.hash)
    if not report.passed:
        raise ContractError(f"the retraining data breaks the data contract:\n{report.summary()}")
    base = champion.tags.get(BASE_DATA_TAG) or champion.tags.get("mloop.data_hash", "")
    trained = train(project, snapshot, tags={BASE_DATA_TAG: base, "mloop.trigger": "; ".join(decision.reasons)})
    version = register(project, trained.run_id)
    failpoints.hit("retrain:after-train")
    reason = "retrain: " + "; ".join(decision.reasons)
    check = trusted_holdout_check(project, champion, version)
    verdict = (
        promote(project, version.version, reason=reason)
        if check.passed
        else reject(project, champion, version, check, reason)
    )
    audit.append(
        project.audit_log,
        "retrain",
        model=project.name,
        version=version.version,
        champion=champion.version,
        reasons=decision.reasons,
        rows=snapshot.rows,
        production_rows=fresh_rows,
        rejected_labels=len(assembled.rejected_labels),
        rejected_label_examples=[bad.to_dict() for bad in assembled.rejected_labels[:REJECTED_EXAMPLES]],
        promoted=verdict.promote,
        gate=verdict.reason,
    )
    return RetrainResult(decision, window, snapshot, version, verdict, assembled.rejected_labels)

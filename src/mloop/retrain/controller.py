"""`mloop retrain`: train a challenger on the training data plus labelled production rows, gate it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mloop.core.gate import GateDecision
from mloop.data.predictions import PredictionStore
from mloop.data.snapshot import Snapshot, load_snapshot
from mloop.data.sources import read_source
from mloop.errors import ContractError, MloopError, RetrainError
from mloop.monitor.runner import WindowResult, monitor
from mloop.pipeline import stages
from mloop.project import Project
from mloop.registry import audit
from mloop.registry.gate import promote, version_contract
from mloop.registry.versions import CHAMPION, VersionInfo, alias_version, register
from mloop.retrain.policy import RetrainDecision, decide
from mloop.train.trainer import train

BASE_DATA_TAG = "mloop.base_data_hash"


@dataclass(frozen=True)
class RetrainResult:
    decision: RetrainDecision
    window: WindowResult | None
    snapshot: Snapshot | None = None
    version: VersionInfo | None = None
    gate: GateDecision | None = None

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
    return read_source(project.source)


def labelled_production_rows(project: Project, columns: list[str]) -> pd.DataFrame:
    """Every logged prediction with a label, as training rows (features, time column, target)."""
    if not project.predictions_db.exists():
        return pd.DataFrame(columns=columns)
    rows = PredictionStore(project.predictions_db).read(labelled_only=True)
    rows = rows.drop_duplicates("request_id")
    out = pd.DataFrame(index=rows.index)
    for name in columns:
        out[name] = rows[name] if name in rows.columns else np.nan
    out[project.config.data.target] = rows["label"]
    return out.reset_index(drop=True)


def combined_data(project: Project, champion: VersionInfo) -> pd.DataFrame:
    contract = version_contract(project, champion)
    base = _training_frame(project, champion)
    # Only what the model reads (features, time, target): production rows carry nothing else.
    keep = [c for c in base.columns if c in contract.columns and contract.columns[c].role in ("feature", "time")]
    base = base[[*keep, project.config.data.target]]
    fresh = labelled_production_rows(project, keep)
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
    return pd.concat([base, fresh[base.columns]], ignore_index=True)


def retrain(project: Project, if_needed: bool = False) -> RetrainResult:
    """Retrain now, or with ``if_needed`` only when the policy says so; the gate decides promotion."""
    champion = alias_version(project, CHAMPION)
    if champion is None:
        raise RetrainError("There is no champion to retrain; run `mloop run` first.")
    window: WindowResult | None = None
    try:
        window = monitor(project)
    except MloopError:
        if if_needed:
            raise
    config = project.config
    new_labels = len(labelled_production_rows(project, []))
    decision = decide(
        dataset_drift=bool(window and window.drift.dataset_drift),
        drifted_features=window.drift.drifted_features if window else [],
        decay=window.decay if window else None,
        metric=config.primary_metric,
        new_labels=new_labels,
        on_drift=config.retrain.on_drift,
        max_quality_decay=config.retrain.max_quality_decay,
        min_new_labels=config.retrain.min_new_labels,
    )
    if if_needed and not decision.retrain:
        return RetrainResult(decision, window)
    if not if_needed:
        decision = RetrainDecision(True, ["requested"] + decision.reasons, decision.blockers)
    data = combined_data(project, champion)
    ingested = stages.ingest(project, f"retrain:{champion.tags.get('mloop.data_hash', '')[:12]}+feedback", data)
    snapshot, report = stages.validate(project, ingested.snapshot.hash)
    if not report.passed:
        raise ContractError(f"the retraining data breaks the data contract:\n{report.summary()}")
    base = champion.tags.get(BASE_DATA_TAG) or champion.tags.get("mloop.data_hash", "")
    trained = train(project, snapshot, tags={BASE_DATA_TAG: base, "mloop.trigger": "; ".join(decision.reasons)})
    version = register(project, trained.run_id)
    verdict = promote(project, version.version, reason="retrain: " + "; ".join(decision.reasons))
    audit.append(
        project.audit_log,
        "retrain",
        model=project.name,
        version=version.version,
        reasons=decision.reasons,
        rows=snapshot.rows,
        new_labels=new_labels,
        promoted=verdict.promote,
    )
    return RetrainResult(decision, window, snapshot, version, verdict)

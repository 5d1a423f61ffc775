"""Every retraining decision, retrain or not, to the audit log and to MLflow.

MLflow gets one run per decision in the experiment ``<experiment>-controller`` (kept apart so the
training experiment holds training runs only), tagged with the decision and its reasons, with the
window's drift and quality as metrics, so `mlflow ui` shows why the loop did or did not act.
"""

from __future__ import annotations

import json
from typing import Any

from mloop.monitor.runner import WindowResult
from mloop.project import Project
from mloop.registry import audit
from mloop.retrain.policy import RetrainDecision
from mloop.tracking.store import connect

DECISION_EVENT = "retrain_decision"


def controller_experiment(project: Project) -> str:
    return f"{project.experiment_name}-controller"


def record_decision(
    project: Project, decision: RetrainDecision, window: WindowResult | None, champion: str, **extra: Any
) -> dict[str, Any]:
    """Write ``decision`` to the audit log and to an MLflow run; returns the audit record."""
    fields: dict[str, Any] = {
        "model": project.name,
        "champion": champion,
        "retrain": decision.retrain,
        "reasons": decision.reasons,
        "blockers": decision.blockers,
        **extra,
    }
    if window is not None:
        fields |= {"window": window.index, "n_drifted": window.drift.n_drifted, "decay": window.decay}
    record = audit.append(project.audit_log, DECISION_EVENT, **fields)
    _to_mlflow(project, decision, window, champion, extra)
    return record


def _to_mlflow(
    project: Project, decision: RetrainDecision, window: WindowResult | None, champion: str, extra: dict[str, Any]
) -> None:
    client = connect(project)
    name = controller_experiment(project)
    found = client.get_experiment_by_name(name)
    experiment = found.experiment_id if found else client.create_experiment(name)
    tags = {
        "mloop.decision": "retrain" if decision.retrain else "wait",
        "mloop.champion": champion,
        "mloop.reasons": "; ".join(decision.reasons)[:5000],
        "mloop.blockers": "; ".join(decision.blockers)[:5000],
        "mloop.decision_json": json.dumps({**decision.to_dict(), **extra}, default=str)[:5000],
    }
    run = client.create_run(experiment, tags=tags, run_name=f"decision v{champion}")
    metrics: dict[str, float] = {"retrain": float(decision.retrain)}
    if window is not None:
        metrics["n_drifted"] = float(window.drift.n_drifted)
        if window.decay is not None:
            metrics["decay"] = window.decay
        metrics |= {f"live_{k}": v for k, v in window.quality.items()}
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id)


__all__ = ["DECISION_EVENT", "controller_experiment", "record_decision"]

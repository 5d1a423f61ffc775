"""Promotion through a gate, forced promotion and rollback; every decision is tagged and audited."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from threadpoolctl import threadpool_limits

from mloop.core.gate import GateCheck, GateDecision, decide
from mloop.core.metrics import score_model
from mloop.data.contract import Contract, coerce_frame, load_contract
from mloop.errors import RegistryError
from mloop.project import Project
from mloop.registry import audit
from mloop.registry.versions import (
    CHALLENGER,
    CHAMPION,
    VersionInfo,
    alias_version,
    download_run_artifact,
    get_version,
    list_versions,
    load_model,
    set_alias,
    set_tag,
)


def version_contract(project: Project, info: VersionInfo) -> Contract:
    """The contract a version was trained with: its own input schema, not today's file."""
    return load_contract(Path(download_run_artifact(project, info.run_id, "contract.yaml")))


def holdout_of(project: Project, info: VersionInfo) -> pd.DataFrame:
    return pd.read_parquet(download_run_artifact(project, info.run_id, "holdout.parquet"))


def _metric_on(project: Project, info: VersionInfo, holdout: pd.DataFrame, metric: str) -> float:
    config = project.config
    contract = version_contract(project, info)
    missing = [c for c in contract.features if c not in holdout.columns]
    if missing:
        raise RegistryError(
            f"version {info.version} needs columns the holdout lacks ({', '.join(missing[:5])}); "
            "the input schemas are incompatible, promote with --force if intended."
        )
    X = coerce_frame(holdout, contract)
    y = holdout[config.data.target]
    y = y.astype(str) if config.task == "classification" else y.astype(float)
    model = load_model(project, info.version)
    with threadpool_limits(config.train.threads or None):
        values = score_model(model, X, y, config.task)
    if metric not in values:
        raise RegistryError(f"metric {metric!r} cannot be computed for version {info.version} on this holdout.")
    return values[metric]


def evaluate_gate(project: Project, version: str) -> GateDecision:
    """Score the challenger and the champion on the challenger's holdout and decide."""
    challenger = get_version(project, version)
    champion = alias_version(project, CHAMPION)
    metric = project.config.primary_metric
    holdout = holdout_of(project, challenger)
    challenger_value = _metric_on(project, challenger, holdout, metric)
    champion_value = None
    if champion is not None and champion.version != challenger.version:
        champion_value = _metric_on(project, champion, holdout, metric)
    return decide(
        metric,
        challenger_value,
        champion_value,
        champion.version if champion and champion_value is not None else None,
        project.config.gate.min_improvement,
    )


def promote(project: Project, version: str | None = None, force: bool = False, reason: str = "") -> GateDecision:
    """Gate ``version`` (default: the newest) and make it champion if it passes, or if forced."""
    versions = list_versions(project)
    if not versions:
        raise RegistryError("No registered versions; run `mloop register` first.")
    target = get_version(project, version) if version else versions[-1]
    previous = alias_version(project, CHAMPION)
    if previous is not None and previous.version == target.version:
        raise RegistryError(f"version {target.version} is already the champion.")
    try:
        decision = evaluate_gate(project, target.version)
    except RegistryError as exc:
        if not force:
            raise
        # Forcing a version the gate cannot even compare (say, a new input schema) is the override's job.
        decision = GateDecision(
            promote=False,
            metric=project.config.primary_metric,
            challenger_value=float("nan"),
            champion_value=None,
            champion_version=previous.version if previous else None,
            min_improvement=project.config.gate.min_improvement,
            checks=[GateCheck("comparable", False, exc.message)],
        )
    set_tag(project, target.version, "mloop.gate", json.dumps(decision.to_dict(), default=str))
    promoted = decision.promote or force
    if promoted:
        set_alias(project, target.version, CHAMPION)
    else:
        set_alias(project, target.version, CHALLENGER)
    audit.append(
        project.audit_log,
        "promote" if promoted else "reject",
        model=project.name,
        version=target.version,
        previous=previous.version if previous else None,
        forced=force and not decision.promote,
        reason=reason or decision.reason,
        gate=decision.to_dict(),
    )
    return decision


def rollback(project: Project, reason: str = "") -> tuple[str, str]:
    """Give the champion alias back to the version it was taken from; returns (from, to)."""
    current = alias_version(project, CHAMPION)
    if current is None:
        raise RegistryError("There is no champion to roll back.")
    promotions = [
        e
        for e in audit.read(project.audit_log)
        if e["event"] in ("promote", "rollback") and e.get("model") == project.name
    ]
    for event in reversed(promotions):
        if event["event"] == "promote" and event["version"] == current.version:
            target = event.get("previous")
            break
    else:
        target = None
    if not target:
        raise RegistryError(f"version {current.version} has no earlier champion to roll back to.")
    set_alias(project, str(target), CHAMPION)
    audit.append(
        project.audit_log,
        "rollback",
        model=project.name,
        version=str(target),
        previous=current.version,
        reason=reason,
    )
    return current.version, str(target)

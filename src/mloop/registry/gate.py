"""Promotion through a gate, forced promotion and rollback; every decision is tagged and audited."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits

from mloop import failpoints
from mloop.config import GateConfig
from mloop.core.gate import (
    BehaviourResult,
    GateCheck,
    GateDecision,
    behaviour_result,
    bound_checks,
    decide,
    latency_check,
    schema_check,
    schema_problems,
    slice_check,
)
from mloop.core.metrics import slice_metrics, task_metrics
from mloop.core.shadow import shadow_checks
from mloop.data.contract import Contract, coerce_frame, load_contract
from mloop.errors import PredictionLogError, RegistryError
from mloop.project import Project
from mloop.registry import audit
from mloop.registry.scoring import mean_prediction, predict, single_row_latency_ms
from mloop.registry.versions import (
    CHALLENGER,
    CHAMPION,
    FAILED,
    STATUS_TAG,
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


@dataclass(frozen=True)
class Evaluation:
    """One model scored on one holdout: overall metrics and the metrics of each configured slice."""

    metrics: dict[str, float]
    slices: dict[str, dict[str, dict[str, float]]]


def evaluate_model(
    model: Any, X: pd.DataFrame, y: pd.Series, holdout: pd.DataFrame, task: str, slices: list[str], min_rows: int
) -> Evaluation:
    """Score ``model`` on ``X``; each slice column is read from ``holdout`` (it may not be an input)."""
    predictions = predict(model, X, task)
    per_slice = {
        column: slice_metrics(y, predictions, holdout[column].to_numpy(), task, min_rows)
        for column in slices
        if column in holdout.columns
    }
    return Evaluation(task_metrics(y, predictions, task), per_slice)


def behaviour_results(
    model: Any, X: pd.DataFrame, task: str, specs: list[GateConfig.Behaviour]
) -> list[BehaviourResult]:
    """Run the configured behavioural checks on one model and holdout (training and the gate share this)."""
    out = []
    for spec in specs:
        try:
            mean = mean_prediction(model, task, spec.target_class)
        except ValueError as exc:
            nan = float("nan")
            out.append(BehaviourResult(spec.label, spec.feature, "", spec.expect, nan, nan, spec.tolerance, str(exc)))
            continue
        out.append(
            behaviour_result(
                mean,
                X,
                name=spec.label,
                feature=spec.feature,
                factor=spec.factor,
                delta=spec.delta,
                expect=spec.expect,
                tolerance=spec.tolerance,
            )
        )
    return out


def _schema(contract: Contract) -> dict[str, tuple[str, bool]]:
    return {name: (contract.columns[name].dtype, contract.columns[name].nullable) for name in contract.features}


def _score(
    project: Project, info: VersionInfo, contract: Contract, holdout: pd.DataFrame, y: pd.Series
) -> tuple[Any, Evaluation]:
    missing = [c for c in contract.features if c not in holdout.columns]
    if missing:
        raise RegistryError(
            f"version {info.version} needs columns the holdout lacks ({', '.join(missing[:5])}); "
            "the input schemas are incompatible, promote with --force if intended."
        )
    gate_config = project.config.gate
    model = load_model(project, info.version)
    X = coerce_frame(holdout, contract)
    evaluation = evaluate_model(
        model,
        X,
        y,
        holdout,
        project.config.task,
        gate_config.slices,
        gate_config.min_slice_rows,
    )
    return model, evaluation


def _challenger_checks(
    project: Project, model: Any, X: pd.DataFrame, mine: Evaluation, theirs: Evaluation | None
) -> list[GateCheck]:
    config = project.config
    gate_config = config.gate
    metric = config.primary_metric
    checks = bound_checks(mine.metrics, gate_config.floors, gate_config.ceilings)
    for column in gate_config.slices:
        if column not in mine.slices:
            checks.append(
                GateCheck(f"slice.{column}", False, f"slice column {column!r} (gate.slices) is not in the holdout")
            )
            continue
        champion_slices = theirs.slices.get(column) if theirs is not None else None
        checks.append(
            slice_check(metric, column, mine.slices[column], champion_slices, gate_config.max_slice_regression)
        )
    if gate_config.max_latency_ms is not None:
        checks.append(latency_check(single_row_latency_ms(model, X), gate_config.max_latency_ms))
    checks.extend(r.check() for r in behaviour_results(model, X, config.task, gate_config.behaviour))
    return checks


def evaluate_gate(project: Project, version: str) -> GateDecision:
    """Score the challenger and the champion on the challenger's holdout and run every configured check."""
    config = project.config
    challenger = get_version(project, version)
    champion = alias_version(project, CHAMPION)
    if champion is not None and champion.version == challenger.version:
        champion = None
    metric = config.primary_metric
    holdout = holdout_of(project, challenger)
    contract = version_contract(project, challenger)
    y = contract.target_values(holdout, config.task)  # the holdout's labels, named by the contract it was cut with
    with threadpool_limits(config.train.threads or None):
        model, mine = _score(project, challenger, contract, holdout, y)
        if metric not in mine.metrics:
            raise RegistryError(f"metric {metric!r} cannot be computed for version {version} on this holdout.")
        checks: list[GateCheck] = []
        theirs: Evaluation | None = None
        if champion is not None:
            champion_contract = version_contract(project, champion)
            if champion_contract.target != contract.target:
                raise RegistryError(
                    f"version {version} predicts {contract.target!r} but champion v{champion.version} predicts "
                    f"{champion_contract.target!r} (the contract's target changed): their metrics are not "
                    "comparable; promote with --force if intended."
                )
            if config.gate.schema_compatible:
                problems = schema_problems(_schema(contract), _schema(champion_contract))
                checks.append(schema_check(problems, champion.version))
            _, theirs = _score(project, champion, champion_contract, holdout, y)
            if metric not in theirs.metrics:
                raise RegistryError(f"metric {metric!r} cannot be computed for champion v{champion.version}.")
        checks.extend(_challenger_checks(project, model, coerce_frame(holdout, contract), mine, theirs))
    if champion is not None:
        checks.extend(_shadow_checks(project, challenger.version, champion.version))
    return decide(
        metric,
        mine.metrics[metric],
        theirs.metrics[metric] if theirs is not None else None,
        champion.version if champion is not None else None,
        config.gate.min_improvement,
        checks,
    )


def _shadow_checks(project: Project, challenger: str, champion: str) -> list[GateCheck]:
    """``gate.shadow``: the challenger's shadow evidence against the champion, when any is required."""
    from mloop.registry.shadow import version_evidence  # reads the prediction log: only when configured

    config = project.config.gate.shadow
    if config.min_requests == 0 and config.max_quality_loss is None:
        return []
    try:
        evidence = version_evidence(project, challenger, champion)
    except PredictionLogError as exc:
        return [GateCheck("shadow", False, f"cannot read the shadow evidence (gate.shadow): {exc.message}")]
    return shadow_checks(
        evidence,
        champion_version=champion,
        metric=project.config.primary_metric,
        min_requests=config.min_requests,
        max_quality_loss=config.max_quality_loss,
    )


def audited_champion(project: Project) -> str | None:
    """The champion the audit log says: the version of its last promotion or rollback of this model."""
    for entry in reversed(audit.read(project.audit_log)):
        if entry.get("event") in ("promote", "rollback") and entry.get("model") == project.name:
            return str(entry["version"])
    return None


def _finish_promotion(project: Project, target: VersionInfo, audited: str | None) -> GateDecision | None:
    """A promotion of ``target`` killed after moving the alias and before its audit entry: write the entry
    (``recovered``) and return the decision stored on the version; None if there is nothing to finish."""
    stored = target.tags.get("mloop.gate")
    if audited == target.version or stored is None:
        return None
    decision = GateDecision.from_dict(json.loads(stored))
    audit.append(
        project.audit_log,
        "promote",
        model=project.name,
        version=target.version,
        previous=audited,
        forced=not decision.promote,
        reason="recovered: the champion alias had moved to this version, but its audit entry was not written "
        "(the promoting process stopped in between)",
        gate=decision.to_dict(),
        recovered=True,
    )
    return decision


def promote(project: Project, version: str | None = None, force: bool = False, reason: str = "") -> GateDecision:
    """Gate ``version`` (default: the newest) and make it champion if it passes, or if forced.

    Run again after a crash between moving the alias and writing the audit entry, it writes the entry
    (marked ``recovered``) instead of refusing a version that is already champion.
    """
    versions = [v for v in list_versions(project) if v.tags.get(STATUS_TAG) != FAILED]
    if not versions:
        raise RegistryError("No registered versions; run `mloop register` first.")
    target = get_version(project, version) if version else versions[-1]
    if target.tags.get(STATUS_TAG) == FAILED:
        raise RegistryError(f"version {target.version} is marked failed (an interrupted registration); register again")
    previous = alias_version(project, CHAMPION)
    if previous is not None and previous.version == target.version:
        finished = _finish_promotion(project, target, audited_champion(project))
        if finished is not None:
            return finished
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
    failpoints.hit("promote:after-gate")
    promoted = decision.promote or force
    if promoted:
        set_alias(project, target.version, CHAMPION)
    else:
        set_alias(project, target.version, CHALLENGER)
    failpoints.hit("promote:after-alias")
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
    last = promotions[-1] if promotions else None
    if last is not None and str(last["version"]) != current.version and last.get("previous") == current.version:
        # A rollback killed after moving the alias back and before its entry: finish it, do not roll back twice.
        audit.append(
            project.audit_log,
            "rollback",
            model=project.name,
            version=current.version,
            previous=str(last["version"]),
            reason=reason
            or "recovered: the champion alias had been rolled back, but the audit entry was not "
            "written (the process stopped in between)",
            recovered=True,
        )
        return str(last["version"]), current.version
    for event in reversed(promotions):
        if event["event"] == "promote" and event["version"] == current.version:
            target = event.get("previous")
            break
    else:
        target = None
    if not target:
        raise RegistryError(f"version {current.version} has no earlier champion to roll back to.")
    set_alias(project, str(target), CHAMPION)
    failpoints.hit("rollback:after-alias")
    audit.append(
        project.audit_log,
        "rollback",
        model=project.name,
        version=str(target),
        previous=current.version,
        reason=reason,
    )
    return current.version, str(target)

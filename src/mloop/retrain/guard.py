"""A retrained challenger must also hold up on data the loop did not collect itself.

The gate scores a challenger on its own holdout, which for a retrain is cut from the freshest rows:
labelled production traffic. If those labels are corrupted (a broken feedback job, a unit change,
shuffled ids), the challenger's holdout is corrupted in the same way and a model that learned the
corruption can win there. So before the gate, the controller scores both models on the champion's
holdout, which predates any production label, and rejects a challenger that is clearly worse on it.
"""

from __future__ import annotations

import json

import pandas as pd
from threadpoolctl import threadpool_limits

from mloop.core.gate import GateCheck, GateDecision
from mloop.core.metrics import GREATER_IS_BETTER
from mloop.data.contract import coerce_frame
from mloop.project import Project
from mloop.registry import audit
from mloop.registry.gate import holdout_of, version_contract
from mloop.registry.scoring import score_model
from mloop.registry.versions import CHALLENGER, VersionInfo, load_model, set_alias, set_tag


def _metric(project: Project, info: VersionInfo, holdout: pd.DataFrame, y: pd.Series) -> float:
    config = project.config
    contract = version_contract(project, info)
    with threadpool_limits(config.train.threads or None):
        values = score_model(load_model(project, info.version), coerce_frame(holdout, contract), y, config.task)
    return values[config.primary_metric]


def trusted_holdout_check(project: Project, champion: VersionInfo, challenger: VersionInfo) -> GateCheck:
    """Pass unless the challenger is worse than the champion on the champion's holdout by more than the limit."""
    metric = project.config.primary_metric
    limit = project.config.retrain.max_reference_regression
    holdout = holdout_of(project, champion)
    # The labels as the champion's contract (the one its holdout was cut with) names and types them.
    y = version_contract(project, champion).target_values(holdout, project.config.task)
    theirs = _metric(project, champion, holdout, y)
    mine = _metric(project, challenger, holdout, y)
    worse = (theirs - mine) / abs(theirs) if GREATER_IS_BETTER[metric] else (mine - theirs) / abs(theirs)
    passed = worse <= limit if theirs else True
    detail = (
        f"on v{champion.version}'s holdout (data before any production label) {metric} is {mine:,.4g} vs "
        f"{theirs:,.4g}: {worse:+.1%} worse (limit {limit:.0%})"
    )
    return GateCheck("trusted_holdout", passed, detail, {"challenger": mine, "champion": theirs, "worse": worse})


def reject(
    project: Project, champion: VersionInfo, challenger: VersionInfo, check: GateCheck, reason: str
) -> GateDecision:
    """Record a rejection the way the gate does: tag, challenger alias, audit event."""
    decision = GateDecision(
        promote=False,
        metric=project.config.primary_metric,
        challenger_value=float(check.values.get("challenger", float("nan"))),
        champion_value=check.values.get("champion"),
        champion_version=champion.version,
        min_improvement=project.config.gate.min_improvement,
        checks=[check],
    )
    set_tag(project, challenger.version, "mloop.gate", json.dumps(decision.to_dict(), default=str))
    set_alias(project, challenger.version, CHALLENGER)
    audit.append(
        project.audit_log,
        "reject",
        model=project.name,
        version=challenger.version,
        previous=champion.version,
        forced=False,
        reason=f"{reason}: {decision.reason}",
        gate=decision.to_dict(),
    )
    return decision

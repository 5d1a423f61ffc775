"""When to retrain: a pure decision over monitoring results and the retrain settings."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetrainDecision:
    retrain: bool
    reasons: list[str] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)


def decide(
    *,
    dataset_drift: bool,
    drifted_features: list[str],
    decay: float | None,
    metric: str,
    new_labels: int,
    on_drift: bool,
    max_quality_decay: float,
    min_new_labels: int,
) -> RetrainDecision:
    """Retrain on drift (if enabled) or quality decay, once enough new labelled rows exist to learn from."""
    reasons: list[str] = []
    if on_drift and dataset_drift:
        shown = ", ".join(drifted_features[:5]) + ("…" if len(drifted_features) > 5 else "")
        reasons.append(f"data drift on {len(drifted_features)} feature(s): {shown}")
    if decay is not None and decay > max_quality_decay:
        reasons.append(f"{metric} is {decay:.1%} worse than at training time (limit {max_quality_decay:.1%})")
    blockers = []
    if new_labels < min_new_labels:
        blockers.append(f"only {new_labels} labelled production rows; retrain.min_new_labels is {min_new_labels}")
    return RetrainDecision(retrain=bool(reasons) and not blockers, reasons=reasons, blockers=blockers)

"""When to retrain: a pure decision over monitoring results and the retrain settings.

Triggers (any one suffices): data drift on at least ``monitor.min_drifted_features`` features for
``drift_windows`` consecutive windows (a window whose features drift together counts, with
``on_multivariate_drift``), prediction drift, quality decay beyond the limit (live, or estimated
before labels when ``max_estimated_decay`` is set), or a cron
schedule that came due. Blocker: fewer than ``min_new_labels`` labelled production rows since the last
retrain, since a model retrained on nothing new cannot be better.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class RetrainDecision:
    retrain: bool
    reasons: list[str] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def drift_streak(windows: list[bool]) -> int:
    """How many of the latest windows (oldest first) drifted in a row."""
    streak = 0
    for drifted in reversed(windows):
        if not drifted:
            break
        streak += 1
    return streak


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
    streak: int | None = None,
    drift_windows: int = 1,
    prediction_drift: bool = False,
    on_prediction_drift: bool = False,
    schedule_due: str | None = None,
    estimated_decay: float | None = None,
    max_estimated_decay: float | None = None,
    multivariate_drift: str | None = None,
    on_multivariate_drift: bool = False,
) -> RetrainDecision:
    """Retrain on a trigger once enough new labelled rows exist to learn from.

    ``streak`` is the number of consecutive drifted windows up to and including this one (default: 1
    if this window drifted); ``schedule_due`` describes the cron time that came due, if one did;
    ``multivariate_drift`` says what drifted when the window's features drifted together.
    """
    together = on_multivariate_drift and multivariate_drift is not None
    streak = (1 if dataset_drift or together else 0) if streak is None else streak
    reasons: list[str] = []
    if on_drift and together and not dataset_drift and streak >= drift_windows:
        run = f" for {streak} consecutive windows" if drift_windows > 1 else ""
        reasons.append(f"the features drifted together{run}: {multivariate_drift}")
    if on_drift and dataset_drift and streak >= drift_windows:
        more = len(drifted_features) - 5
        shown = ", ".join(drifted_features[:5]) + (f" and {more} more" if more > 0 else "")
        run = f" for {streak} consecutive windows" if drift_windows > 1 else ""
        reasons.append(f"data drift on {len(drifted_features)} feature(s){run}: {shown}")
    if on_prediction_drift and prediction_drift:
        reasons.append("the predictions drifted from their training distribution")
    if decay is not None and decay > max_quality_decay:
        reasons.append(f"{metric} is {decay:.1%} worse than at training time (limit {max_quality_decay:.1%})")
    if max_estimated_decay is not None and estimated_decay is not None and estimated_decay > max_estimated_decay:
        reasons.append(
            f"estimated {metric} (before labels) is {estimated_decay:.1%} worse than at training time "
            f"(limit {max_estimated_decay:.1%})"
        )
    if schedule_due:
        reasons.append(f"scheduled: {schedule_due}")
    blockers = []
    if new_labels < min_new_labels:
        blockers.append(f"only {new_labels} labelled production rows; retrain.min_new_labels is {min_new_labels}")
    return RetrainDecision(retrain=bool(reasons) and not blockers, reasons=reasons, blockers=blockers)

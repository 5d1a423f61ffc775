"""The promotion gate as a pure decision over numbers measured on one holdout."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mloop.core.metrics import GREATER_IS_BETTER, is_better


@dataclass(frozen=True)
class GateCheck:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class GateDecision:
    """Whether a challenger may become champion, with every check and its numbers."""

    promote: bool
    metric: str
    challenger_value: float
    champion_value: float | None
    champion_version: str | None
    min_improvement: float
    checks: list[GateCheck] = field(default_factory=list)

    @property
    def reason(self) -> str:
        failed = [c.detail for c in self.checks if not c.passed]
        return "; ".join(failed) if failed else "; ".join(c.detail for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reason"] = self.reason
        return data


def decide(
    metric: str,
    challenger_value: float,
    champion_value: float | None,
    champion_version: str | None,
    min_improvement: float,
) -> GateDecision:
    """Promote when there is no champion yet, or the challenger wins on ``metric`` by the margin."""
    direction = "higher" if GREATER_IS_BETTER[metric] else "lower"
    checks: list[GateCheck] = []
    finite = challenger_value == challenger_value and abs(challenger_value) != float("inf")
    checks.append(GateCheck("finite_metric", finite, f"{metric}={challenger_value:.6g} is a finite number"))
    if champion_value is None:
        checks.append(GateCheck("beats_champion", True, "no champion yet: the first version becomes champion"))
    else:
        wins = finite and is_better(metric, challenger_value, champion_value, min_improvement)
        verb = "beats" if wins else "does not beat"
        checks.append(
            GateCheck(
                "beats_champion",
                wins,
                f"challenger {metric}={challenger_value:.6g} {verb} champion v{champion_version} "
                f"{metric}={champion_value:.6g} on the same holdout ({direction} is better, "
                f"margin {min_improvement:.1%})",
            )
        )
    return GateDecision(
        promote=all(c.passed for c in checks),
        metric=metric,
        challenger_value=challenger_value,
        champion_value=champion_value,
        champion_version=champion_version,
        min_improvement=min_improvement,
        checks=checks,
    )

"""The promotion gate as a pure decision over numbers measured on one holdout.

Each check is a ``GateCheck`` carrying its numbers, so the decision stored on a version and in the
audit log says not only what failed but by how much.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd

from mloop.core.metrics import GREATER_IS_BETTER, is_better


@dataclass(frozen=True)
class GateCheck:
    name: str
    passed: bool
    detail: str
    values: dict[str, Any] = field(default_factory=dict)


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

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reason"] = self.reason
        data["failed"] = self.failed
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateDecision:
        """The decision ``to_dict`` wrote (its derived ``reason`` and ``failed`` are recomputed)."""
        checks = [GateCheck(c["name"], c["passed"], c["detail"], c.get("values", {})) for c in data.get("checks", [])]
        return cls(
            promote=bool(data["promote"]),
            metric=str(data["metric"]),
            challenger_value=float(data["challenger_value"]),
            champion_value=None if data.get("champion_value") is None else float(data["champion_value"]),
            champion_version=data.get("champion_version"),
            min_improvement=float(data["min_improvement"]),
            checks=checks,
        )


def _finite(value: float) -> bool:
    return math.isfinite(value)


def decide(
    metric: str,
    challenger_value: float,
    champion_value: float | None,
    champion_version: str | None,
    min_improvement: float,
    checks: Sequence[GateCheck] = (),
) -> GateDecision:
    """Promote when the challenger wins on ``metric`` by the margin (or there is no champion yet) and
    every other check in ``checks`` passed."""
    direction = "higher" if GREATER_IS_BETTER[metric] else "lower"
    finite = _finite(challenger_value)
    found = [GateCheck("finite_metric", finite, f"{metric}={challenger_value:.6g} is a finite number")]
    if champion_value is None:
        found.append(GateCheck("beats_champion", True, "no champion yet: the first version becomes champion"))
    else:
        wins = finite and is_better(metric, challenger_value, champion_value, min_improvement)
        verb = "beats" if wins else "does not beat"
        found.append(
            GateCheck(
                "beats_champion",
                wins,
                f"challenger {metric}={challenger_value:.6g} {verb} champion v{champion_version} "
                f"{metric}={champion_value:.6g} on the same holdout ({direction} is better, "
                f"margin {min_improvement:.1%})",
                {"challenger": challenger_value, "champion": champion_value, "margin": min_improvement},
            )
        )
    found.extend(checks)
    return GateDecision(
        promote=all(c.passed for c in found),
        metric=metric,
        challenger_value=challenger_value,
        champion_value=champion_value,
        champion_version=champion_version,
        min_improvement=min_improvement,
        checks=found,
    )


def bound_checks(
    metrics: Mapping[str, float], floors: Mapping[str, float], ceilings: Mapping[str, float]
) -> list[GateCheck]:
    """Absolute floors (metric >= floor) and ceilings (metric <= ceiling) on the challenger alone."""
    out: list[GateCheck] = []
    for kind, bounds in (("floor", floors), ("ceiling", ceilings)):
        for name, bound in bounds.items():
            value = metrics.get(name, math.nan)
            ok = _finite(value) and (value >= bound if kind == "floor" else value <= bound)
            sign = ">=" if kind == "floor" else "<="
            verb = "meets" if ok else "fails"
            out.append(
                GateCheck(
                    f"{kind}.{name}",
                    ok,
                    f"{name}={value:.6g} {verb} the {kind} {sign} {bound:.6g}",
                    {"value": value, kind: bound},
                )
            )
    return out


def relative_regression(metric: str, challenger: float, champion: float) -> float:
    """How much worse ``challenger`` is than ``champion``, relative to the champion (<= 0: not worse)."""
    worse_by = champion - challenger if GREATER_IS_BETTER[metric] else challenger - champion
    return worse_by / max(abs(champion), 1e-12)


def slice_check(
    metric: str,
    column: str,
    challenger: Mapping[str, Mapping[str, float]],
    champion: Mapping[str, Mapping[str, float]] | None,
    max_regression: float,
) -> GateCheck:
    """No value of ``column`` may be scored worse than under the champion by more than ``max_regression``."""
    name = f"slice.{column}"
    if champion is None:
        return GateCheck(name, True, f"no champion to compare {column} slices with", {"slices": len(challenger)})
    rows: list[dict[str, Any]] = []
    for key, scores in challenger.items():
        theirs = champion.get(key, {})
        if metric in scores and metric in theirs:
            regression = relative_regression(metric, scores[metric], theirs[metric])
            rows.append(
                {
                    "slice": key,
                    "challenger": scores[metric],
                    "champion": theirs[metric],
                    "rows": int(scores.get("rows", 0)),
                    "regression": regression if _finite(regression) else math.inf,
                }
            )
    if not rows:
        return GateCheck(name, True, f"no {column} slice has enough holdout rows to judge", {"slices": 0})
    rows.sort(key=lambda r: -r["regression"])
    worst = rows[0]
    bad = [r for r in rows if r["regression"] > max_regression]
    values = {"max_regression": max_regression, "judged": len(rows), "worst": worst, "failing": bad}
    if bad:
        names = ", ".join(f"{r['slice']} ({r['regression']:+.1%})" for r in bad[:5])
        return GateCheck(
            name,
            False,
            f"{len(bad)} {column} slice(s) worse than under champion by more than {max_regression:.0%} "
            f"on {metric}: {names}",
            values,
        )
    return GateCheck(
        name,
        True,
        f"no {column} slice worse than {max_regression:.0%} on {metric} (worst {worst['slice']} "
        f"{worst['regression']:+.1%})",
        values,
    )


def latency_check(latency_ms: float, budget_ms: float) -> GateCheck:
    ok = _finite(latency_ms) and latency_ms <= budget_ms
    verb = "within" if ok else "over"
    return GateCheck(
        "latency",
        ok,
        f"single-row predict {latency_ms:.3g} ms is {verb} the budget of {budget_ms:.3g} ms",
        {"latency_ms": latency_ms, "budget_ms": budget_ms},
    )


def schema_check(problems: Sequence[str], champion_version: str | None) -> GateCheck:
    if champion_version is None:
        return GateCheck("schema", True, "no champion whose input schema must be kept")
    if problems:
        return GateCheck(
            "schema",
            False,
            f"input schema incompatible with champion v{champion_version}: {'; '.join(problems[:5])}",
            {"problems": list(problems)},
        )
    return GateCheck("schema", True, f"input schema compatible with champion v{champion_version}")


def schema_problems(challenger: Mapping[str, tuple[str, bool]], champion: Mapping[str, tuple[str, bool]]) -> list[str]:
    """Why requests valid for the champion would not be for the challenger.

    Both map feature -> (dtype, nullable). The challenger may drop inputs, never require new ones, change
    a type, or start refusing nulls the champion accepted.
    """
    problems: list[str] = []
    for name, (dtype, nullable) in challenger.items():
        if name not in champion:
            if not nullable:
                problems.append(f"new required input {name!r}")
            continue
        old_dtype, old_nullable = champion[name]
        if dtype != old_dtype:
            problems.append(f"{name!r} changed type {old_dtype} -> {dtype}")
        elif old_nullable and not nullable:
            problems.append(f"{name!r} no longer accepts missing values")
    return problems


Expect = Literal["not_lower", "not_higher"]


@dataclass(frozen=True)
class BehaviourResult:
    """The mean prediction on the holdout before and after changing one feature."""

    name: str
    feature: str
    change: str
    expect: Expect
    before: float
    after: float
    tolerance: float
    error: str | None = None

    @property
    def moved(self) -> float:
        return (self.after - self.before) / max(abs(self.before), 1e-12)

    @property
    def passed(self) -> bool:
        if self.error is not None or not (_finite(self.before) and _finite(self.after)):
            return False
        return self.moved >= -self.tolerance if self.expect == "not_lower" else self.moved <= self.tolerance

    def check(self) -> GateCheck:
        values = {
            "feature": self.feature,
            "change": self.change,
            "expect": self.expect,
            "mean_before": self.before,
            "mean_after": self.after,
            "moved": self.moved if self.error is None else None,
            "tolerance": self.tolerance,
        }
        if self.error is not None:
            return GateCheck(f"behaviour.{self.name}", False, f"behaviour {self.name}: {self.error}", values)
        verdict = "holds" if self.passed else "violated"
        word = "lower" if self.expect == "not_lower" else "higher"
        return GateCheck(
            f"behaviour.{self.name}",
            self.passed,
            f"behaviour {self.name} {verdict}: {self.feature} {self.change} moves the mean prediction "
            f"{self.before:.6g} -> {self.after:.6g} ({self.moved:+.2%}; must not go {word})",
            values,
        )


def behaviour_result(
    mean_prediction: Callable[[pd.DataFrame], float],
    X: pd.DataFrame,
    *,
    name: str,
    feature: str,
    factor: float | None,
    delta: float | None,
    expect: Expect,
    tolerance: float = 0.0,
) -> BehaviourResult:
    """Change ``feature`` on every row of ``X`` (times ``factor`` or plus ``delta``) and compare means."""
    change = f"x{factor:g}" if factor is not None else f"{delta or 0.0:+g}"
    nan = math.nan
    if feature not in X.columns:
        return BehaviourResult(name, feature, change, expect, nan, nan, tolerance, f"{feature!r} is not an input")
    column = X[feature]
    if not pd.api.types.is_numeric_dtype(column):
        return BehaviourResult(name, feature, change, expect, nan, nan, tolerance, f"{feature!r} is not numeric")
    values = column.astype(float)
    changed = values * factor if factor is not None else values + (delta or 0.0)
    moved = X.assign(**{feature: changed})  # floats: an integer count times 1.2 stays meaningful to a model
    return BehaviourResult(name, feature, change, expect, mean_prediction(X), mean_prediction(moved), tolerance)

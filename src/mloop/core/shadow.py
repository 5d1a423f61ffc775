"""Shadow evidence: a challenger's predictions on live requests beside the champion's, as numbers.

Pure: given the two models' predictions on the same requests (paired by request id) and the labels
fed back for some of them, how often they agree, how far apart their predictions are, how far the
challenger's prediction distribution has moved from the champion's (the drift statistics of
:mod:`mloop.core.drift`, the champion's predictions as the reference) and how good each was on the
labelled requests (:mod:`mloop.core.metrics`). The gate, the report, ``mloop models`` and the
server's ``/metrics`` all read these numbers.

Agreement: classification, the same predicted label; regression, a challenger prediction within
``tolerance`` (relative) of the champion's. A pair with a missing or non-finite prediction on either
side never agrees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from mloop.core.drift import (
    DriftThresholds,
    bin_counts_sorted,
    categorical_drift,
    numeric_drift,
    quantile_edges,
    sorted_finite,
)
from mloop.core.gate import GateCheck, relative_regression
from mloop.core.metrics import GREATER_IS_BETTER, classification_metrics, regression_metrics

#: Regression: a challenger prediction within this relative difference of the champion's agrees with it.
DEFAULT_TOLERANCE = 0.05
#: Quantile bins of the champion's predictions that the challenger's PSI is computed over.
BINS = 10
_TINY = 1e-12  # a champion prediction of 0 is compared on an absolute scale of this


@dataclass(frozen=True)
class ShadowEvidence:
    """The challenger's shadow predictions compared with the champion's on ``requests`` paired requests.

    ``agreement`` is a share (None with no pairs). Regression also has ``mean_abs_difference`` and
    ``mean_relative_difference`` (challenger vs champion, over the pairs where both are finite).
    ``drift`` holds the statistics of the challenger's predictions against the champion's (``psi`` and
    ``ks``/``ks_pvalue`` for regression, ``psi`` and ``chi2``/``chi2_pvalue`` for classification) and
    ``drifted`` their verdict. ``champion_quality`` and ``challenger_quality`` are the task's metrics on
    the same ``labelled`` requests.
    """

    task: str
    requests: int
    agreed: int
    tolerance: float
    mean_abs_difference: float | None = None
    mean_relative_difference: float | None = None
    drift: dict[str, float] = field(default_factory=dict)
    drifted: bool | None = None
    labelled: int = 0
    champion_quality: dict[str, float] = field(default_factory=dict)
    challenger_quality: dict[str, float] = field(default_factory=dict)

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.requests if self.requests else None

    def quality_loss(self, metric: str) -> float | None:
        """How much worse the challenger scored ``metric`` than the champion on the labelled requests,
        relative to the champion (0.05 = 5% worse; <= 0: not worse); None where either lacks it."""
        mine, theirs = self.challenger_quality.get(metric), self.champion_quality.get(metric)
        if mine is None or theirs is None or metric not in GREATER_IS_BETTER:
            return None
        loss = relative_regression(metric, mine, theirs)
        return loss if math.isfinite(loss) else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["agreement"] = self.agreement
        return data


def _floats(values: Sequence[Any] | NDArray[Any] | pd.Series) -> NDArray[np.float64]:
    """Numbers as float64; anything that is not a number (None, text) is NaN."""
    series = pd.Series(np.asarray(values, dtype=object).ravel())
    return np.asarray(pd.to_numeric(series, errors="coerce"), dtype=np.float64)


def _labels(values: Sequence[Any] | NDArray[Any] | pd.Series) -> list[str | None]:
    """Class labels as text (JSON may give 1 on one side and "1" on the other); missing ones as None."""
    out: list[str | None] = []
    for value in np.asarray(values, dtype=object).ravel():
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        out.append(None if missing else str(value))
    return out


def agreeing(
    champion: Sequence[Any] | NDArray[Any] | pd.Series,
    challenger: Sequence[Any] | NDArray[Any] | pd.Series,
    task: str,
    tolerance: float = DEFAULT_TOLERANCE,
) -> NDArray[np.bool_]:
    """For each pair, whether the challenger agrees with the champion (see the module's docstring)."""
    if len(champion) != len(challenger):
        raise ValueError(f"{len(champion)} champion predictions but {len(challenger)} challenger predictions")
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be zero or more, not {tolerance}")
    if task == "classification":
        theirs, mine = _labels(champion), _labels(challenger)
        return np.array([a is not None and a == b for a, b in zip(theirs, mine, strict=True)], dtype=bool)
    if task != "regression":
        raise ValueError(f"unknown task {task!r}; expected 'regression' or 'classification'")
    a, b = _floats(champion), _floats(challenger)
    with np.errstate(invalid="ignore", over="ignore"):
        relative = np.abs(b - a) / np.maximum(np.abs(a), _TINY)
        return np.asarray(np.isfinite(relative) & (relative <= tolerance), dtype=bool)


def _regression_drift(
    champion: NDArray[np.float64], challenger: NDArray[np.float64], thresholds: DriftThresholds
) -> tuple[dict[str, float], bool | None]:
    ordered, _ = sorted_finite(champion)
    ordered = ordered[np.isfinite(ordered)]
    if ordered.size == 0 or not np.isfinite(challenger).any():
        return {}, None
    edges = quantile_edges(ordered, BINS)
    found = numeric_drift(
        "prediction",
        edges=edges,
        reference_counts=bin_counts_sorted(ordered, edges),
        reference_null_rate=1 - ordered.size / champion.size,
        reference_sample=ordered,
        current=challenger,
        thresholds=thresholds,
    )
    return found.statistics(), found.drifted


def _classification_drift(
    champion: list[str | None], challenger: list[str | None], thresholds: DriftThresholds
) -> tuple[dict[str, float], bool | None]:
    present = [c for c in champion if c is not None]
    if not present or all(c is None for c in challenger):
        return {}, None
    shares = pd.Series(present).value_counts(normalize=True)
    counts = pd.Series([c for c in challenger if c is not None]).value_counts()
    found = categorical_drift(
        "prediction",
        reference_freq={str(k): float(v) for k, v in shares.items()},
        reference_null_rate=1 - len(present) / len(champion),
        current_counts={str(k): int(v) for k, v in counts.items()},
        current_nulls=sum(c is None for c in challenger),
        thresholds=thresholds,
    )
    return found.statistics(), found.drifted


def _quality(
    champion: Sequence[Any] | NDArray[Any] | pd.Series,
    challenger: Sequence[Any] | NDArray[Any] | pd.Series,
    labels: Sequence[Any] | NDArray[Any] | pd.Series,
    task: str,
) -> tuple[int, dict[str, float], dict[str, float]]:
    """(labelled pairs scored, champion's metrics, challenger's) on the pairs where label and both
    predictions are present: both models are scored on the same requests."""
    if task == "regression":
        y, a, b = _floats(labels), _floats(champion), _floats(challenger)
        keep = np.isfinite(y) & np.isfinite(a) & np.isfinite(b)
        if not keep.any():
            return 0, {}, {}
        return int(keep.sum()), regression_metrics(y[keep], a[keep]), regression_metrics(y[keep], b[keep])
    ys, theirs, mine = _labels(labels), _labels(champion), _labels(challenger)
    rows = [(y, a, b) for y, a, b in zip(ys, theirs, mine, strict=True) if None not in (y, a, b)]
    if not rows:
        return 0, {}, {}
    truth = np.array([r[0] for r in rows])
    classes = sorted({value for row in rows for value in row if value is not None})
    known = classes if len(classes) == 2 else None  # binary F1 of the greater label, as monitoring scores it
    return (
        len(rows),
        classification_metrics(truth, np.array([r[1] for r in rows]), classes=known),
        classification_metrics(truth, np.array([r[2] for r in rows]), classes=known),
    )


def shadow_evidence(
    champion: Sequence[Any] | NDArray[Any] | pd.Series,
    challenger: Sequence[Any] | NDArray[Any] | pd.Series,
    labels: Sequence[Any] | NDArray[Any] | pd.Series | None,
    task: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    thresholds: DriftThresholds | None = None,
) -> ShadowEvidence:
    """The evidence of ``len(champion)`` paired requests: ``champion[i]`` and ``challenger[i]`` answer the
    same request, whose label (None until fed back) is ``labels[i]``."""
    agree = agreeing(champion, challenger, task, tolerance)
    n = len(agree)
    if labels is not None and len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} paired predictions")
    limits = thresholds or DriftThresholds()
    mean_abs: float | None = None
    mean_rel: float | None = None
    if task == "regression":
        a, b = _floats(champion), _floats(challenger)
        both = np.isfinite(a) & np.isfinite(b)
        if both.any():
            with np.errstate(over="ignore"):
                difference = np.abs(b[both] - a[both])
                mean_abs = float(np.mean(difference))
                mean_rel = float(np.mean(difference / np.maximum(np.abs(a[both]), _TINY)))
        drift, drifted = _regression_drift(a, b, limits) if n else ({}, None)
    else:
        drift, drifted = _classification_drift(_labels(champion), _labels(challenger), limits) if n else ({}, None)
    labelled, theirs, mine = _quality(champion, challenger, labels, task) if labels is not None and n else (0, {}, {})
    return ShadowEvidence(
        task=task,
        requests=n,
        agreed=int(agree.sum()),
        tolerance=float(tolerance),
        mean_abs_difference=mean_abs,
        mean_relative_difference=mean_rel,
        drift=drift,
        drifted=drifted,
        labelled=labelled,
        champion_quality=theirs,
        challenger_quality=mine,
    )


def live_metric(metric: str, task: str) -> str:
    """The metric live quality is compared on: ``metric``, unless it needs class probabilities, which the
    prediction log does not keep (then accuracy)."""
    return "accuracy" if task == "classification" and metric in ("roc_auc", "log_loss") else metric


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def shadow_checks(
    evidence: ShadowEvidence,
    *,
    champion_version: str,
    metric: str,
    min_requests: int = 0,
    max_quality_loss: float | None = None,
) -> list[GateCheck]:
    """The gate's checks on shadow evidence (``gate.shadow``): enough shadow-scored requests against the
    champion, and live quality on the labelled ones no more than ``max_quality_loss`` worse than its."""
    checks: list[GateCheck] = []
    agreement = evidence.agreement
    values: dict[str, Any] = {
        "requests": evidence.requests,
        "min_requests": min_requests,
        "agreement": agreement,
        "champion_version": champion_version,
    }
    if min_requests > 0:
        enough = evidence.requests >= min_requests
        if enough:
            detail = (
                f"{evidence.requests} shadow-scored requests against champion v{champion_version} "
                f"(gate.shadow.min_requests={min_requests}), agreement {_share(agreement)}"
            )
        else:
            so_far = f" (agreement so far {_share(agreement)})" if evidence.requests else ""
            detail = (
                f"only {evidence.requests} shadow-scored requests against champion v{champion_version}, "
                f"gate.shadow.min_requests={min_requests}{so_far}; keep the version as challenger with "
                "serve.shadow_fraction > 0 until it has shadowed enough live traffic"
            )
        checks.append(GateCheck("shadow.requests", enough, detail, values))
    if max_quality_loss is not None:
        name = live_metric(metric, evidence.task)
        mine, theirs = evidence.challenger_quality.get(name), evidence.champion_quality.get(name)
        loss = evidence.quality_loss(name)
        scored = {
            "metric": name,
            "labelled": evidence.labelled,
            "challenger": mine,
            "champion": theirs,
            "loss": loss,
            "max_quality_loss": max_quality_loss,
            "champion_version": champion_version,
        }
        if loss is None or mine is None or theirs is None:
            detail = (
                f"no live {name} to compare with champion v{champion_version}: {evidence.labelled} of "
                f"{evidence.requests} shadow-scored requests are labelled (gate.shadow.max_quality_loss="
                f"{max_quality_loss:.1%} needs labels fed back for shadowed requests)"
            )
            checks.append(GateCheck("shadow.quality", False, detail, scored))
        else:
            within = loss <= max_quality_loss
            change = f"{abs(loss):.1%} {'worse' if loss > 0 else 'better'}" if loss else "equal"
            verdict = "within" if within else "over"
            detail = (
                f"live {name} on the same {evidence.labelled} labelled requests: challenger {mine:.6g} vs champion "
                f"v{champion_version} {theirs:.6g} ({change}), {verdict} gate.shadow.max_quality_loss="
                f"{max_quality_loss:.1%}"
            )
            checks.append(GateCheck("shadow.quality", within, detail, scored))
    return checks


__all__ = [
    "BINS",
    "DEFAULT_TOLERANCE",
    "ShadowEvidence",
    "agreeing",
    "live_metric",
    "shadow_checks",
    "shadow_evidence",
]

"""Drift statistics and the per-feature drift decision. Pure: NumPy and SciPy only, no I/O.

Every statistic compares a *reference* (the training data, summarised in a profile) with a *current*
window of production rows. Missing values are part of the distribution: PSI and chi² give them a cell
of their own, so a feature that starts arriving empty drifts even when its non-null values do not.

Decision rules (one :class:`FeatureDrift` per feature):

* numeric: drifted if ``PSI > psi_threshold`` **or** ``KS p-value < ks_pvalue``. PSI catches shifts
  in the binned shape and in the missing share; KS catches location/scale shifts that stay inside the
  reference bins.
* categorical: drifted if ``chi² p-value < chi2_pvalue`` **and** ``PSI > psi_threshold / 2``. A
  goodness-of-fit test alone fires on large windows for shifts too small to matter, and on small
  windows its approximation is poor when rare categories expect fewer than five rows; requiring an
  effect size (PSI over the category shares) as well keeps both cases quiet. Half the numeric PSI
  threshold is used because category shares have no binning to smooth them, so a real shift shows
  up with a smaller PSI than the same shift of a numeric feature.

Jensen–Shannon distance and (for numerics) the Wasserstein distance are reported for dashboards but
take no part in the decision.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import rel_entr
from scipy.stats import chisquare, ks_2samp, wasserstein_distance

FeatureKind = Literal["numeric", "categorical"]
TestName = Literal["ks", "chi2"]

#: Proportions are clipped to this floor so an empty cell does not make PSI infinite; it is also the
#: expected share given to categories never seen in the reference (see :func:`chi2_categorical`).
EPS = 1e-4


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature counts as drifted; callers map ``MonitorConfig`` onto this."""

    psi_threshold: float = 0.2
    ks_pvalue: float = 0.01
    chi2_pvalue: float = 0.01

    def __post_init__(self) -> None:
        if not self.psi_threshold > 0:
            raise ValueError(f"psi_threshold must be positive, got {self.psi_threshold}")
        for name in ("ks_pvalue", "chi2_pvalue"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")


@dataclass(frozen=True)
class FeatureDrift:
    """The drift of one feature in one window, with the statistics behind the decision.

    ``psi`` is over the reference bins (numeric) or category shares (categorical), missing values
    being one more cell. ``test`` names the hypothesis test whose ``test_statistic`` and ``p_value``
    are given; ``p_value`` is ``None`` when the test could not run (no non-null values on one side).
    """

    feature: str
    kind: FeatureKind
    psi: float
    test: TestName
    test_statistic: float
    p_value: float | None
    js_distance: float
    wasserstein: float | None
    drifted: bool
    reason: str
    null_rate_reference: float
    null_rate_current: float
    unseen_categories: int
    n_current: int

    def statistics(self) -> dict[str, float]:
        """Named statistic values, e.g. for ``mloop_feature_drift{feature,statistic}``."""
        values = {"psi": self.psi, self.test: self.test_statistic, "jensen_shannon": self.js_distance}
        if self.p_value is not None:
            values[f"{self.test}_pvalue"] = self.p_value
        if self.wasserstein is not None:
            values["wasserstein"] = self.wasserstein
        return {name: value for name, value in values.items() if math.isfinite(value)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: non-finite numbers become ``None``."""
        return {key: _json_safe(value) for key, value in asdict(self).items()}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _proportions(counts: ArrayLike, eps: float) -> NDArray[np.float64]:
    array = np.asarray(counts, dtype=np.float64)
    total = float(array.sum())
    if array.ndim != 1 or array.size == 0 or np.any(array < 0) or not total > 0:
        raise ValueError("counts must be a non-empty 1-D array of non-negative numbers with a positive sum")
    shares: NDArray[np.float64] = np.maximum(array / total, eps)
    return shares


def psi(reference_counts: ArrayLike, current_counts: ArrayLike, eps: float = EPS) -> float:
    """Population stability index between two histograms over the same cells.

    ``sum((c - r) * ln(c / r))`` over the cell proportions, each clipped below at ``eps`` so empty
    cells stay finite. Counts or any non-negative weights work; each side is normalised by its sum.
    Rule of thumb: < 0.1 stable, 0.1–0.2 moderate shift, > 0.2 significant shift.
    """
    ref = _proportions(reference_counts, eps)
    cur = _proportions(current_counts, eps)
    if ref.shape != cur.shape:
        raise ValueError(f"reference has {ref.size} cells but current has {cur.size}")
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _finite(values: ArrayLike) -> NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64).ravel()
    return array[~np.isnan(array)]


def ks_2sample(reference_sample: ArrayLike, current: ArrayLike) -> tuple[float, float]:
    """Two-sample Kolmogorov–Smirnov ``(statistic, p-value)``, NaNs dropped.

    ``(nan, nan)`` when either side has no values left, since the test is then undefined.
    """
    ref, cur = _finite(reference_sample), _finite(current)
    if ref.size == 0 or cur.size == 0:
        return math.nan, math.nan
    result = ks_2samp(ref, cur)
    return float(result.statistic), float(result.pvalue)


def _chi2(reference_weights: ArrayLike, observed: ArrayLike, eps: float) -> tuple[float, float]:
    """Goodness of fit of ``observed`` counts against reference proportions over the same cells."""
    counts = np.asarray(observed, dtype=np.float64)
    n = counts.sum()
    if n <= 0:
        return math.nan, math.nan
    if counts.size < 2:
        return 0.0, 1.0  # one cell: every row is in it, nothing can differ
    # A zero expected count would make the statistic infinite; the floor turns it into "very unlikely".
    expected = _proportions(reference_weights, eps)
    expected = expected / expected.sum() * n
    result = chisquare(counts, f_exp=expected)
    return float(result.statistic), float(result.pvalue)


def chi2_categorical(
    reference_freq: Mapping[str, float], current_counts: Mapping[str, int], eps: float = EPS
) -> tuple[float, float]:
    """Chi-square goodness of fit of current category counts against reference shares.

    Categories absent from the reference are pooled into one "unseen" cell whose expected share is
    the floor ``eps`` (shares are then renormalised to sum to one). The reference says such
    values should essentially never occur, so a few of them are strong evidence against it — the
    effect-size guard in :func:`categorical_drift` keeps a handful of them from flagging drift alone.
    Returns ``(statistic, p-value)``; ``(nan, nan)`` for an empty current window.
    """
    categories = list(reference_freq)
    weights = [float(reference_freq[c]) for c in categories]
    observed = [int(current_counts.get(c, 0)) for c in categories]
    unseen = sum(int(v) for k, v in current_counts.items() if k not in reference_freq)
    if unseen:
        weights.append(0.0)  # floored to eps by _chi2
        observed.append(unseen)
    return _chi2(weights, observed, eps)


def bin_counts(values: ArrayLike, edges: ArrayLike) -> NDArray[np.int64]:
    """Count values into the bins that ``edges`` (sorted, unique) delimit; NaN is not counted.

    Bin ``i`` is ``[edges[i], edges[i+1])``, except that the first bin extends to -inf and the last
    to +inf so production values outside the training range are still counted (in the outer bins).
    ``k`` edges make ``max(k - 1, 1)`` bins: a constant reference column has a single bin.
    """
    cut = np.asarray(edges, dtype=np.float64)
    inner = cut[1:-1]
    finite = _finite(values)
    index = np.searchsorted(inner, finite, side="right")
    return np.bincount(index, minlength=inner.size + 1).astype(np.int64)


def _with_missing_cell(
    reference: NDArray[np.float64], current: NDArray[np.float64], ref_nulls: float, cur_nulls: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Append a missing-values cell when either side has missing values."""
    if ref_nulls == 0 and cur_nulls == 0:
        return reference, current
    return np.append(reference, ref_nulls), np.append(current, cur_nulls)


def _js(reference: NDArray[np.float64], current: NDArray[np.float64]) -> float:
    """Jensen–Shannon distance in base 2, so 0 (same) to 1 (disjoint)."""
    if reference.sum() <= 0 or current.sum() <= 0:
        return math.nan
    p, q = reference / reference.sum(), current / current.sum()
    m = (p + q) / 2
    divergence = (float(rel_entr(p, m).sum()) + float(rel_entr(q, m).sum())) / 2 / math.log(2)
    return math.sqrt(max(divergence, 0.0))  # rounding can leave a tiny negative for equal inputs


def numeric_drift(
    feature: str,
    *,
    edges: ArrayLike,
    reference_counts: ArrayLike,
    reference_null_rate: float,
    reference_sample: ArrayLike,
    current: ArrayLike,
    thresholds: DriftThresholds,
) -> FeatureDrift:
    """Drift of a numeric feature: PSI over the reference bins plus a missing cell, KS on values.

    ``current`` holds the window's values with NaN for missing ones.
    """
    values = np.asarray(current, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError(f"no current values for feature {feature!r}")
    nulls = int(np.isnan(values).sum())
    ref_counts = np.asarray(reference_counts, dtype=np.float64)
    # Reference as shares of all rows, so its null rate weighs the same as the current one.
    ref_total = ref_counts.sum()
    ref_shares = ref_counts / ref_total * (1 - reference_null_rate) if ref_total > 0 else np.zeros_like(ref_counts)
    ref_cells, cur_cells = _with_missing_cell(
        ref_shares, bin_counts(values, edges).astype(np.float64), reference_null_rate, float(nulls)
    )
    value = psi(ref_cells, cur_cells)
    statistic, p_value = ks_2sample(reference_sample, values)
    sample, finite = _finite(reference_sample), _finite(values)
    wasserstein = float(wasserstein_distance(sample, finite)) if sample.size and finite.size else None

    reasons = []
    if value > thresholds.psi_threshold:
        reasons.append(f"PSI {value:.3g} > {thresholds.psi_threshold:g}")
    if p_value < thresholds.ks_pvalue:  # False for nan
        reasons.append(f"KS p-value {p_value:.3g} < {thresholds.ks_pvalue:g}")
    return FeatureDrift(
        feature=feature,
        kind="numeric",
        psi=value,
        test="ks",
        test_statistic=statistic,
        p_value=None if math.isnan(p_value) else p_value,
        js_distance=_js(ref_cells, cur_cells),
        wasserstein=wasserstein,
        drifted=bool(reasons),
        reason="; ".join(reasons),
        null_rate_reference=float(reference_null_rate),
        null_rate_current=nulls / values.size,
        unseen_categories=0,
        n_current=int(values.size),
    )


def categorical_drift(
    feature: str,
    *,
    reference_freq: Mapping[str, float],
    reference_null_rate: float,
    current_counts: Mapping[str, int],
    current_nulls: int,
    thresholds: DriftThresholds,
) -> FeatureDrift:
    """Drift of a categorical feature: chi² and PSI over the category shares.

    ``reference_freq`` are shares of the non-null reference values; ``current_counts`` counts the
    window's non-null values by category and ``current_nulls`` its missing ones. Cells: the reference
    categories, one pooled cell for unseen categories, and one for missing values (each only when
    needed).
    """
    n = sum(current_counts.values()) + current_nulls
    if n == 0:
        raise ValueError(f"no current values for feature {feature!r}")
    categories = list(reference_freq)
    unseen = [k for k in current_counts if k not in reference_freq]
    ref_total = sum(reference_freq.values())
    ref_cells = np.array(
        [reference_freq[c] / ref_total * (1 - reference_null_rate) if ref_total > 0 else 0.0 for c in categories]
    )
    cur_cells = np.array([current_counts.get(c, 0) for c in categories], dtype=np.float64)
    if unseen:
        ref_cells = np.append(ref_cells, 0.0)  # floored to EPS: "essentially never", as in chi2_categorical
        cur_cells = np.append(cur_cells, sum(current_counts[k] for k in unseen))
    ref_cells, cur_cells = _with_missing_cell(ref_cells, cur_cells, reference_null_rate, float(current_nulls))
    value = psi(ref_cells, cur_cells)
    statistic, p_value = _chi2(ref_cells, cur_cells, EPS)

    significant = p_value < thresholds.chi2_pvalue  # False for nan
    large = value > thresholds.psi_threshold / 2
    drifted = significant and large
    reason = (
        f"chi² p-value {p_value:.3g} < {thresholds.chi2_pvalue:g} and PSI {value:.3g} > "
        f"{thresholds.psi_threshold / 2:g}"
        if drifted
        else ""
    )
    return FeatureDrift(
        feature=feature,
        kind="categorical",
        psi=value,
        test="chi2",
        test_statistic=statistic,
        p_value=None if math.isnan(p_value) else p_value,
        js_distance=_js(ref_cells, cur_cells),
        wasserstein=None,
        drifted=drifted,
        reason=reason,
        null_rate_reference=float(reference_null_rate),
        null_rate_current=current_nulls / n,
        unseen_categories=len(unseen),
        n_current=n,
    )


__all__ = [
    "EPS",
    "DriftThresholds",
    "FeatureDrift",
    "FeatureKind",
    "bin_counts",
    "categorical_drift",
    "chi2_categorical",
    "ks_2sample",
    "numeric_drift",
    "psi",
]

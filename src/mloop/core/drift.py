"""Drift statistics and the per-feature drift decision. Pure: NumPy and SciPy only, no I/O.

Every statistic compares a *reference* (the training data, summarised in a profile) with a *current*
window of production rows. Missing values are part of the distribution: PSI and chi² give them a cell
of their own, so a feature that starts arriving empty drifts even when its non-null values do not. A
numeric ±inf counts as missing, as the reference profile counts it.

Two decisions, chosen by ``DriftThresholds.decision``:

**calibrated** (the default): every feature gets one p-value — KS for a numeric feature (combined, by
Bonferroni, with a binomial test of its missing share when either side has missing values), chi² for
a categorical one — and the p-values of a window's features are corrected together by
Benjamini–Hochberg at ``false_alarm_rate``. A feature drifts when its adjusted p-value is at most
``false_alarm_rate`` **and** its effect is large enough: PSI at least ``effect_floor``, or for a
numeric feature a KS statistic (the largest gap between the two CDFs) at least ``ks_effect_floor``
(PSI alone misses a shift of a column the reference holds constant, whose one bin takes every
value). Under no change at all the share of windows with any drifted feature is then at most
``false_alarm_rate``, for the whole window rather than per feature (each of ~70 Ames features alone at
p < 0.01 alarmed on one unchanged window in ten), and the floors keep a huge window, where any test is
significant, from flagging a negligible shift. :func:`decide` applies it to a window's features; the
per-feature functions apply it to one feature alone (a family of one). The defaults were measured on
windows resampled from the Ames reference: see ``docs/monitoring.md``.

**per_feature** (the rules before calibration, one :class:`FeatureDrift` per feature):

* numeric: drifted if ``PSI > psi_threshold`` **or** ``KS p-value < ks_pvalue``. PSI catches shifts
  in the binned shape and in the missing share; KS catches location/scale shifts that stay inside the
  reference bins.
* categorical: drifted if ``chi² p-value < chi2_pvalue`` **and** ``PSI > psi_threshold / 2``. A
  goodness-of-fit test alone fires on large windows for shifts too small to matter; requiring an
  effect size (PSI over the category shares) as well keeps that case quiet. Half the numeric PSI
  threshold is used because category shares have no binning to smooth them, so a real shift shows
  up with a smaller PSI than the same shift of a numeric feature.
* chi² pools sparse cells first (Cochran's rule): every cell expecting fewer than
  :data:`MIN_EXPECTED` (5) rows of the window goes into one pooled "other" cell, and if that cell
  still expects fewer than 5 the next smallest cells join it until it does, short of the last cell
  that expects 5 or more (which stays apart, so a window wholly in rare or unseen categories is not
  pooled into a single cell that cannot differ). Without this a small
  window is flagged for no reason whenever a rare category (expected 0.2 rows, say) shows up twice,
  or a handful of unseen values (expected share ``EPS``) arrive. A large shift into rare or unseen
  categories still makes the pooled cell far from its expectation, so it is still caught. PSI and
  JS stay over the unpooled cells.

Jensen–Shannon distance and (for numerics) the Wasserstein distance are reported for dashboards but
take no part in the decision.

How it is computed, and how it stays fast on large windows: each numeric column's non-null values are
sorted once (:func:`sorted_finite`) and that one sorted array serves every statistic — the bin counts
for PSI and JS come from binary searches of the bin edges into it (:func:`bin_counts_sorted`), the KS
statistic from binary searches of the reference sample's values into it (:func:`ks_sorted`), and the
Wasserstein distance from one pass over it (:func:`wasserstein_sorted`). A window of a million rows
then costs one sort plus a few linear passes, instead of the several sorts and million-key searches
SciPy's functions each repeat. The results are SciPy's: the KS statistic bit for bit with the
p-value from the same formula (for samples up to 10,000 rows, where SciPy computes the exact p-value,
``scipy.stats.ks_2samp`` itself is called), the Wasserstein distance to rounding (~1e-13 relative),
as the tests check.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

# SciPy is imported where a statistic needs it, not here: scipy.stats alone adds ~50 MB to a process,
# and importing this module for its sorting helpers (as build_profile does) should not cost that.

FeatureKind = Literal["numeric", "categorical"]
TestName = Literal["ks", "chi2"]

#: Proportions are clipped to this floor so an empty cell does not make PSI infinite; it is also the
#: expected share given to categories never seen in the reference (see :func:`chi2_categorical`).
EPS = 1e-4
#: chi² cells expecting fewer rows than this are pooled (see :func:`pool_sparse_cells`).
MIN_EXPECTED = 5.0
#: Up to this many values on the larger side SciPy's ``ks_2samp`` computes an exact p-value; there it
#: is called directly (it is cheap at that size), above it the same asymptotic formula is used here.
KS_EXACT_MAX = 10_000


Decision = Literal["calibrated", "per_feature"]
DECISIONS: tuple[Decision, ...] = ("calibrated", "per_feature")


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature counts as drifted; callers map ``MonitorConfig`` onto this.

    ``decision="calibrated"`` uses ``false_alarm_rate`` and ``effect_floor``; ``"per_feature"`` uses
    ``psi_threshold``, ``ks_pvalue`` and ``chi2_pvalue`` (see the module docstring).
    """

    psi_threshold: float = 0.2
    ks_pvalue: float = 0.01
    chi2_pvalue: float = 0.01
    decision: Decision = "calibrated"
    false_alarm_rate: float = 0.05
    effect_floor: float = 0.1
    ks_effect_floor: float = 0.1

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, got {self.decision!r}")
        if not self.psi_threshold > 0:
            raise ValueError(f"psi_threshold must be positive, got {self.psi_threshold}")
        for name in ("effect_floor", "ks_effect_floor"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be zero or more, got {getattr(self, name)}")
        for name in ("ks_pvalue", "chi2_pvalue", "false_alarm_rate"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")


@dataclass(frozen=True)
class FeatureDrift:
    """The drift of one feature in one window, with the statistics behind the decision.

    ``psi`` is over the reference bins (numeric) or category shares (categorical), missing values
    being one more cell. ``test`` names the hypothesis test whose ``test_statistic`` and ``p_value``
    are given; ``p_value`` is ``None`` when the test could not run (no non-null values on one side).
    ``null_p_value`` is the binomial test of a numeric feature's missing share (``None`` when neither
    side has missing values); ``p_adjusted`` the Benjamini–Hochberg adjusted p-value of the feature in
    its window (calibrated decision only).
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
    null_p_value: float | None = None
    p_adjusted: float | None = None

    @property
    def decision_p_value(self) -> float | None:
        """The one p-value the calibrated decision corrects: the test's, combined (Bonferroni, ×2) with
        the missing-share test's when there is one; ``None`` when neither could run."""
        tests = [p for p in (self.p_value, self.null_p_value) if p is not None]
        if not tests:
            return None
        return min(1.0, min(tests) * len(tests))

    def statistics(self) -> dict[str, float]:
        """Named statistic values, e.g. for ``mloop_feature_drift{feature,statistic}``."""
        values = {"psi": self.psi, self.test: self.test_statistic, "jensen_shannon": self.js_distance}
        if self.p_value is not None:
            values[f"{self.test}_pvalue"] = self.p_value
        if self.p_adjusted is not None:
            values["pvalue_adjusted"] = self.p_adjusted
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


def _factor_below(peak: float, limit: float) -> float:
    """The largest power of two that takes ``peak`` to at most ``limit`` (both positive, finite).

    Multiplying by a power of two is exact (short of subnormals), and the largest such factor loses the
    fewest of the tiny values beside a huge one.
    """
    return math.ldexp(1.0, math.frexp(limit)[1] - math.frexp(peak)[1] - 1)


def _proportions(counts: ArrayLike, eps: float) -> NDArray[np.float64]:
    array = np.asarray(counts, dtype=np.float64)
    # NaN or inf weights made every share NaN behind a RuntimeWarning (found by the property tests): refuse them.
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError("counts must be a non-empty 1-D array of finite, non-negative numbers with a positive sum")
    peak, limit = float(array.max()), float(np.finfo(np.float64).max) / array.size
    if peak > limit:
        # Weights near the largest float (1e308) overflow their sum to inf, and every share became 0 (found by the
        # property tests): scale them down by a power of two first, which leaves the shares as they are.
        array = array * _factor_below(peak, limit)
    total = float(array.sum())
    if not total > 0:
        raise ValueError("counts must be a non-empty 1-D array of finite, non-negative numbers with a positive sum")
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
    return ks_sorted(np.sort(_finite(reference_sample)), np.sort(_finite(current)))


def float_values(values: ArrayLike) -> NDArray[np.floating[Any]]:
    """``values`` as a flat float array: float32 and float64 as they are (no copy), anything else as float64."""
    array = np.asarray(values)
    if array.dtype != np.float32:
        array = array.astype(np.float64, copy=False)
    return array.ravel()


def sorted_finite(values: ArrayLike) -> tuple[NDArray[np.float64], int]:
    """``(non-missing values sorted ascending, as float64; number of missing values)`` of a float column.

    NaN is missing; the input is not modified. A float32 column is sorted as float32 (several times
    faster) and widened afterwards, which gives the same array as widening first; a float64 column is
    copied only by the sort.
    """
    array = float_values(values)
    missing = np.isnan(array)
    nulls = int(np.count_nonzero(missing))
    ordered = np.sort(array[~missing] if nulls else array)
    return ordered.astype(np.float64, copy=False), nulls


def ks_sorted(a: NDArray[np.float64], b: NDArray[np.float64]) -> tuple[float, float]:
    """Two-sample KS ``(statistic, p-value)`` of two **sorted**, NaN-free samples, as SciPy computes it.

    SciPy evaluates ``F_a - F_b`` (the empirical CDFs) at every value of both samples. Its maximum is
    reached at a value of ``a`` (between two of them ``F_a`` is flat and ``F_b`` only grows), and its
    minimum just before one: at the largest value of ``b`` below the next value of ``a``, where
    ``F_b`` counts the values of ``b`` under it. So binary searches of ``a``'s distinct values into
    ``b`` find both extremes, each computed with the same floating-point operations as SciPy, so the
    statistic is bit-identical; the p-value is SciPy's asymptotic formula. Up to
    :data:`KS_EXACT_MAX` values per side SciPy computes an exact p-value instead, and is called.
    ``(nan, nan)`` when a side is empty.
    """
    n1, n2 = int(a.size), int(b.size)
    if n1 == 0 or n2 == 0:
        return math.nan, math.nan
    from scipy.stats import ks_2samp

    if max(n1, n2) <= KS_EXACT_MAX:
        with warnings.catch_warnings():
            # With ties (e.g. [0, 0, 0, 0, 0] against [0, 0, 0, 0, 1], found by the property tests) SciPy's exact
            # p-value can fail; it then warns and returns the asymptotic one, the formula used above KS_EXACT_MAX
            # here anyway. The warning says nothing about the data, so it is not passed on.
            warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful", RuntimeWarning)
            result = ks_2samp(a, b)
        return float(result.statistic), float(result.pvalue)
    return ks_asymptotic(a, lambda points, side: np.searchsorted(b, points, side=side), n2)


#: How many of a window's finite values lie below each point (``side="left"``: strictly; ``"right"``: at or
#: below), as ``np.searchsorted`` on the sorted values answers: all the KS test and the PSI bins read of them.
Below = Callable[[NDArray[np.float64], Literal["left", "right"]], NDArray[np.int64]]


def ks_asymptotic(a: NDArray[np.float64], below_b: Below, n2: int) -> tuple[float, float]:
    """:func:`ks_sorted`'s statistic and asymptotic p-value of the sorted sample ``a`` against ``n2`` values
    known only by how many lie below each value of ``a`` (a window's mergeable profile knows no more)."""
    from scipy.stats import kstwo

    n1 = int(a.size)
    values = np.unique(a)  # sorted input: a linear pass
    cdf_a = np.searchsorted(a, values, side="right") / n1
    highest = float(np.max(cdf_a - below_b(values, "right") / n2))
    before = np.concatenate(([0.0], cdf_a[:-1]))  # F_a just below each value of a
    lowest = float(np.min(before - below_b(values, "left") / n2))
    # Both CDFs reach 1 at the largest value, so SciPy's extremes are never beyond 0.
    statistic = max(min(max(-lowest, 0.0), 1.0), max(highest, 0.0))
    m, n = sorted([float(n1), float(n2)], reverse=True)
    p_value = float(np.clip(kstwo.sf(statistic, np.round(m * n / (m + n))), 0, 1))
    return statistic, p_value


def wasserstein_sorted(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """Wasserstein-1 distance of two **sorted**, non-empty, finite samples (``scipy.stats.wasserstein_distance``).

    Computed as ``∫₀¹ |Q_a(p) - Q_b(p)| dp`` over the quantile functions, which equals SciPy's
    integral of ``|F_a - F_b|`` over the values. With ``a`` the larger sample, each of its ``1/len(a)``
    steps meets at most one step boundary of ``b``: the steps are paired with ``b``'s value at their
    start (``np.repeat``) and the at most ``len(b) - 1`` steps a boundary cuts are corrected — one
    linear pass, no merge of the two samples.

    Values near the largest float (±1e308) are scaled down by a power of two first, so their differences and
    sums do not overflow; the distance is ``inf`` only when it is itself beyond the largest float.
    """
    if a.size == 0 or b.size == 0:
        raise ValueError("wasserstein_sorted needs two non-empty samples")
    peak = max(abs(float(a[0])), abs(float(a[-1])), abs(float(b[0])), abs(float(b[-1])))  # sorted: ends are extremes
    if not math.isfinite(peak):
        raise ValueError("wasserstein_sorted needs finite samples; count ±inf as missing")
    limit = float(np.finfo(np.float64).max) / (2 * (a.size + b.size))
    if peak > limit:
        # Differences and sums of values this large overflowed (inf, or nan behind a RuntimeWarning; found by the
        # property tests, e.g. [0.0] against [9e307, 9e307]). A power of two scales exactly; dividing the scaled
        # distance back gives inf only for a distance past the largest float.
        factor = _factor_below(peak, limit)
        return _wasserstein_sorted(a * factor, b * factor) / factor
    return _wasserstein_sorted(a, b)


def _wasserstein_sorted(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    if a.size < b.size:
        a, b = b, a
    na, nb = int(a.size), int(b.size)
    # a's step j covers (j/na, (j+1)/na]; b's value at its start is b[floor(j*nb/na)], so b[k] serves
    # the steps j in [ceil(k*na/nb), ceil((k+1)*na/nb)).
    starts = -((-np.arange(nb + 1, dtype=np.int64) * na) // nb)
    gaps = np.repeat(b, np.diff(starts))
    np.abs(np.subtract(a, gaps, out=gaps), out=gaps)  # in place: one temporary the size of a
    total = float(gaps.sum())
    # Boundaries i/nb strictly inside a step j: from there to (j+1)/na the value of b is b[i], not b[i-1].
    i = np.arange(1, nb, dtype=np.int64)
    j, cut = np.divmod(i * na, nb)
    inside = cut != 0
    i, j = i[inside], j[inside]
    if i.size:
        share = ((j + 1) * nb - i * na) / nb  # the rest of step j after the boundary, in units of 1/na
        total += float(np.sum(share * (np.abs(a[j] - b[i]) - np.abs(a[j] - b[i - 1]))))
    return total / na


def pool_sparse_cells(
    observed: NDArray[np.float64], expected: NDArray[np.float64], minimum: float = MIN_EXPECTED
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Pool the cells expecting fewer than ``minimum`` rows into one cell, appended last.

    Every cell under ``minimum`` joins the pool; if the pool still expects fewer than ``minimum``
    rows, the next smallest cells join it until it does, but never the last cell that is not sparse
    itself: the pool is then tested as it is. When every cell is sparse they all pool into one (a
    window too small to show anything). Cells that are kept keep their order. Without a sparse cell
    the inputs are returned unchanged.
    """
    sparse = expected < minimum
    if not sparse.any():
        return observed, expected
    order = np.argsort(expected, kind="stable")
    reach = int(np.searchsorted(np.cumsum(expected[order]), minimum, side="left")) + 1
    n_sparse = int(sparse.sum())
    # Topping the pool up must leave a well-filled cell outside it: a reference with one category (or one
    # holding 99% of the rows) and a window wholly in an unseen or the rare category pooled into a single
    # cell, chi² (0, 1), so a complete shift was never flagged (found by the property tests).
    pooled = order[: n_sparse if n_sparse == order.size else min(max(n_sparse, reach), order.size - 1)]
    kept = np.sort(order[pooled.size :])
    return (
        np.append(observed[kept], observed[pooled].sum()),
        np.append(expected[kept], expected[pooled].sum()),
    )


def _chi2(reference_weights: ArrayLike, observed: ArrayLike, eps: float) -> tuple[float, float]:
    """Goodness of fit of ``observed`` counts against reference proportions over the same cells.

    Cells expecting fewer than :data:`MIN_EXPECTED` rows are pooled first (:func:`pool_sparse_cells`).
    """
    counts = np.asarray(observed, dtype=np.float64)
    n = counts.sum()
    if n <= 0:
        return math.nan, math.nan
    # A zero expected count would make the statistic infinite; the floor turns it into "very unlikely". Only
    # zeros are floored: raising a rare category's share (say 1e-5) to the floor made a window identical to the
    # reference fail the test on a large window (found by the property tests).
    shares = _proportions(reference_weights, 0.0)
    expected = np.where(shares > 0, shares, eps)
    expected = expected / expected.sum() * n
    counts, expected = pool_sparse_cells(counts, expected)
    if counts.size < 2:
        return 0.0, 1.0  # one cell: every row is in it, nothing can differ
    from scipy.stats import binomtest, chisquare

    result = chisquare(counts, f_exp=expected)
    if counts.size == 2:
        # Two cells (a dominant category and the rest, after pooling: Utilities in Ames is 99.9% one value) are a
        # binomial, and chi²'s tail is far from it when one cell expects few rows: 2 rare rows in 200, expecting
        # 0.26, gave p = 6e-4 where the exact p is 0.03, and such features raised most of the false alarms on
        # unchanged windows. The exact test is as cheap; the statistic stays chi²'s.
        pooled = int(np.argmin(expected))
        exact = binomtest(int(round(counts[pooled])), int(round(n)), float(expected[pooled] / n)).pvalue
        return float(result.statistic), float(exact)
    return float(result.statistic), float(result.pvalue)


def chi2_categorical(
    reference_freq: Mapping[str, float], current_counts: Mapping[str, int], eps: float = EPS
) -> tuple[float, float]:
    """Chi-square goodness of fit of current category counts against reference shares.

    Categories absent from the reference are pooled into one "unseen" cell whose expected share is
    the floor ``eps`` (shares are then renormalised to sum to one). Cells expecting fewer than
    :data:`MIN_EXPECTED` rows of the window are then pooled (:func:`pool_sparse_cells`), so the unseen
    cell is tested together with the rarest reference categories: a handful of new values is not
    evidence of drift, hundreds of them are. Returns ``(statistic, p-value)``; ``(nan, nan)`` for an
    empty current window.
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
    return bin_counts_sorted(sorted_finite(values)[0], edges)


def bin_counts_sorted(sorted_values: NDArray[np.float64], edges: ArrayLike) -> NDArray[np.int64]:
    """:func:`bin_counts` of values already sorted and NaN-free: one binary search per edge."""
    inner = np.asarray(edges, dtype=np.float64)[1:-1]
    below = np.searchsorted(sorted_values, inner, side="left")  # values under each inner edge
    return np.diff(np.concatenate(([0], below, [sorted_values.size]))).astype(np.int64)


def quantile_edges(sorted_values: NDArray[np.float64], bins: int) -> NDArray[np.float64]:
    """``np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))`` of values already sorted.

    NumPy's default ("linear") quantile read off the sorted array, with NumPy's own interpolation
    arithmetic, so the edges are bit-identical (tested) without the partial sort ``np.quantile``
    repeats. Empty input gives no edges. The one difference: where two neighbouring values are further
    apart than the largest float (-1e308 and 1e308), NumPy's ``b - a`` overflows and its edge is inf or
    nan; here it is interpolated between the halves of the values instead, a finite edge between them.
    """
    n = sorted_values.size
    if n == 0:
        return np.array([], dtype=np.float64)
    virtual = (n - 1) * np.linspace(0, 1, bins + 1)
    below = np.floor(virtual)
    gamma = virtual - below
    low = below.astype(np.intp)
    high = np.minimum(low + 1, n - 1)
    low[virtual >= n - 1] = n - 1
    a, b = sorted_values[low], sorted_values[high]
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing span is redone below
        diff = b - a
        edges = a + diff * gamma
        upper = gamma >= 0.5
        edges[upper] = (b - diff * (1 - gamma))[upper]
    overflow = ~np.isfinite(diff)
    if overflow.any():
        # b - a past the largest float made the edge inf, or nan (inf * 0) behind a RuntimeWarning, for a column
        # holding -1e308 and 1e308 (found by the property tests). Halving is exact, and the halves' span is finite.
        low_half, high_half, share = a[overflow] / 2, b[overflow] / 2, gamma[overflow]
        between = (low_half + (high_half - low_half) * share) * 2
        edges[overflow] = np.where(share == 0, a[overflow], between)
    return np.unique(edges)


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
    from scipy.special import rel_entr

    p, q = reference / reference.sum(), current / current.sum()
    m = (p + q) / 2
    divergence = (float(rel_entr(p, m).sum()) + float(rel_entr(q, m).sum())) / 2 / math.log(2)
    return math.sqrt(max(divergence, 0.0))  # rounding can leave a tiny negative for equal inputs


def _without_infinities(ordered: NDArray[np.float64]) -> NDArray[np.float64]:
    """A sorted, NaN-free array without its ±inf (a view)."""
    low = int(np.searchsorted(ordered, -math.inf, side="right"))
    high = int(np.searchsorted(ordered, math.inf, side="left"))
    return ordered[low:high]


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

    ``current`` holds the window's values with NaN for missing ones (float32 or float64 are used as
    they are; other dtypes are converted to float64). ±inf counts as missing too, on both sides, as the
    monitor and the reference profile count it.
    """
    values = float_values(current)
    if values.size == 0:
        raise ValueError(f"no current values for feature {feature!r}")
    finite, _ = sorted_finite(values)  # the one sort of the window, shared by every statistic
    # An infinite value was binned and tested as a value: a window identical to a reference with inf in it
    # drifted (PSI 18), and inf against inf made Wasserstein nan behind a RuntimeWarning (found by the
    # property tests). Sorted, the infinities are at the ends: two binary searches drop them.
    finite = _without_infinities(finite)
    sample = _without_infinities(sorted_finite(reference_sample)[0])
    wasserstein = wasserstein_sorted(sample, finite) if sample.size and finite.size else None
    return counted_numeric_drift(
        feature,
        edges=edges,
        reference_counts=reference_counts,
        reference_null_rate=reference_null_rate,
        reference_sample=reference_sample,
        rows=int(values.size),
        finite=int(finite.size),
        below=lambda points, side: np.searchsorted(finite, points, side=side),
        ks=ks_sorted(sample, finite),
        wasserstein=wasserstein,
        thresholds=thresholds,
    )


def counted_numeric_drift(
    feature: str,
    *,
    edges: ArrayLike,
    reference_counts: ArrayLike,
    reference_null_rate: float,
    reference_sample: ArrayLike,
    rows: int,
    finite: int,
    below: Below,
    ks: tuple[float, float] | None = None,
    wasserstein: float | None,
    thresholds: DriftThresholds,
) -> FeatureDrift:
    """:func:`numeric_drift` of a window known by its ``rows``, its ``finite`` values and how many of them lie
    below a point (``below``): the PSI bins and, without a given ``ks``, the asymptotic KS test read no more.

    A mergeable window profile (:mod:`mloop.core.window_profile`) answers ``below`` exactly at every point
    asked (its cells' boundaries), so it gets the rows' statistics without holding a value per row.
    """
    nulls = rows - finite
    ref_counts = np.asarray(reference_counts, dtype=np.float64)
    # Reference as shares of all rows, so its null rate weighs the same as the current one.
    ref_total = ref_counts.sum()
    ref_shares = ref_counts / ref_total * (1 - reference_null_rate) if ref_total > 0 else np.zeros_like(ref_counts)
    inner = np.asarray(edges, dtype=np.float64)[1:-1]
    bins = np.diff(np.concatenate(([0], below(inner, "left"), [finite]))).astype(np.float64)  # bin_counts_sorted
    ref_cells, cur_cells = _with_missing_cell(ref_shares, bins, reference_null_rate, float(nulls))
    value = psi(ref_cells, cur_cells)
    if ks is None:
        sample = _without_infinities(sorted_finite(reference_sample)[0])
        ks = ks_asymptotic(sample, below, finite) if sample.size and finite else (math.nan, math.nan)
    statistic, p_value = ks

    null_p_value = missing_share_pvalue(reference_null_rate, nulls, rows) if reference_null_rate > 0 or nulls else None
    reasons = []
    if value > thresholds.psi_threshold:
        reasons.append(f"PSI {value:.3g} > {thresholds.psi_threshold:g}")
    if p_value < thresholds.ks_pvalue:  # False for nan
        reasons.append(f"KS p-value {p_value:.3g} < {thresholds.ks_pvalue:g}")
    result = FeatureDrift(
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
        null_rate_current=nulls / rows,
        unseen_categories=0,
        n_current=rows,
        null_p_value=null_p_value,
    )
    return decide([result], thresholds)[0]


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
    result = FeatureDrift(
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
    return decide([result], thresholds)[0]


def missing_share_pvalue(reference_null_rate: float, nulls: int, n: int) -> float:
    """Two-sided binomial test of ``nulls`` missing values in ``n`` rows against the reference's share.

    A share of 0 (or 1) in the reference is taken as :data:`EPS` (or ``1 - EPS``): a reference without
    a missing value does not prove they never occur, and a single one in the window must not have a
    p-value of 0.
    """
    if n <= 0:
        return math.nan
    from scipy.stats import binomtest

    share = min(max(float(reference_null_rate), EPS), 1 - EPS)
    return float(binomtest(int(nulls), int(n), share).pvalue)


def benjamini_hochberg(p_values: Sequence[float | None]) -> list[float | None]:
    """Benjamini–Hochberg adjusted p-values (step-up), in the input's order; ``None`` stays ``None``.

    A feature is rejected at level ``q`` when its adjusted p-value is at most ``q``; this controls the
    expected share of false discoveries among the rejections at ``q``, and under no change at all
    (every hypothesis true) the chance of any rejection, for independent or positively dependent
    tests. The ``None`` ones (tests that could not run) are not counted in the family.
    """
    where = [i for i, p in enumerate(p_values) if p is not None and not math.isnan(p)]
    adjusted: list[float | None] = [None] * len(p_values)
    if where:
        from scipy.stats import false_discovery_control

        values = false_discovery_control([float(p_values[i]) for i in where], method="bh")  # type: ignore[arg-type]
        for i, value in zip(where, values.tolist(), strict=True):
            adjusted[i] = float(value)
    return adjusted


def decide(features: Sequence[FeatureDrift], thresholds: DriftThresholds) -> list[FeatureDrift]:
    """The features of one window with the window's decision applied (see the module docstring).

    ``per_feature``: as they are (each feature was decided alone). ``calibrated``: the decision
    p-values are corrected together by Benjamini–Hochberg, and a feature drifts when its adjusted
    p-value is at most ``false_alarm_rate`` and its effect is large enough (:func:`effect_reason`).
    """
    if thresholds.decision == "per_feature":
        return list(features)
    q = thresholds.false_alarm_rate
    adjusted = benjamini_hochberg([f.decision_p_value for f in features])
    tested = sum(a is not None for a in adjusted)
    family = f" over {tested} features" if len(features) > 1 else ""
    decided = []
    for feature, p_adjusted in zip(features, adjusted, strict=True):
        effect = effect_reason(feature, thresholds)
        drifted = p_adjusted is not None and p_adjusted <= q and effect is not None
        reason = ""
        if drifted:
            tests = (
                [f"{'KS' if feature.test == 'ks' else 'chi²'} p-value {feature.p_value:.3g}"]
                if feature.p_value is not None
                else []
            )
            if feature.null_p_value is not None:
                tests.append(f"missing-share p-value {feature.null_p_value:.3g}")
            reason = f"{', '.join(tests)}: adjusted {p_adjusted:.3g} ≤ {q:g}{family}, and {effect}"
        decided.append(replace(feature, drifted=drifted, reason=reason, p_adjusted=p_adjusted))
    return decided


def effect_reason(feature: FeatureDrift, thresholds: DriftThresholds) -> str | None:
    """Why ``feature``'s shift is large enough to count (``None`` when it is not): PSI at least
    ``effect_floor``, or a numeric feature's KS statistic at least ``ks_effect_floor``."""
    if feature.psi >= thresholds.effect_floor:
        return f"PSI {feature.psi:.3g} ≥ {thresholds.effect_floor:g}"
    ks = feature.test_statistic
    if feature.test == "ks" and math.isfinite(ks) and ks >= thresholds.ks_effect_floor:
        return f"KS statistic {ks:.3g} ≥ {thresholds.ks_effect_floor:g}"
    return None


__all__ = [
    "DECISIONS",
    "EPS",
    "KS_EXACT_MAX",
    "MIN_EXPECTED",
    "Decision",
    "DriftThresholds",
    "FeatureDrift",
    "FeatureKind",
    "bin_counts",
    "bin_counts_sorted",
    "benjamini_hochberg",
    "categorical_drift",
    "chi2_categorical",
    "decide",
    "effect_reason",
    "float_values",
    "ks_2sample",
    "ks_sorted",
    "missing_share_pvalue",
    "numeric_drift",
    "pool_sparse_cells",
    "psi",
    "quantile_edges",
    "sorted_finite",
    "wasserstein_sorted",
]

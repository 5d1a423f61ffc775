"""Mergeable profiles of monitoring windows: counts and sketches that add up. Pure: NumPy, SciPy, DataSketches.

A :class:`WindowProfile` summarises a set of rows against the *fixed structure* of a reference profile, so
that the profiles of two sets of rows merge (:func:`merge`) into the profile of their union, and the drift
of a week is computed from seven daily profiles instead of from a week of rows. Per column:

* **numeric**: the number of rows ``n`` and of missing values ``nulls`` (NaN and ±inf, as the drift
  statistics count them); the finite values counted into the *cells* of the reference's boundaries
  (:class:`NumericLayout`: the inner PSI bin edges and the distinct values of the reference sample, each
  boundary a cell of its own and each gap between two a cell); and a quantile summary: the sorted finite
  values themselves while there are at most :data:`EXACT_MAX` of them, a KLL sketch
  (``datasketches.kll_doubles_sketch``, parameter :data:`KLL_K`) beyond.
* **categorical**: the count of each category label and of missing values.

What is exact and what is not. The cells decide PSI, Jensen–Shannon, the missing share and the KS test
*exactly*, whatever the number of rows: PSI counts values into bins ``[e_i, e_{i+1})`` whose edges are
boundaries, and the KS statistic is an extreme of ``F_ref - F_cur`` reached at, or just below, a value of the
reference sample (see :func:`mloop.core.drift.ks_sorted`), where the cells give ``F_cur`` exactly. So
:func:`numeric_window_drift` hands :func:`~mloop.core.drift.numeric_drift` a stand-in sample with the same
cell counts (one representative float per cell, repeated) and gets the same PSI, KS statistic and p-value,
JS distance, missing-share test and decision, bit for bit, as from the rows. Category counts decide chi²
and PSI exactly. Only the Wasserstein distance (reported for dashboards, no part of the decision) needs
the values between the boundaries: exact while the values are kept (it is then computed from them, as
from the rows), and from the KLL sketch beyond :data:`EXACT_MAX`, where its error is at most
``rank_error * (max - min)`` of the window's values (``rank_error``: the sketch's double-sided normalized
rank error, about 1.65% for ``k = 200``, at 99% confidence; :attr:`NumericWindow.rank_error`).

Merging adds every count exactly; it is commutative and associative for everything exact. Kept values
merge into the sorted union while it stays within :data:`EXACT_MAX`, into a sketch beyond. KLL sketches
merge within their stated error, but KLL compacts at random (DataSketches seeds it itself): two merges of
the same profiles may hold different items, so a Wasserstein distance from a sketch can differ in its
last digits from run to run, within the bound. Nothing else depends on the sketch.

The dict form (:meth:`WindowProfile.to_dict`) is JSON-safe and versioned (:data:`FORMAT_VERSION`); each
numeric column names its layout by a fingerprint of the boundaries, so a profile is never merged with, or
compared against, a reference of another structure.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mloop.core.drift import (
    KS_EXACT_MAX,
    Below,
    DriftThresholds,
    FeatureDrift,
    _factor_below,
    categorical_drift,
    counted_numeric_drift,
    numeric_drift,
    sorted_finite,
)

#: Finite values of a numeric column kept exactly (sorted); beyond, a KLL sketch summarises them.
EXACT_MAX = 2_000
#: The KLL sketch's accuracy parameter: normalized rank error ~1.33% single-sided, ~1.65% double-sided.
KLL_K = 200
FORMAT = "mloop.window_profile"
FORMAT_VERSION = 1

ColumnKind = Literal["numeric", "categorical"]


def _kll(k: int) -> Any:
    from datasketches import kll_doubles_sketch  # type: ignore[import-untyped]  # compiled, no stubs

    return kll_doubles_sketch(k)


def _kll_from_bytes(data: bytes) -> Any:
    from datasketches import kll_doubles_sketch

    return kll_doubles_sketch.deserialize(data)


def _finite_sorted(values: ArrayLike) -> tuple[NDArray[np.float64], int]:
    """``(finite values sorted ascending, number of rows)``: NaN and ±inf are missing."""
    ordered, _ = sorted_finite(values)
    low = int(np.searchsorted(ordered, -math.inf, side="right"))
    high = int(np.searchsorted(ordered, math.inf, side="left"))
    return ordered[low:high], int(np.asarray(values).size)


@dataclass(frozen=True, eq=False)
class NumericLayout:
    """The fixed cells of one numeric reference column: its inner bin edges and distinct sample values.

    ``m`` sorted boundaries ``b_0 < … < b_{m-1}`` make ``2m + 1`` cells: cell ``2i`` holds the values in
    ``(b_{i-1}, b_i)`` (``b_{-1} = -inf``), cell ``2i + 1`` the values equal to ``b_i``, cell ``2m`` those
    above ``b_{m-1}``.
    """

    boundaries: NDArray[np.float64]
    key: str

    @classmethod
    def of(cls, edges: ArrayLike, reference_sample: ArrayLike) -> NumericLayout:
        """The layout of a reference column with PSI bin ``edges`` and KS ``reference_sample``."""
        inner = np.asarray(edges, dtype=np.float64).ravel()[1:-1]
        sample = np.asarray(reference_sample, dtype=np.float64).ravel()
        parts = np.concatenate((inner, sample))
        boundaries = np.unique(parts[np.isfinite(parts)])
        boundaries.flags.writeable = False
        digest = hashlib.sha256(boundaries.astype("<f8").tobytes()).hexdigest()[:16]
        return cls(boundaries, f"{boundaries.size}:{digest}")

    @property
    def size(self) -> int:
        """The number of cells."""
        return 2 * int(self.boundaries.size) + 1

    def cells(self, finite_sorted: NDArray[np.float64]) -> NDArray[np.int64]:
        """The cell counts of finite values sorted ascending: two binary searches per boundary."""
        left = np.searchsorted(finite_sorted, self.boundaries, side="left")
        right = np.searchsorted(finite_sorted, self.boundaries, side="right")
        counts = np.empty(self.size, dtype=np.int64)
        counts[1::2] = right - left
        counts[0::2] = np.concatenate((left, [finite_sorted.size])) - np.concatenate(([0], right))
        return counts

    def representatives(self) -> NDArray[np.float64]:
        """One float inside each cell: ``b_i`` for a boundary's cell, the float just below ``b_i`` for the gap
        under it, the float just above ``b_{m-1}`` for the top one. A gap with no float inside can hold no
        value, so its count is 0 and its representative is never used."""
        b = self.boundaries
        if b.size == 0:
            return np.zeros(1)
        reps = np.empty(self.size, dtype=np.float64)
        reps[1::2] = b
        with np.errstate(over="ignore"):  # past ±max float it is ±inf: a cell no finite value is in
            reps[0:-1:2] = np.nextafter(b, -math.inf)
            reps[-1] = np.nextafter(b[-1], math.inf)
        return reps


@dataclass(frozen=True, eq=False)
class NumericWindow:
    """A numeric column of a window: see the module docstring. Exactly one of ``values`` and ``sketch`` is set."""

    layout: str
    n: int
    nulls: int
    cells: NDArray[np.int64]
    values: NDArray[np.float64] | None = None
    sketch: Any = field(default=None, repr=False)  # a datasketches kll_doubles_sketch, never changed once built

    kind: ColumnKind = field(default="numeric", init=False)

    @property
    def count(self) -> int:
        """Finite values."""
        return self.n - self.nulls

    @property
    def exact(self) -> bool:
        """Whether the values are kept (so the Wasserstein distance is exact too)."""
        return self.values is not None

    @property
    def rank_error(self) -> float:
        """The quantile summary's normalized rank error (99% confidence): 0 for kept values or a sketch that
        has not compacted yet; the Wasserstein distance is then within ``rank_error * (max - min)``."""
        if self.values is not None or not self.sketch.is_estimation_mode():
            return 0.0
        return float(self.sketch.normalized_rank_error(True))

    def quantile_items(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(items, weights)`` of the quantile summary: the kept values with weight 1, or the sketch's items."""
        if self.values is not None:
            return self.values, np.ones(self.values.size)
        if self.sketch.is_empty():
            return np.zeros(0), np.zeros(0)
        # The weights come from the sketch's CDF at its items: iterating a *merged* sketch (datasketches 5.2's
        # Python binding) yields every item with weight 1, while its CDF and quantiles are right.
        items = np.unique(np.fromiter((item for item, _ in self.sketch), dtype=np.float64))
        cdf = np.asarray(self.sketch.get_cdf(items.tolist(), True), dtype=np.float64)[:-1]
        weights = np.rint(np.diff(cdf, prepend=0.0) * int(self.sketch.n))
        return items, weights


@dataclass(frozen=True, eq=False)
class CategoricalWindow:
    """A categorical column of a window: rows, missing values, and the count of each label (zeros left out)."""

    n: int
    nulls: int
    counts: Mapping[str, int]

    kind: ColumnKind = field(default="categorical", init=False)


ColumnWindow = NumericWindow | CategoricalWindow


def numeric_window(
    values: ArrayLike, layout: NumericLayout, *, exact_max: int = EXACT_MAX, kll_k: int = KLL_K
) -> NumericWindow:
    """The window summary of one numeric column: ``values`` as floats, NaN (or ±inf) for missing."""
    finite, n = _finite_sorted(values)
    cells = layout.cells(finite)
    if finite.size <= exact_max:
        kept = finite.copy()
        kept.flags.writeable = False
        return NumericWindow(layout.key, n, n - int(finite.size), cells, values=kept)
    sketch = _kll(kll_k)
    sketch.update(finite)
    return NumericWindow(layout.key, n, n - int(finite.size), cells, sketch=sketch)


def categorical_window(counts: Mapping[str, int], nulls: int) -> CategoricalWindow:
    """The window summary of one categorical column from its label counts and missing count."""
    kept = _ordered_counts(counts.items())
    if nulls < 0:
        raise ValueError(f"nulls must be zero or more, got {nulls}")
    return CategoricalWindow(sum(kept.values()) + int(nulls), int(nulls), kept)


def _ordered_counts(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Counts by label, most frequent first then by label (the order drift's counting gives), zeros left out."""
    merged: dict[str, int] = {}
    for label, count in pairs:
        if int(count) < 0:
            raise ValueError(f"the count of category {label!r} is negative ({count})")
        if count:
            merged[str(label)] = merged.get(str(label), 0) + int(count)
    return dict(sorted(merged.items(), key=lambda kv: (-kv[1], kv[0])))


def _merge_numeric(a: NumericWindow, b: NumericWindow, exact_max: int, kll_k: int) -> NumericWindow:
    if a.layout != b.layout or a.cells.size != b.cells.size:
        raise ValueError(f"numeric layouts differ ({a.layout} and {b.layout}): profiles of different references")
    cells = a.cells + b.cells
    n, nulls = a.n + b.n, a.nulls + b.nulls
    if a.values is not None and b.values is not None and a.count + b.count <= exact_max:
        kept = np.sort(np.concatenate((a.values, b.values)))
        kept.flags.writeable = False
        return NumericWindow(a.layout, n, nulls, cells, values=kept)
    sketch = _kll(kll_k)
    for side in (a, b):
        if side.sketch is not None:
            sketch.merge(side.sketch)
        elif side.values is not None and side.values.size:
            sketch.update(np.array(side.values))  # a writable copy: the binding refuses a read-only array
    return NumericWindow(a.layout, n, nulls, cells, sketch=sketch)


def _merge_column(a: ColumnWindow, b: ColumnWindow, name: str, exact_max: int, kll_k: int) -> ColumnWindow:
    if isinstance(a, NumericWindow) and isinstance(b, NumericWindow):
        try:
            return _merge_numeric(a, b, exact_max, kll_k)
        except ValueError as exc:
            raise ValueError(f"column {name!r}: {exc}") from None
    if isinstance(a, CategoricalWindow) and isinstance(b, CategoricalWindow):
        counts = _ordered_counts([*a.counts.items(), *b.counts.items()])
        return CategoricalWindow(a.n + b.n, a.nulls + b.nulls, counts)
    raise ValueError(f"column {name!r} is {a.kind} in one profile and {b.kind} in the other")


@dataclass(frozen=True, eq=False)
class WindowProfile:
    """The mergeable profile of a set of rows: see the module docstring."""

    n_rows: int
    columns: Mapping[str, ColumnWindow]
    prediction: ColumnWindow | None = None

    def merge(self, other: WindowProfile, *, exact_max: int = EXACT_MAX, kll_k: int = KLL_K) -> WindowProfile:
        """:func:`merge` of this profile and ``other``."""
        return merge(self, other, exact_max=exact_max, kll_k=kll_k)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (lists, strings and finite numbers only) and versioned; :meth:`from_dict` reads it back."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "n_rows": self.n_rows,
            "columns": {name: _column_to_dict(column) for name, column in self.columns.items()},
            "prediction": None if self.prediction is None else _column_to_dict(self.prediction),
        }

    @classmethod
    def from_dict(cls, data: Any) -> WindowProfile:
        """A profile from :meth:`to_dict`'s form; ``ValueError`` saying which field is wrong otherwise."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f'not a window profile (no "format": {FORMAT!r})')
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"window profile format_version {data.get('format_version')!r}; this mloop reads {FORMAT_VERSION}"
            )
        n_rows = _count(data.get("n_rows"), "n_rows")
        columns = data.get("columns")
        if not isinstance(columns, dict):
            raise ValueError("columns: expected an object of columns")
        parsed = {str(name): _column_from_dict(value, f"columns.{name}") for name, value in columns.items()}
        prediction = data.get("prediction")
        pred = None if prediction is None else _column_from_dict(prediction, "prediction")
        for where, column in [*((f"columns.{k}", v) for k, v in parsed.items()), ("prediction", pred)]:
            if column is not None and column.n != n_rows:
                raise ValueError(f"{where}.n: {column.n} rows in a profile of {n_rows}")
        return cls(n_rows, parsed, pred)


def merge(a: WindowProfile, b: WindowProfile, *, exact_max: int = EXACT_MAX, kll_k: int = KLL_K) -> WindowProfile:
    """The profile of the union of the rows ``a`` and ``b`` summarise (both against the same reference).

    Counts add exactly; kept values are pooled while at most ``exact_max``, sketched beyond (KLL with
    ``kll_k``). ``ValueError`` when the two do not have the same columns, kinds and layouts.
    """
    if set(a.columns) != set(b.columns):
        differ = sorted(set(a.columns) ^ set(b.columns))
        raise ValueError(f"profiles of different column sets (only in one: {', '.join(differ)})")
    if (a.prediction is None) != (b.prediction is None):
        raise ValueError("one profile has predictions and the other has none")
    columns = {name: _merge_column(a.columns[name], b.columns[name], name, exact_max, kll_k) for name in a.columns}
    prediction = None
    if a.prediction is not None and b.prediction is not None:
        prediction = _merge_column(a.prediction, b.prediction, "prediction", exact_max, kll_k)
    return WindowProfile(a.n_rows + b.n_rows, columns, prediction)


def merge_all(profiles: Iterable[WindowProfile], *, exact_max: int = EXACT_MAX, kll_k: int = KLL_K) -> WindowProfile:
    """:func:`merge` of one or more profiles, in order."""
    merged: WindowProfile | None = None
    for profile in profiles:
        merged = profile if merged is None else merge(merged, profile, exact_max=exact_max, kll_k=kll_k)
    if merged is None:
        raise ValueError("merge_all needs at least one profile")
    return merged


def numeric_window_drift(
    feature: str,
    window: NumericWindow,
    *,
    edges: ArrayLike,
    reference_counts: ArrayLike,
    reference_null_rate: float,
    reference_sample: ArrayLike,
    thresholds: DriftThresholds,
) -> FeatureDrift:
    """:func:`~mloop.core.drift.numeric_drift` of the rows ``window`` summarises, from the summary.

    With kept values it is ``numeric_drift`` of those values (and the missing ones): identical to the rows'.
    Otherwise ``numeric_drift`` of a stand-in with the same cell counts, which gives the same PSI, KS, JS,
    missing-share test and decision (module docstring), and the Wasserstein distance from the sketch.
    """
    layout = NumericLayout.of(edges, reference_sample)
    if window.layout != layout.key or window.cells.size != layout.size:
        raise ValueError(
            f"feature {feature!r}: the window profile was built against another reference "
            f"(layout {window.layout}, the reference's is {layout.key})"
        )
    if window.values is None and window.count > KS_EXACT_MAX:
        # Past SciPy's exact KS every statistic reads counts below the cells' boundaries: no value per row.
        return counted_numeric_drift(
            feature,
            edges=edges,
            reference_counts=reference_counts,
            reference_null_rate=reference_null_rate,
            reference_sample=reference_sample,
            rows=window.n,
            finite=window.count,
            below=_cell_counts(layout, window),
            wasserstein=_sketch_wasserstein(reference_sample, window),
            thresholds=thresholds,
        )
    missing = np.full(window.nulls, math.nan)
    # SciPy's exact KS needs the values: at most KS_EXACT_MAX stand-ins, one per value, each inside its cell.
    stand_in = window.values if window.values is not None else np.repeat(layout.representatives(), window.cells)
    result = numeric_drift(
        feature,
        edges=edges,
        reference_counts=reference_counts,
        reference_null_rate=reference_null_rate,
        reference_sample=reference_sample,
        current=np.concatenate((stand_in, missing)),
        thresholds=thresholds,
    )
    if window.values is not None or result.wasserstein is None:
        return result
    return replace(result, wasserstein=_sketch_wasserstein(reference_sample, window))


def _cell_counts(layout: NumericLayout, window: NumericWindow) -> Below:
    """How many of the window's finite values lie below a boundary of its layout, exactly, from the cells."""
    total = np.concatenate(([0], np.cumsum(window.cells)))  # total[k]: the values in cells 0 … k-1
    b = layout.boundaries

    def below(points: NDArray[np.float64], side: Literal["left", "right"]) -> NDArray[np.int64]:
        points = np.asarray(points, dtype=np.float64)
        at = np.searchsorted(b, points)
        inside = np.isfinite(points)
        if inside.any() and (b.size == 0 or not np.array_equal(b[np.minimum(at, b.size - 1)][inside], points[inside])):
            raise ValueError("a point the window profile's cells cannot count below: not one of its boundaries")
        # Values < b_i fill cells 0 … 2i, values <= b_i also cell 2i + 1 (b_i itself).
        counts = total[np.minimum(2 * at + (2 if side == "right" else 1), total.size - 1)]
        return np.where(inside, counts, np.where(points > 0, window.count, 0)).astype(np.int64)

    return below


def _sketch_wasserstein(reference_sample: ArrayLike, window: NumericWindow) -> float | None:
    """Wasserstein-1 of the reference sample's finite values and the sketch's weighted items (``None`` when
    either side has none), scaled as :func:`~mloop.core.drift.wasserstein_sorted` scales values near ±1e308."""
    from scipy.stats import wasserstein_distance

    sample, _ = _finite_sorted(reference_sample)
    items, weights = window.quantile_items()
    if sample.size == 0 or items.size == 0:
        return None
    peak = max(float(np.max(np.abs(sample))), float(np.max(np.abs(items))))
    limit = float(np.finfo(np.float64).max) / (2 * (sample.size + items.size))
    # SciPy's differences and dot products of values this large overflow (a RuntimeWarning and inf; found by
    # the property tests, [1e308] against [-1.6e308]); a power of two scales exactly.
    factor = _factor_below(peak, limit) if peak > limit else 1.0
    return float(wasserstein_distance(sample * factor, items * factor, v_weights=weights)) / factor


def categorical_window_drift(
    feature: str,
    window: CategoricalWindow,
    *,
    reference_freq: Mapping[str, float],
    reference_null_rate: float,
    thresholds: DriftThresholds,
) -> FeatureDrift:
    """:func:`~mloop.core.drift.categorical_drift` of the rows ``window`` summarises: the same counts, so the same."""
    return categorical_drift(
        feature,
        reference_freq=reference_freq,
        reference_null_rate=reference_null_rate,
        current_counts=window.counts,
        current_nulls=window.nulls,
        thresholds=thresholds,
    )


# ------------------------------------------------------------------------------------------- dict form


def _column_to_dict(column: ColumnWindow) -> dict[str, Any]:
    if isinstance(column, CategoricalWindow):
        return {"kind": "categorical", "n": column.n, "nulls": column.nulls, "counts": dict(column.counts)}
    where = np.flatnonzero(column.cells)
    return {
        "kind": "numeric",
        "layout": column.layout,
        "n": column.n,
        "nulls": column.nulls,
        "cells": {"size": int(column.cells.size), "index": where.tolist(), "count": column.cells[where].tolist()},
        "values": None if column.values is None else column.values.tolist(),
        "sketch": None if column.sketch is None else base64.b64encode(column.sketch.serialize()).decode("ascii"),
    }


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where}: expected a whole number of zero or more, got {value!r}")
    return value


def _column_from_dict(data: Any, where: str) -> ColumnWindow:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object")
    kind = data.get("kind")
    n, nulls = _count(data.get("n"), f"{where}.n"), _count(data.get("nulls"), f"{where}.nulls")
    if nulls > n:
        raise ValueError(f"{where}.nulls: {nulls} missing values in {n} rows")
    if kind == "categorical":
        counts = data.get("counts")
        if not isinstance(counts, dict):
            raise ValueError(f"{where}.counts: expected an object of counts")
        kept = _ordered_counts((str(k), _count(v, f"{where}.counts.{k}")) for k, v in counts.items())
        if sum(kept.values()) + nulls != n:
            raise ValueError(f"{where}.counts: add up to {sum(kept.values())}, not {n - nulls} values")
        return CategoricalWindow(n, nulls, kept)
    if kind != "numeric":
        raise ValueError(f"{where}.kind: expected 'numeric' or 'categorical', got {kind!r}")
    layout = data.get("layout")
    if not isinstance(layout, str) or not layout:
        raise ValueError(f"{where}.layout: expected the layout's fingerprint")
    cells = _cells_from_dict(data.get("cells"), f"{where}.cells")
    count = n - nulls
    if int(cells.sum()) != count:
        raise ValueError(f"{where}.cells: add up to {int(cells.sum())}, not {count} values")
    values, sketch = data.get("values"), data.get("sketch")
    if (values is None) == (sketch is None):
        raise ValueError(f"{where}: expected exactly one of values and sketch")
    if values is not None:
        finite = _values_from_dict(values, f"{where}.values")
        if finite.size != count:
            raise ValueError(f"{where}.values: {finite.size} values, not {count}")
        return NumericWindow(layout, n, nulls, cells, values=finite)
    return NumericWindow(layout, n, nulls, cells, sketch=_sketch_from_dict(sketch, count, f"{where}.sketch"))


def _cells_from_dict(data: Any, where: str) -> NDArray[np.int64]:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object with size, index and count")
    size = _count(data.get("size"), f"{where}.size")
    index, count = data.get("index"), data.get("count")
    if not isinstance(index, list) or not isinstance(count, list) or len(index) != len(count):
        raise ValueError(f"{where}: index and count must be lists of the same length")
    cells = np.zeros(size, dtype=np.int64)
    for i, c in zip(index, count, strict=True):
        position = _count(i, f"{where}.index")
        if position >= size:
            raise ValueError(f"{where}.index: cell {position} of {size}")
        cells[position] += _count(c, f"{where}.count")
    return cells


def _values_from_dict(data: Any, where: str) -> NDArray[np.float64]:
    if not isinstance(data, list) or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in data):
        raise ValueError(f"{where}: expected a list of numbers")
    kept = np.asarray(data, dtype=np.float64)
    if not np.all(np.isfinite(kept)) or np.any(np.diff(kept) < 0):
        raise ValueError(f"{where}: expected finite values sorted ascending")
    kept.flags.writeable = False
    return kept


def _sketch_from_dict(data: Any, count: int, where: str) -> Any:
    if not isinstance(data, str):
        raise ValueError(f"{where}: expected a base64 text")
    try:
        sketch = _kll_from_bytes(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError, RuntimeError, IndexError, MemoryError, OverflowError) as exc:
        raise ValueError(f"{where}: not a KLL sketch ({exc})") from None
    if int(sketch.n) != count:
        raise ValueError(f"{where}: a sketch of {sketch.n} values, not {count}")
    return sketch


__all__ = [
    "EXACT_MAX",
    "FORMAT_VERSION",
    "KLL_K",
    "CategoricalWindow",
    "ColumnWindow",
    "NumericLayout",
    "NumericWindow",
    "WindowProfile",
    "categorical_window",
    "categorical_window_drift",
    "merge",
    "merge_all",
    "numeric_window",
    "numeric_window_drift",
]

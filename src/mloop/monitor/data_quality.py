"""Data quality of live traffic: what one monitoring window's logged features look like against the contract.

Per feature the model reads, over the window's raw logged rows (before :func:`~mloop.data.contract.coerce_frame`)
and the values the model saw (after it):

- **null rate**: the share of rows whose value was missing as sent (JSON null, NaN or the field left out),
  beside the training reference's null rate (the model version's profile);
- **unseen categories**: rows whose category the training data never had (the profile's category set), with the
  distinct values, most frequent first and at most ``monitor.data_quality.max_examples`` of them;
- **out of contract**: rows outside the contract's range (``min``/``max``) or category set, or a fraction in an
  ``integer`` column;
- **type coercions**: values sent as another type that the model read converted (the text ``"12"`` of a number,
  ``1`` of a boolean, a number of a text column), and values that could not be read at all (the text ``"n/a"`` of
  a number: the model saw a missing value).

A feature has an issue when a figure crosses its threshold in ``monitor.data_quality`` (shares of the window's
rows); the window's summary names the features with issues. Functions over frames only: no I/O.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from mloop.config import DataQualityConfig
from mloop.data.contract import ColumnSpec, Contract, coerce_frame
from mloop.data.profile import Profile

NULLS = "nulls"
UNSEEN = "unseen_categories"
OUT_OF_CONTRACT = "out_of_contract"
COERCED = "coerced"
COERCION_FAILURES = "coercion_failures"
ISSUE_KINDS = (NULLS, UNSEEN, OUT_OF_CONTRACT, COERCED, COERCION_FAILURES)

_NUMBER_TYPES = frozenset({"integer", "floating", "mixed-integer-float", "decimal"})


@dataclass(frozen=True)
class FeatureQuality:
    """The data-quality figures of one feature in one window; counts are rows (one value per row)."""

    feature: str
    dtype: str
    n_rows: int
    nulls: int
    null_rate: float
    reference_null_rate: float | None
    unseen: int
    unseen_values: tuple[str, ...]  # distinct unseen categories, most frequent first, bounded
    n_unseen_values: int  # how many distinct unseen categories there were in all
    out_of_contract: int
    coerced: int
    coercion_failures: int
    issues: tuple[str, ...] = ()

    @property
    def null_rate_increase(self) -> float:
        return self.null_rate - (self.reference_null_rate or 0.0)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["unseen_values"] = list(self.unseen_values)
        data["issues"] = list(self.issues)
        return data


@dataclass(frozen=True)
class DataQualityReport:
    """Every feature's figures in one window, and which features have issues."""

    n_rows: int
    features: tuple[FeatureQuality, ...]
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def features_with_issues(self) -> list[str]:
        return [f.feature for f in self.features if f.issues]

    @property
    def n_issues(self) -> int:
        """Features with at least one issue."""
        return len(self.features_with_issues)

    def issue_counts(self) -> dict[str, int]:
        """Features with each kind of issue, e.g. ``{"nulls": 2, "coercion_failures": 1}``; kinds of none left out."""
        counts = {kind: sum(kind in f.issues for f in self.features) for kind in ISSUE_KINDS}
        return {kind: n for kind, n in counts.items() if n}

    def get(self, feature: str) -> FeatureQuality | None:
        return next((f for f in self.features if f.feature == feature), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_rows": self.n_rows,
            "n_features": len(self.features),
            "n_issues": self.n_issues,
            "features_with_issues": self.features_with_issues,
            "issue_counts": self.issue_counts(),
            "thresholds": dict(self.thresholds),
            "features": [f.to_dict() for f in self.features],
        }


def data_quality(
    rows: pd.DataFrame,
    contract: Contract,
    profile: Profile | None = None,
    config: DataQualityConfig | None = None,
    *,
    columns: list[str] | None = None,
    coerced: pd.DataFrame | None = None,
) -> DataQualityReport:
    """The data quality of a window's raw logged feature ``rows`` against ``contract`` (and ``profile``, the
    model version's training reference: its null rates and category sets).

    ``columns``: the features to check (default: the profile's columns the contract has, as the model reads
    them, else the contract's features). ``coerced``: ``coerce_frame(rows, contract, columns)`` when the caller
    has it already.
    """
    config = config or DataQualityConfig()
    if columns is None:
        columns = [c for c in profile.columns if c in contract.columns] if profile else contract.features
    if coerced is None:
        coerced = coerce_frame(rows, contract, columns)
    n = len(rows)
    features = []
    for name in columns:
        spec = contract.columns[name]
        raw = rows[name] if name in rows.columns else pd.Series(np.nan, index=rows.index, dtype="float64")
        reference = profile.columns.get(name) if profile else None
        known = set(reference.frequencies) if reference is not None and reference.kind == "categorical" else None
        figures = _feature(name, spec, raw, coerced[name], known, config.max_examples)
        if reference is not None:
            figures = replace(figures, reference_null_rate=reference.null_rate)
        features.append(_judged(figures, spec, config))
    return DataQualityReport(n, tuple(features), config.model_dump())


def _feature(
    name: str, spec: ColumnSpec, raw: pd.Series, values: pd.Series, known: set[str] | None, max_examples: int
) -> FeatureQuality:
    n = len(raw)
    present = ~pd.isna(raw.to_numpy())
    nulls = int(n - present.sum())
    seen = values.to_numpy()
    failed = present & pd.isna(seen)
    coerced = present & ~failed & ~_native(raw, spec)
    out = np.zeros(n, dtype=bool)
    unseen_counts: Counter[str] = Counter()
    if spec.dtype in ("integer", "float"):
        numbers = seen.astype("float64")
        with np.errstate(invalid="ignore"):
            if spec.min is not None:
                out |= numbers < spec.min
            if spec.max is not None:
                out |= numbers > spec.max
            if spec.dtype == "integer":
                out |= np.isfinite(numbers) & (np.mod(numbers, 1) != 0)
    elif spec.dtype == "string":
        # Plain set lookups: a window is a few hundred rows, where pandas' per-call overhead would dominate.
        given = ~pd.isna(seen)
        text = seen[given]
        if spec.categories is not None:
            allowed = set(spec.categories)
            out[given] = np.fromiter((v not in allowed for v in text), dtype=bool, count=len(text))
        if known is not None:
            unseen_counts = Counter(str(v) for v in text if v not in known)
    ordered = sorted(unseen_counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return FeatureQuality(
        feature=name,
        dtype=spec.dtype,
        n_rows=n,
        nulls=nulls,
        null_rate=nulls / n if n else 0.0,
        reference_null_rate=None,
        unseen=sum(v for _, v in ordered),
        unseen_values=tuple(k for k, _ in ordered[:max_examples]),
        n_unseen_values=len(ordered),
        out_of_contract=int(out.sum()),
        coerced=int(coerced.sum()),
        coercion_failures=int(failed.sum()),
    )


def _native(raw: pd.Series, spec: ColumnSpec) -> np.ndarray:
    """Whether each value was sent as the contract's type already (a missing value counts as native)."""
    n = len(raw)
    dtype = raw.dtype
    numeric = spec.dtype in ("integer", "float")
    if pd.api.types.is_bool_dtype(dtype):
        return np.full(n, spec.dtype == "boolean")
    if pd.api.types.is_numeric_dtype(dtype):
        return np.full(n, numeric)
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return np.full(n, spec.dtype not in ("integer", "float", "boolean"))
    inferred = pd.api.types.infer_dtype(raw, skipna=True)
    if inferred == "empty":
        return np.full(n, True)
    if inferred == "string":
        return np.full(n, not numeric and spec.dtype != "boolean")
    if inferred in _NUMBER_TYPES:
        return np.full(n, numeric)
    if inferred == "boolean":
        return np.full(n, spec.dtype == "boolean")
    if numeric:
        kind = raw.map(lambda v: isinstance(v, int | float | np.number) and not isinstance(v, bool | np.bool_))
    elif spec.dtype == "boolean":
        kind = raw.map(lambda v: isinstance(v, bool | np.bool_))
    else:
        kind = raw.map(lambda v: isinstance(v, str))
    return kind.to_numpy(dtype=bool) | raw.isna().to_numpy()


def _judged(figures: FeatureQuality, spec: ColumnSpec, config: DataQualityConfig) -> FeatureQuality:
    n = figures.n_rows
    if n == 0:
        return figures

    def above(count: int, share: float) -> bool:
        return count > 0 and count / n > share

    issues = []
    if figures.null_rate_increase > config.max_null_rate_increase or (not spec.nullable and figures.nulls > 0):
        issues.append(NULLS)
    if above(figures.unseen, config.max_unseen_share):
        issues.append(UNSEEN)
    if above(figures.out_of_contract, config.max_out_of_contract_share):
        issues.append(OUT_OF_CONTRACT)
    if above(figures.coerced, config.max_coerced_share):
        issues.append(COERCED)
    if above(figures.coercion_failures, config.max_coercion_failure_share):
        issues.append(COERCION_FAILURES)
    return replace(figures, issues=tuple(issues))


__all__ = ["ISSUE_KINDS", "DataQualityReport", "FeatureQuality", "data_quality"]

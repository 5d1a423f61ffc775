"""The reference profile: what monitoring needs to know about the training data, and nothing more.

A profile is stored with each model version so drift can be measured against the training
distribution without reloading the training data. Per numeric column it keeps quantile bin edges
and counts (for PSI), a fixed random sample of values (for KS) and summary statistics; per
categorical column the category shares; for both the share of missing values. The model's
predictions on the training data can be profiled too, as a column named ``__prediction__``.

JSON shape (``Profile.to_json``)::

    {"format_version": 1, "n_rows": 2930,
     "columns": {
        "Gr_Liv_Area": {"kind": "numeric", "count": 2930, "null_rate": 0.0,
                        "mean": 1499.69, "std": 505.51, "min": 334.0, "max": 5642.0,
                        "edges": [334.0, 914.0, ..., 5642.0], "counts": [293, ...],
                        "sample": [1656.0, ...]},
        "Neighborhood": {"kind": "categorical", "count": 2930, "null_rate": 0.0,
                         "frequencies": {"North_Ames": 0.151, ...}}},
     "prediction": {"kind": "numeric", ...} | null}

Floats are written in their shortest round-trip form, so ``from_json(to_json())`` is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mloop.core.drift import bin_counts_sorted, quantile_edges
from mloop.errors import ProfileError

PREDICTION = "__prediction__"
ColumnKind = Literal["numeric", "categorical"]

# The defaults of every profile: quantile bins per numeric column, and the size and seed of its KS sample.
# This module owns them; monitor.drift.compute_drift summarises a reference frame with the same ones (through
# numeric_summary and category_shares), so its statistics are those of the profile a model would store.
BINS = 10
SAMPLE_SIZE = 2000
SEED = 0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NumericProfile(_Model):
    """One numeric column; statistics are ``None`` when the column has too few values for them (or, for the
    std of values spread across most of the float range, when it is past the largest float)."""

    kind: Literal["numeric"] = "numeric"
    count: int = Field(ge=0, description="Non-null values.")
    null_rate: float = Field(ge=0, le=1)
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    edges: list[float] = Field(description="Unique quantile bin edges, first = min, last = max.")
    counts: list[int] = Field(description="Values per bin; the outer bins are open-ended.")
    sample: list[float] = Field(description="A fixed random sample of non-null values, for KS.")

    @model_validator(mode="after")
    def _bins_match_edges(self) -> NumericProfile:
        if len(self.counts) != max(len(self.edges) - 1, 1):
            raise ValueError(f"{len(self.edges)} edges need {max(len(self.edges) - 1, 1)} counts")
        return self


class CategoricalProfile(_Model):
    """One categorical column; values are compared as strings (see :func:`category_counts`)."""

    kind: Literal["categorical"] = "categorical"
    count: int = Field(ge=0, description="Non-null values.")
    null_rate: float = Field(ge=0, le=1)
    frequencies: dict[str, float] = Field(description="Share of each category among non-null values.")


ColumnProfile = Annotated[NumericProfile | CategoricalProfile, Field(discriminator="kind")]


class Profile(_Model):
    """The reference profile of a training set (and optionally of the model's predictions on it)."""

    format_version: Literal[1] = 1
    n_rows: int = Field(ge=0)
    columns: dict[str, ColumnProfile]
    prediction: ColumnProfile | None = None

    @property
    def numeric(self) -> list[str]:
        return [name for name, col in self.columns.items() if col.kind == "numeric"]

    @property
    def categorical(self) -> list[str]:
        return [name for name, col in self.columns.items() if col.kind == "categorical"]

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> Profile:
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise ProfileError(
                f"Not a valid reference profile ({exc.error_count()} problems, first: "
                f"{_first_error(exc)}). Re-register the model to store a fresh profile."
            ) from None

    def save(self, path: Path | str) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path | str) -> Profile:
        file = Path(path)
        if not file.is_file():
            raise ProfileError(
                f"No reference profile at {file}. It is written when a model version is registered; "
                "register the model again (`mloop register`) to create it."
            )
        return cls.from_json(file.read_bytes())


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc']) or '(top level)'}: {first['msg']}"


def infer_kind(values: pd.Series) -> ColumnKind | None:
    """numeric dtypes → numeric; bool, string, object and category → categorical; else ``None``."""
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
    ):
        return "categorical"
    return None  # datetimes, periods, intervals: no drift statistic here


def infer_kinds(frame: pd.DataFrame, columns: list[str] | None = None) -> tuple[list[str], list[str]]:
    """Split columns into ``(numeric, categorical)`` by dtype; unsupported dtypes are left out."""
    numeric: list[str] = []
    categorical: list[str] = []
    for name in frame.columns if columns is None else columns:
        kind = infer_kind(frame[name])
        if kind == "numeric":
            numeric.append(str(name))
        elif kind == "categorical":
            categorical.append(str(name))
    return numeric, categorical


def numeric_values(values: pd.Series) -> NDArray[np.float64]:
    """Values as float64 with NaN for missing; unparseable and infinite values count as missing."""
    array = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    finite: NDArray[np.float64] = np.where(np.isfinite(array), array, np.nan)  # a copy: to_numpy may be read-only
    return finite


def category_counts(values: pd.Series) -> tuple[dict[str, int], int]:
    """``(count per category label, missing count)``, most frequent first.

    Labels are strings; integral floats are written as integers so a code column read back with
    NaNs (``20.0``) matches its integer reference (``20``).
    """
    counts: pd.Series
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) == "string":
        # Text already (most categorical columns): counted as they are, without a string copy of each value.
        counts = values.value_counts(dropna=True, sort=False)
        present = int(counts.sum())
    else:
        kept = values.dropna()
        if pd.api.types.is_float_dtype(kept.dtype) and bool(np.all(np.mod(kept.to_numpy(), 1) == 0)):
            kept = kept.astype("int64")
        counts = kept.astype(str).value_counts(sort=False)
        present = len(kept)
    ordered = sorted(((str(k), int(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0]))
    return dict(ordered), len(values) - present


@dataclass(frozen=True)
class NumericSummary:
    """What a numeric profile keeps of a column's finite values, besides their count, mean and std."""

    edges: NDArray[np.float64]  # unique quantile bin edges, first = min, last = max
    counts: NDArray[np.int64]  # values per bin; the outer bins are open-ended
    sample: np.ndarray  # the seeded sample, in the values' dtype and order
    min: float | None
    max: float | None


def numeric_summary(
    finite: np.ndarray, bins: int = BINS, sample_size: int = SAMPLE_SIZE, seed: int = SEED
) -> NumericSummary:
    """Quantile edges, bin counts, min, max and sample of a column's finite values (no NaN, float64 or float32).

    One sort serves the edges, the counts, min and max (bit-identical to np.quantile and np.searchsorted on
    the unsorted values; float32 is sorted as float32, then widened: the same order and values). The sample
    reads the unsorted values, so the sampled rows stay what they always were; it never shares ``finite``'s
    memory, which the caller may drop.
    """
    ordered = np.sort(finite).astype(np.float64, copy=False)
    edges = quantile_edges(ordered, bins)
    counts = bin_counts_sorted(ordered, edges)
    if finite.size > sample_size:
        rng = np.random.default_rng(seed)  # fresh per column: adding a column leaves the others' samples alone
        sample = finite[np.sort(rng.choice(finite.size, sample_size, replace=False))]
    else:
        sample = finite.copy()
    low, high = (float(ordered[0]), float(ordered[-1])) if ordered.size else (None, None)
    return NumericSummary(edges, counts, sample, low, high)


def category_shares(counts: dict[str, int], nulls: int) -> tuple[dict[str, float], float]:
    """``(share of each category among non-null values, null rate)`` of :func:`category_counts`' output."""
    present = sum(counts.values())
    return {label: count / present for label, count in counts.items()}, _rate(nulls, present + nulls)


def _mean_std(finite: NDArray[np.float64], low: float | None, high: float | None) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation of finite values between ``low`` and ``high``; ``None`` where undefined.

    The sum behind the mean overflowed for values near 1e308 and the sum of squares behind the std already for
    values near 1e154, each an inf behind a RuntimeWarning (found by the property tests). Such values are
    scaled down by a power of two first (exact) and the results scaled back; a std past the largest float
    (values spread from -1e308 to 1e308) is ``None``, as a statistic the column cannot give.
    """
    if low is None or high is None:
        return None, None
    peak = max(abs(low), abs(high))
    limit = math.sqrt(float(np.finfo(np.float64).max) / finite.size) / 2
    factor = math.ldexp(1.0, math.frexp(limit)[1] - math.frexp(peak)[1] - 1) if peak > limit else 1.0
    scaled = finite * factor if factor != 1.0 else finite
    mean = float(scaled.mean()) / factor
    std = float(scaled.std(ddof=1)) / factor if finite.size > 1 else None  # Python floats: inf, no warning
    return mean, std if std is None or math.isfinite(std) else None


def _numeric_profile(values: pd.Series, bins: int, sample_size: int, seed: int) -> NumericProfile:
    array = numeric_values(values)
    finite = array[~np.isnan(array)]
    summary = numeric_summary(finite, bins, sample_size, seed)
    mean, std = _mean_std(finite, summary.min, summary.max)
    return NumericProfile(
        count=int(finite.size),
        null_rate=_rate(array.size - finite.size, array.size),
        mean=mean,
        std=std,
        min=summary.min,
        max=summary.max,
        edges=summary.edges.tolist(),
        counts=summary.counts.tolist(),
        sample=summary.sample.tolist(),  # float64 to Python floats, as float(v) each would
    )


def _categorical_profile(values: pd.Series) -> CategoricalProfile:
    counts, nulls = category_counts(values)
    frequencies, null_rate = category_shares(counts, nulls)
    return CategoricalProfile(count=len(values) - nulls, null_rate=null_rate, frequencies=frequencies)


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def profile_column(
    values: pd.Series, kind: ColumnKind, *, bins: int = BINS, sample_size: int = SAMPLE_SIZE, seed: int = SEED
) -> NumericProfile | CategoricalProfile:
    """Profile one column as ``kind``."""
    if kind == "numeric":
        return _numeric_profile(values, bins, sample_size, seed)
    return _categorical_profile(values)


def build_profile(
    frame: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    prediction: np.ndarray | pd.Series | None = None,
    sample_size: int = SAMPLE_SIZE,
    bins: int = BINS,
    seed: int = SEED,
    prediction_kind: ColumnKind | None = None,
) -> Profile:
    """Profile the training ``frame`` (and the model's ``prediction`` on it) for monitoring.

    ``prediction`` may be numbers (a regression output or a positive-class probability: profiled
    numeric) or labels (strings/bools: profiled categorical). Integer class labels are numbers to
    NumPy, so pass ``prediction_kind="categorical"`` for them.
    """
    _check_columns(frame, numeric, categorical)
    if bins < 1 or sample_size < 1:
        raise ValueError("bins and sample_size must be at least 1")
    kinds: dict[str, ColumnKind] = {
        **dict.fromkeys(numeric, "numeric"),
        **dict.fromkeys(categorical, "categorical"),
    }
    columns = {
        name: profile_column(frame[name], kind, bins=bins, sample_size=sample_size, seed=seed)
        for name, kind in kinds.items()
    }
    return Profile(
        n_rows=len(frame),
        columns=columns,
        prediction=_prediction_profile(prediction, len(frame), prediction_kind, bins, sample_size, seed),
    )


def prediction_profile(
    prediction: np.ndarray | pd.Series,
    kind: ColumnKind | None = None,
    *,
    bins: int = BINS,
    sample_size: int = SAMPLE_SIZE,
    seed: int = SEED,
) -> NumericProfile | CategoricalProfile:
    """The profile of a model's predictions on a sample of the training rows (``build_profile`` wants
    one per row): what prediction drift is measured against."""
    profile = _prediction_profile(prediction, len(prediction), kind, bins, sample_size, seed)
    assert profile is not None  # noqa: S101 - a prediction was given
    return profile


def _check_columns(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> None:
    if frame.empty:
        raise ProfileError("Cannot build a reference profile from an empty frame: it has no rows.")
    both = sorted(set(numeric) & set(categorical))
    if both:
        raise ValueError(f"columns listed as both numeric and categorical: {', '.join(both)}")
    missing = [c for c in [*numeric, *categorical] if c not in frame.columns]
    if missing:
        raise ProfileError(
            f"Cannot profile columns {', '.join(missing)}: the frame has no such columns "
            f"(it has {', '.join(map(str, frame.columns[:20]))}{', …' if frame.shape[1] > 20 else ''})."
        )


def _prediction_profile(
    prediction: np.ndarray | pd.Series | None,
    n_rows: int,
    kind: ColumnKind | None,
    bins: int,
    sample_size: int,
    seed: int,
) -> NumericProfile | CategoricalProfile | None:
    if prediction is None:
        return None
    values = prediction_series(prediction)
    if len(values) != n_rows:
        raise ProfileError(f"Got {len(values)} predictions for {n_rows} rows; pass one prediction per row.")
    resolved = kind or infer_kind(values)
    if resolved is None:
        raise ProfileError(f"Cannot profile predictions of dtype {values.dtype}; pass numbers or labels.")
    return profile_column(values, resolved, bins=bins, sample_size=sample_size, seed=seed)


def prediction_series(prediction: np.ndarray | pd.Series) -> pd.Series:
    """Predictions as a flat Series (a column vector ``(n, 1)`` is accepted)."""
    if isinstance(prediction, pd.Series):
        return prediction.reset_index(drop=True)
    array = np.asarray(prediction)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ProfileError(f"Predictions must be one value per row, got an array of shape {array.shape}.")
    return pd.Series(array, name=PREDICTION)


__all__ = [
    "BINS",
    "PREDICTION",
    "SAMPLE_SIZE",
    "SEED",
    "CategoricalProfile",
    "ColumnKind",
    "ColumnProfile",
    "NumericProfile",
    "NumericSummary",
    "Profile",
    "build_profile",
    "category_counts",
    "category_shares",
    "infer_kind",
    "infer_kinds",
    "numeric_summary",
    "numeric_values",
    "prediction_profile",
    "prediction_series",
    "profile_column",
]

"""Drift of a window of production rows against a model's reference profile.

The per-feature statistics and decision rules live in :mod:`mloop.core.drift`; this module turns a
profile and a window into a :class:`DriftReport`. Prediction drift is reported beside the features
but does not count towards ``n_drifted``: the inputs decide whether the data drifted, and the
retraining policy can weigh prediction drift on its own.

Columns are read as arrays without copies where pandas allows it: a float64 or float32 column is used
in place (copied only when it holds infinities, which count as missing), and categories are counted from the
codes of a ``category`` column (``np.bincount``) or by ``value_counts`` on the distinct values of a
string column, so no row is ever turned into a Python string. :func:`compute_drift` summarises the
reference frame with :func:`mloop.data.profile.numeric_summary` and :func:`~mloop.data.profile.category_shares`,
the summaries :func:`~mloop.data.profile.build_profile` stores, with its default bins and sample
(``data.profile.BINS``, ``SAMPLE_SIZE``, ``SEED``), so the statistics are those against the profile of
the reference (tested to be identical) without building the profile's JSON model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mloop.core.drift import (
    Decision,
    DriftThresholds,
    FeatureDrift,
    bin_counts,
    categorical_drift,
    decide,
    numeric_drift,
)
from mloop.data.profile import (
    PREDICTION,
    CategoricalProfile,
    NumericProfile,
    Profile,
    category_counts,
    category_shares,
    numeric_summary,
    numeric_values,
    prediction_series,
)
from mloop.errors import MonitorError
from mloop.monitor.columns import ColumnSource, TableLike, column_source

if TYPE_CHECKING:
    from mloop.config import MonitorConfig

FRAME_COLUMNS = [
    "feature",
    "kind",
    "drifted",
    "psi",
    "test",
    "test_statistic",
    "p_value",
    "p_adjusted",
    "js_distance",
    "wasserstein",
    "null_rate_reference",
    "null_rate_current",
    "unseen_categories",
    "n_current",
    "reason",
]


@dataclass(frozen=True)
class DriftReport:
    """Per-feature drift of one window, and whether the window as a whole drifted."""

    features: list[FeatureDrift]
    prediction: FeatureDrift | None
    n_rows: int
    thresholds: DriftThresholds
    min_drifted_features: int = 1

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def n_drifted(self) -> int:
        return len(self.drifted_features)

    @property
    def dataset_drift(self) -> bool:
        return self.n_drifted >= self.min_drifted_features

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (non-finite numbers become ``None``)."""
        return {
            "n_rows": self.n_rows,
            "n_features": len(self.features),
            "n_drifted": self.n_drifted,
            "dataset_drift": self.dataset_drift,
            "drifted_features": self.drifted_features,
            "min_drifted_features": self.min_drifted_features,
            "thresholds": asdict(self.thresholds),
            "features": [f.to_dict() for f in self.features],
            "prediction": self.prediction.to_dict() if self.prediction else None,
        }

    def to_frame(self, include_prediction: bool = False) -> pd.DataFrame:
        """One row per feature (``include_prediction`` appends the ``__prediction__`` row)."""
        rows = list(self.features)
        if include_prediction and self.prediction is not None:
            rows.append(self.prediction)
        records = [{key: _nan_for_none(getattr(row, key)) for key in FRAME_COLUMNS} for row in rows]
        frame = pd.DataFrame.from_records(records, columns=FRAME_COLUMNS)
        # Keep numeric columns numeric even when every value is missing (e.g. no numeric features).
        for column in ("psi", "test_statistic", "p_value", "p_adjusted", "js_distance", "wasserstein"):
            frame[column] = frame[column].astype("float64")
        return frame


def _nan_for_none(value: Any) -> Any:
    return np.nan if value is None else value


def thresholds_from_config(config: MonitorConfig) -> DriftThresholds:
    """The drift thresholds of a project's ``monitor`` settings."""
    return DriftThresholds(
        psi_threshold=config.psi_threshold,
        ks_pvalue=config.ks_pvalue,
        chi2_pvalue=config.chi2_pvalue,
        decision=config.decision,
        false_alarm_rate=config.false_alarm_rate,
        effect_floor=config.effect_floor,
        ks_effect_floor=config.ks_effect_floor,
    )


def numeric_array(values: pd.Series) -> np.ndarray:
    """:func:`~mloop.data.profile.numeric_values` (floats, NaN for missing and infinite values), but
    the column itself, uncopied, when it is already float64 or float32 without infinities (float32
    stays float32: the drift statistics widen its sorted copy). Treat it as read-only."""
    if values.dtype in (np.float64, np.float32):
        array = values.to_numpy()
        infinite = np.isinf(array)
        if not infinite.any():
            return array
        return np.where(infinite, np.nan, array)
    return numeric_values(values)


def count_categories(values: pd.Series) -> tuple[dict[str, int], int]:
    """:func:`~mloop.data.profile.category_counts` (same labels, counts and order), counted fast.

    A ``category`` column is counted from its codes and only its category labels become strings;
    bool and string columns are counted by ``value_counts`` and only the distinct values become
    strings. Other columns (numbers, mixed objects) go through ``category_counts`` itself.
    """
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        present = codes >= 0
        nulls = int(codes.size - np.count_nonzero(present))
        tally = np.bincount(codes[present] if nulls else codes, minlength=len(dtype.categories))
        labels = [str(label) for label in pd.Series(dtype.categories).astype(str)]
        return _ordered(zip(labels, tally.tolist(), strict=True)), nulls
    if (
        pd.api.types.is_bool_dtype(dtype)
        or isinstance(dtype, pd.StringDtype)
        or (pd.api.types.is_object_dtype(dtype) and pd.api.types.infer_dtype(values, skipna=True) == "string")
    ):
        counted = values.value_counts(dropna=True)
        nulls = int(len(values) - counted.sum())
        return _ordered((str(label), int(count)) for label, count in counted.items()), nulls
    return category_counts(values)


def _ordered(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Counts by label (labels that print alike added up), most frequent first, zeros left out."""
    merged: dict[str, int] = {}
    for label, count in pairs:
        if count:
            merged[label] = merged.get(label, 0) + int(count)
    return dict(sorted(merged.items(), key=lambda kv: (-kv[1], kv[0])))


def column_drift(
    name: str, reference: NumericProfile | CategoricalProfile, values: pd.Series, thresholds: DriftThresholds
) -> FeatureDrift:
    """Drift of one window column against its reference profile; the profile decides the kind."""
    if isinstance(reference, NumericProfile):
        return numeric_drift(
            name,
            edges=reference.edges,
            reference_counts=reference.counts,
            reference_null_rate=reference.null_rate,
            reference_sample=reference.sample,
            current=numeric_array(values),
            thresholds=thresholds,
        )
    counts, nulls = count_categories(values)
    return categorical_drift(
        name,
        reference_freq=reference.frequencies,
        reference_null_rate=reference.null_rate,
        current_counts=counts,
        current_nulls=nulls,
        thresholds=thresholds,
    )


@dataclass(frozen=True)
class Distribution:
    """Reference and current shares of one feature over the same cells, for plotting.

    Numeric cells are the reference quantile bins (labelled by their lower edge; the outer bins are
    open-ended, as for PSI); categorical cells are the ``top`` most frequent reference categories and
    "other". Missing values are left out: the null rates are reported beside the statistics.
    """

    feature: str
    cells: list[str]
    reference: list[float]
    current: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "cells": self.cells, "reference": self.reference, "current": self.current}


def _shares(counts: np.ndarray) -> list[float]:
    total = float(counts.sum())
    return [float(c) / total if total > 0 else 0.0 for c in counts]


def distribution(
    name: str, reference: NumericProfile | CategoricalProfile, values: pd.Series, top: int = 10
) -> Distribution:
    """The cells of :func:`column_drift`, as shares, for the report's distribution charts."""
    if isinstance(reference, NumericProfile):
        edges = reference.edges
        current = bin_counts(numeric_array(values), edges) if edges else np.zeros(1)
        cells = [f"{edge:,.0f}" if abs(edge) >= 1000 else f"{edge:.4g}" for edge in edges[:-1]] or ["all"]
        return Distribution(name, cells, _shares(np.asarray(reference.counts, dtype=float)), _shares(current))
    kept = sorted(reference.frequencies, key=lambda c: -reference.frequencies[c])[:top]
    counts, _ = count_categories(values)
    ref = [reference.frequencies[c] for c in kept]
    cur = [float(counts.get(c, 0)) for c in kept]
    ref.append(max(0.0, 1.0 - sum(ref)))
    cur.append(float(sum(v for k, v in counts.items() if k not in kept)))
    return Distribution(name, [*kept, "other"], _shares(np.asarray(ref)), _shares(np.asarray(cur)))


def drift_report(
    profile: Profile,
    window: TableLike,
    thresholds: DriftThresholds,
    predictions: np.ndarray | pd.Series | None = None,
    min_drifted_features: int = 1,
) -> DriftReport:
    """Compare ``window`` (and the model's ``predictions`` on it) with the reference ``profile``.

    ``window`` is a DataFrame, a pyarrow Table or Dataset, or a Parquet path (read one column at a
    time, see :mod:`mloop.monitor.columns`). Window columns the profile does not know are ignored;
    profile columns missing from the window raise :class:`MonitorError`. Predictions are compared only
    when the profile has a prediction profile.
    """
    if min_drifted_features < 1:
        raise ValueError("min_drifted_features must be at least 1")
    source = column_source(window, "window")
    n_rows = source.num_rows
    if n_rows == 0:
        raise MonitorError("The monitoring window has no rows; wait for predictions to be logged.")
    present = set(source.names)
    missing = [name for name in profile.columns if name not in present]
    if missing:
        raise MonitorError(
            f"The monitoring window lacks {len(missing)} column(s) of the reference profile: "
            f"{', '.join(missing)}. Log every feature the model was trained on, or compare against "
            "the profile of a model trained without them."
        )
    features = [column_drift(name, ref, source.read(name), thresholds) for name, ref in profile.columns.items()]
    return DriftReport(
        features=decide(features, thresholds),
        prediction=_prediction_drift(profile, predictions, n_rows, thresholds),
        n_rows=n_rows,
        thresholds=thresholds,
        min_drifted_features=min_drifted_features,
    )


def _prediction_drift(
    profile: Profile, predictions: np.ndarray | pd.Series | None, n_rows: int, thresholds: DriftThresholds
) -> FeatureDrift | None:
    if predictions is None or profile.prediction is None:
        return None
    values = prediction_series(predictions)
    if len(values) != n_rows:
        raise MonitorError(f"Got {len(values)} predictions for a window of {n_rows} rows; pass one per row.")
    return column_drift(PREDICTION, profile.prediction, values, thresholds)


def compute_drift(
    reference: TableLike,
    current: TableLike,
    columns: list[str] | None = None,
    psi_threshold: float = 0.2,
    ks_pvalue: float = 0.01,
    chi2_pvalue: float = 0.01,
    decision: Decision = "calibrated",
    false_alarm_rate: float = 0.05,
    effect_floor: float = 0.1,
    ks_effect_floor: float = 0.1,
) -> pd.DataFrame:
    """Per-feature drift of ``current`` against ``reference``, one row per column.

    Each side is a pandas DataFrame, a pyarrow Table or Dataset, or the path of a Parquet file or
    folder (a snapshot, say). Columns are compared one at a time and released, so with Arrow or Parquet
    input neither side is ever in memory whole (see :mod:`mloop.monitor.columns`); the results are the
    same as from the DataFrames the data converts to.

    Numeric dtypes are compared as numbers (PSI + KS); bool, string, object and category dtypes as
    categories (chi² + PSI). With ``columns=None`` every reference column of a supported dtype is
    compared. The frame has the columns of :data:`FRAME_COLUMNS`; ``drifted`` holds the decision:
    calibrated over the compared columns by default (``false_alarm_rate``, ``effect_floor``,
    ``ks_effect_floor``), or each
    column alone with ``decision="per_feature"`` (``psi_threshold``, ``ks_pvalue``, ``chi2_pvalue``);
    see :mod:`mloop.core.drift`.

    >>> compute_drift(train_df, live_df)[["feature", "drifted", "psi", "p_value"]]  # doctest: +SKIP
    >>> compute_drift("reference.parquet", "window.parquet")  # doctest: +SKIP
    """
    ref = column_source(reference, "reference")
    cur = column_source(current, "current")
    if ref.num_rows == 0:
        raise MonitorError("The reference frame has no rows; nothing to compare against.")
    known = ref.names
    if columns is not None:
        absent = [c for c in columns if c not in known]
        if absent:
            raise MonitorError(f"The reference frame has no column(s) {', '.join(absent)}.")
    kinds = {name: ref.kind(name) for name in (known if columns is None else columns)}
    numeric = [name for name, kind in kinds.items() if kind == "numeric"]
    categorical = [name for name, kind in kinds.items() if kind == "categorical"]
    if columns is not None:
        unsupported = [c for c in columns if kinds[c] is None]
        if unsupported:
            raise MonitorError(
                f"Cannot compute drift of column(s) {', '.join(unsupported)}: only numeric, bool, "
                "string and categorical dtypes are supported."
            )
    if not numeric and not categorical:
        raise MonitorError("No column of a supported dtype (numeric, bool, string, category) to compare.")
    thresholds = DriftThresholds(
        psi_threshold=psi_threshold,
        ks_pvalue=ks_pvalue,
        chi2_pvalue=chi2_pvalue,
        decision=decision,
        false_alarm_rate=false_alarm_rate,
        effect_floor=effect_floor,
        ks_effect_floor=ks_effect_floor,
    )
    if cur.num_rows == 0:
        raise MonitorError("The monitoring window has no rows; wait for predictions to be logged.")
    present = set(cur.names)
    missing = [name for name in [*numeric, *categorical] if name not in present]
    if missing:
        raise MonitorError(
            f"The monitoring window lacks {len(missing)} column(s) of the reference profile: "
            f"{', '.join(missing)}. Log every feature the model was trained on, or compare against "
            "the profile of a model trained without them."
        )
    # One column of each side at a time: each pair is read, summarised and dropped before the next.
    features = [_numeric_from_frames(name, ref, cur, thresholds) for name in numeric]
    features += [_categorical_from_frames(name, ref, cur, thresholds) for name in categorical]
    return DriftReport(
        features=decide(features, thresholds), prediction=None, n_rows=cur.num_rows, thresholds=thresholds
    ).to_frame()


def _numeric_from_frames(name: str, ref: ColumnSource, cur: ColumnSource, thresholds: DriftThresholds) -> FeatureDrift:
    """:func:`column_drift` against the numeric profile ``build_profile`` would store for the reference column.

    The reference column is summarised (edges, counts, sample, null rate) and dropped before the
    window's column is read, so at most one full column of either side is held at a time.
    """
    array = numeric_array(ref.read(name))
    missing = np.isnan(array)
    nulls = int(np.count_nonzero(missing))
    finite = array[~missing] if nulls else array  # the column itself when nothing is missing: read only
    summary = numeric_summary(finite)  # build_profile's defaults; the sample is a copy
    null_rate = nulls / array.size if array.size else 0.0
    del array, missing, finite  # the reference column: only its summary is needed from here on
    return numeric_drift(
        name,
        edges=summary.edges,
        reference_counts=summary.counts,
        reference_null_rate=null_rate,
        reference_sample=summary.sample,
        current=numeric_array(cur.read(name)),
        thresholds=thresholds,
    )


def _categorical_from_frames(
    name: str, ref: ColumnSource, cur: ColumnSource, thresholds: DriftThresholds
) -> FeatureDrift:
    """:func:`column_drift` against the categorical profile ``build_profile`` would store for the reference column."""
    frequencies, null_rate = category_shares(*count_categories(ref.read(name)))
    current_counts, current_nulls = count_categories(cur.read(name))
    return categorical_drift(
        name,
        reference_freq=frequencies,
        reference_null_rate=null_rate,
        current_counts=current_counts,
        current_nulls=current_nulls,
        thresholds=thresholds,
    )


__all__ = [
    "FRAME_COLUMNS",
    "Distribution",
    "DriftReport",
    "column_drift",
    "compute_drift",
    "count_categories",
    "distribution",
    "drift_report",
    "numeric_array",
    "thresholds_from_config",
]

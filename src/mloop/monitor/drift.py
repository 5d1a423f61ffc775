"""Drift of a window of production rows against a model's reference profile.

The per-feature statistics and decision rules live in :mod:`mloop.core.drift`; this module turns a
profile and a window into a :class:`DriftReport`. Prediction drift is reported beside the features
but does not count towards ``n_drifted``: the inputs decide whether the data drifted, and the
retraining policy can weigh prediction drift on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mloop.core.drift import DriftThresholds, FeatureDrift, bin_counts, categorical_drift, numeric_drift
from mloop.data.profile import (
    PREDICTION,
    CategoricalProfile,
    NumericProfile,
    Profile,
    build_profile,
    category_counts,
    infer_kinds,
    numeric_values,
    prediction_series,
)
from mloop.errors import MonitorError

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
            "thresholds": {
                "psi_threshold": self.thresholds.psi_threshold,
                "ks_pvalue": self.thresholds.ks_pvalue,
                "chi2_pvalue": self.thresholds.chi2_pvalue,
            },
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
        for column in ("psi", "test_statistic", "p_value", "js_distance", "wasserstein"):
            frame[column] = frame[column].astype("float64")
        return frame


def _nan_for_none(value: Any) -> Any:
    return np.nan if value is None else value


def thresholds_from_config(config: MonitorConfig) -> DriftThresholds:
    """The drift thresholds of a project's ``monitor`` settings."""
    return DriftThresholds(
        psi_threshold=config.psi_threshold, ks_pvalue=config.ks_pvalue, chi2_pvalue=config.chi2_pvalue
    )


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
            current=numeric_values(values),
            thresholds=thresholds,
        )
    counts, nulls = category_counts(values)
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
        current = bin_counts(numeric_values(values), edges) if edges else np.zeros(1)
        cells = [f"{edge:,.0f}" if abs(edge) >= 1000 else f"{edge:.4g}" for edge in edges[:-1]] or ["all"]
        return Distribution(name, cells, _shares(np.asarray(reference.counts, dtype=float)), _shares(current))
    kept = sorted(reference.frequencies, key=lambda c: -reference.frequencies[c])[:top]
    counts, _ = category_counts(values)
    ref = [reference.frequencies[c] for c in kept]
    cur = [float(counts.get(c, 0)) for c in kept]
    ref.append(max(0.0, 1.0 - sum(ref)))
    cur.append(float(sum(v for k, v in counts.items() if k not in kept)))
    return Distribution(name, [*kept, "other"], _shares(np.asarray(ref)), _shares(np.asarray(cur)))


def drift_report(
    profile: Profile,
    window: pd.DataFrame,
    thresholds: DriftThresholds,
    predictions: np.ndarray | pd.Series | None = None,
    min_drifted_features: int = 1,
) -> DriftReport:
    """Compare ``window`` (and the model's ``predictions`` on it) with the reference ``profile``.

    Window columns the profile does not know are ignored; profile columns missing from the window
    raise :class:`MonitorError`. Predictions are compared only when the profile has a prediction
    profile.
    """
    if min_drifted_features < 1:
        raise ValueError("min_drifted_features must be at least 1")
    if window.empty:
        raise MonitorError("The monitoring window has no rows; wait for predictions to be logged.")
    missing = [name for name in profile.columns if name not in window.columns]
    if missing:
        raise MonitorError(
            f"The monitoring window lacks {len(missing)} column(s) of the reference profile: "
            f"{', '.join(missing)}. Log every feature the model was trained on, or compare against "
            "the profile of a model trained without them."
        )
    features = [column_drift(name, ref, window[name], thresholds) for name, ref in profile.columns.items()]
    return DriftReport(
        features=features,
        prediction=_prediction_drift(profile, predictions, len(window), thresholds),
        n_rows=len(window),
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
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: list[str] | None = None,
    psi_threshold: float = 0.2,
    ks_pvalue: float = 0.01,
    chi2_pvalue: float = 0.01,
) -> pd.DataFrame:
    """Per-feature drift of ``current`` against ``reference``, one row per column.

    Numeric dtypes are compared as numbers (PSI + KS); bool, string, object and category dtypes as
    categories (chi² + PSI). With ``columns=None`` every reference column of a supported dtype is
    compared. The frame has the columns of :data:`FRAME_COLUMNS`; ``drifted`` holds the decision.

    >>> compute_drift(train_df, live_df)[["feature", "drifted", "psi", "p_value"]]  # doctest: +SKIP
    """
    if reference.empty:
        raise MonitorError("The reference frame has no rows; nothing to compare against.")
    if columns is not None:
        absent = [c for c in columns if c not in reference.columns]
        if absent:
            raise MonitorError(f"The reference frame has no column(s) {', '.join(absent)}.")
    numeric, categorical = infer_kinds(reference, columns)
    if columns is not None:
        unsupported = [c for c in columns if c not in numeric and c not in categorical]
        if unsupported:
            raise MonitorError(
                f"Cannot compute drift of column(s) {', '.join(unsupported)}: only numeric, bool, "
                "string and categorical dtypes are supported."
            )
    if not numeric and not categorical:
        raise MonitorError("No column of a supported dtype (numeric, bool, string, category) to compare.")
    thresholds = DriftThresholds(psi_threshold=psi_threshold, ks_pvalue=ks_pvalue, chi2_pvalue=chi2_pvalue)
    profile = build_profile(reference, numeric, categorical)
    return drift_report(profile, current, thresholds).to_frame()


__all__ = [
    "FRAME_COLUMNS",
    "Distribution",
    "DriftReport",
    "column_drift",
    "compute_drift",
    "distribution",
    "drift_report",
    "thresholds_from_config",
]

"""Multivariate drift: what per-feature statistics cannot see, a change in how the features go together.

Two statistics compare a window of production rows with a :class:`MultivariateReference` fitted on the
training frame. Pure computation (NumPy and scikit-learn); the only I/O is explicit serialisation
(:meth:`MultivariateReference.to_dict` / ``to_bytes`` and their inverses), so the reference can be stored
as an artifact next to the profile.

**Encoding** (fitted on the reference, applied unchanged to every window). Numeric values are read as
:func:`mloop.data.profile.numeric_values` reads them (unparseable and ±inf count as missing); missing values
are replaced by the reference median, and a 0/1 missing indicator is added for every column the reference
has missing values in (a column that starts arriving empty without ever being empty in the reference is
per-feature drift's to catch). Categorical values are compared as strings, as the profile does; each
column keeps at most ``max_categories`` categories holding at least ``min_category_share`` of the reference
rows, and is one-hot encoded over those, "other" (rarer and unseen categories) and "missing", each only
where the reference has it. Every encoded column is standardised on the reference, and the columns of one
categorical feature are weighted by ``1/sqrt(columns)`` so that each feature carries about the same
variance: without that the ~180 one-hot columns of Ames' 40 categorical features drown its 31 numeric ones.

**PCA reconstruction error.** A PCA keeps the fewest components that explain ``variance_share`` (65%, as
NannyML's data reconstruction drift) of the encoded reference's variance. A row's error is its residual
(the row minus its reconstruction) divided, column by column, by the residual's standard deviation on the
reference, squared, averaged within each feature and then over the features. Scaling the residual is
what lets a broken relation show: Gr_Liv_Area is First_Flr_SF + Second_Flr_SF (correlation 0.997), so its
residual is normally small, and a window where the two no longer agree has residuals many times that
size. The window's statistic is the **median** row error: the mean, dominated by the few houses that are
odd in any window, caught the correlation break in 38% of held-out Ames windows of 200 where the median
caught it in all.

The alarm threshold comes from the reference itself: every reference row gets an *out-of-fold* error
(``folds``-fold: the PCA that scores a row was fitted without it, so a reference row scores as an unseen
production row would), a sample of at most ``sample_size`` of them is kept, and the threshold for a window
of ``n`` rows is the ``1 - false_alarm_rate`` quantile of the medians of 1,000 bootstrap windows of ``n`` of
those errors. That is cheap for any ``n``, so it is computed on first use for each size and cached.

**Domain classifier.** A small histogram gradient boosting classifier (50 trees of 8 leaves, categorical
features as categories, one thread) learns to tell the window from as many rows of the reference's stored
sample (at most ``sample_size`` rows kept; at most :data:`MAX_CLASSIFIER_ROWS` a side, a larger window is
subsampled); its 3-fold cross-validated AUROC is 0.5 when it cannot. Exact duplicate rows within a side
are dropped first: a row on both sides of a fold split is recognised, not generalised from, and made
bootstrap windows of unseen rows alarm in three windows of four before this was done. The threshold for
``m`` rows a side is ``mean + z * sd`` of the AUROCs of ``classifier_resamples`` pairs of disjoint sets of
``m`` sample rows (``z`` the standard normal quantile at ``1 - false_alarm_rate``): a normal fit rather
than a quantile, since a few dozen resamples cannot place a 99th percentile. A window costs one
cross-validated fit (0.3-0.5 s for 200 rows a side on the 2-core development machine) and each window size
``classifier_resamples`` of them, so the sizes known at training time belong in
:func:`fit_multivariate_reference`'s ``window_sizes``; any other size is calibrated on first use, cached,
and stored by ``to_dict`` from then on.

The two see different things. The reconstruction error sees rows that break the reference's relations
between features, but not a shift along them (every living area half a standard deviation larger is
still a well reconstructed house); the classifier sees both, with less power on small windows.

Each statistic alarms at ``false_alarm_rate`` (default 0.01) on unchanged windows, so the two together
stay within 2%; the per-feature calibrated decision has its own budget (``monitor.false_alarm_rate``).
Every random choice is seeded by ``seed``, the window size and the resample, so the same reference and
window give the same result, also after a round trip through ``to_dict``/``from_dict``. The measured
rates are in docs/monitoring.md ("Multivariate drift"; ``python bench/multivariate_drift.py``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from mloop.data.profile import category_counts, numeric_values
from mloop.errors import MonitorError, ProfileError

FORMAT_VERSION = 1
#: The artifact a training run stores its reference under (JSON, ``to_bytes``).
ARTIFACT = "multivariate_reference.json"
#: The share of the encoded reference's variance the PCA keeps.
VARIANCE_SHARE = 0.65
#: The rate at which each statistic alarms on unchanged windows.
FALSE_ALARM_RATE = 0.01
#: Reference rows kept for the domain classifier (and out-of-fold errors kept for the PCA threshold).
SAMPLE_SIZE = 5000
#: At most this many rows a side go into the domain classifier; a larger window is subsampled.
MAX_CLASSIFIER_ROWS = 500
#: Below this many rows a side the domain classifier is not run (its AUROC would be noise).
MIN_CLASSIFIER_ROWS = 20
#: The PCA is fitted on at most this many reference rows (a seeded sample of a larger frame).
MAX_FIT_ROWS = 20_000
BOOTSTRAP_WINDOWS = 1000
CLASSIFIER_RESAMPLES = 40
CLASSIFIER_FOLDS = 3
SEED = 0

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class MultivariateDrift:
    """The multivariate drift of one window; ``drifted`` when either statistic passes its threshold."""

    n_rows: int
    threshold_size: int  # the window size the thresholds are for (the window's own unless asked otherwise)
    false_alarm_rate: float
    n_components: int
    explained_variance: float
    reconstruction_error: float  # median row error of the window
    reconstruction_reference: float  # median out-of-fold row error of the reference
    reconstruction_threshold: float
    reconstruction_drifted: bool
    auroc: float | None  # None when the classifier was not run (too few rows, or not asked for)
    auroc_threshold: float | None
    auroc_drifted: bool
    classifier_rows: int  # rows a side the classifier compared (0 when it was not run)

    @property
    def drifted(self) -> bool:
        return self.reconstruction_drifted or self.auroc_drifted

    def reason(self) -> str | None:
        """What passed its threshold, in words (``None`` when nothing did)."""
        parts = []
        if self.reconstruction_drifted:
            parts.append(
                f"PCA reconstruction error {self.reconstruction_error:.3g} > {self.reconstruction_threshold:.3g}"
            )
        if self.auroc_drifted and self.auroc is not None and self.auroc_threshold is not None:
            parts.append(f"domain classifier AUROC {self.auroc:.3f} > {self.auroc_threshold:.3f}")
        return "; ".join(parts) or None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: plain floats, ints, bools and ``None`` (for a non-finite number too)."""
        return {
            "n_rows": self.n_rows,
            "threshold_size": self.threshold_size,
            "false_alarm_rate": self.false_alarm_rate,
            "drifted": self.drifted,
            "reconstruction": {
                "error": _finite_or_none(self.reconstruction_error),
                "reference": _finite_or_none(self.reconstruction_reference),
                "threshold": _finite_or_none(self.reconstruction_threshold),
                "drifted": self.reconstruction_drifted,
                "n_components": self.n_components,
                "explained_variance": _finite_or_none(self.explained_variance),
            },
            "domain_classifier": {
                "auroc": _finite_or_none(self.auroc),
                "threshold": _finite_or_none(self.auroc_threshold),
                "drifted": self.auroc_drifted,
                "rows_per_side": self.classifier_rows,
            },
        }


def _finite_or_none(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class MultivariateReference:
    """What :func:`multivariate_drift` needs of the training frame; build it with :func:`fit_multivariate_reference`.

    The threshold caches (``reconstruction_thresholds``, ``classifier_null``) fill as sizes are used and
    are part of ``to_dict``; their values depend only on the rest of the reference, the size and ``seed``.
    """

    numeric: list[str]
    categorical: list[str]
    medians: list[float]
    numeric_has_missing: list[bool]
    categories: list[list[str]]
    category_has_other: list[bool]
    category_has_missing: list[bool]
    column_mean: list[float]
    column_scale: list[float]
    pca_mean: list[float]
    components: list[list[float]]
    explained_variance: float
    residual_scale: list[float]
    oof_errors: list[float]
    sample: list[list[float]]  # compact encoding of the kept reference rows, row-major; NaN for a missing number
    n_rows: int
    seed: int = SEED
    variance_share: float = VARIANCE_SHARE
    false_alarm_rate: float = FALSE_ALARM_RATE
    classifier_resamples: int = CLASSIFIER_RESAMPLES
    reconstruction_thresholds: dict[int, float] = field(default_factory=dict)
    classifier_null: dict[int, tuple[float, float]] = field(default_factory=dict)  # rows a side → (mean, sd)

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def n_components(self) -> int:
        return len(self.components)

    # --- thresholds -------------------------------------------------------------------------------------

    def reconstruction_threshold(self, n_rows: int) -> float:
        """The ``1 - false_alarm_rate`` quantile of the median error of bootstrap windows of ``n_rows``."""
        if n_rows < 1:
            raise ValueError("n_rows must be at least 1")
        cached = self.reconstruction_thresholds.get(n_rows)
        if cached is None:
            errors = np.asarray(self.oof_errors, dtype=np.float64)
            rng = np.random.default_rng([self.seed, 1, n_rows])
            chunk = max(1, 2_000_000 // n_rows)  # bounded memory for large windows
            medians: list[FloatArray] = []
            for start in range(0, BOOTSTRAP_WINDOWS, chunk):
                count = min(chunk, BOOTSTRAP_WINDOWS - start)
                medians.append(np.median(errors[rng.integers(0, errors.size, (count, n_rows))], axis=1))
            cached = float(np.quantile(np.concatenate(medians), 1 - self.false_alarm_rate))
            self.reconstruction_thresholds[n_rows] = cached
        return cached

    def classifier_rows(self, n_rows: int) -> int:
        """Rows a side the domain classifier compares for a window of ``n_rows`` (0: not run)."""
        rows = min(n_rows, MAX_CLASSIFIER_ROWS, len(self.sample) // 2)
        return rows if rows >= MIN_CLASSIFIER_ROWS else 0

    def auroc_threshold(self, n_rows: int) -> float | None:
        """``mean + z * sd`` of the AUROCs of resampled reference pairs, for a window of ``n_rows``."""
        rows = self.classifier_rows(n_rows)
        if rows == 0:
            return None
        null = self.classifier_null.get(rows)
        if null is None:
            sample = np.asarray(self.sample, dtype=np.float64)
            aurocs = []
            for resample in range(self.classifier_resamples):
                order = np.random.default_rng([self.seed, 2, rows, resample]).permutation(len(sample))
                auroc = _domain_auroc(sample[order[:rows]], sample[order[rows : 2 * rows]], self)
                if auroc is not None:
                    aurocs.append(auroc)
            if len(aurocs) < 2:
                return None  # a reference of a handful of distinct rows: nothing to calibrate on
            null = (float(np.mean(aurocs)), float(np.std(aurocs, ddof=1)))
            self.classifier_null[rows] = null
        z = NormalDist().inv_cdf(1 - self.false_alarm_rate)
        return null[0] + z * null[1]

    # --- encoding ---------------------------------------------------------------------------------------

    def encode(self, frame: pd.DataFrame) -> FloatArray:
        """The compact encoding: numbers as floats (NaN for missing), categories as codes (see :func:`_codes`)."""
        columns = [numeric_values(frame[name]) for name in self.numeric]
        columns += [
            _codes(frame[name], labels).astype(np.float64)
            for name, labels in zip(self.categorical, self.categories, strict=True)
        ]
        if not columns:
            return np.empty((len(frame), 0))
        return np.column_stack(columns)

    def _design(self, compact: FloatArray) -> FloatArray:
        """The standardised, weighted one-hot design matrix the PCA works in."""
        raw = _design_columns(self, compact)
        weights = _column_weights(self)
        design: FloatArray = (raw - np.asarray(self.column_mean)) / np.asarray(self.column_scale) * weights
        return design

    def row_errors(self, compact: FloatArray) -> FloatArray:
        """Each row's reconstruction error (scaled residuals, squared, averaged per feature then overall)."""
        design = self._design(compact)
        residual = _residual(design, np.asarray(self.pca_mean), np.asarray(self.components, dtype=np.float64))
        return _row_errors(residual, np.asarray(self.residual_scale), self)

    # --- serialisation ----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (lists of floats; a missing number in the sample is ``None``); ``from_dict`` inverts it exactly."""
        return {
            "format_version": FORMAT_VERSION,
            "numeric": self.numeric,
            "categorical": self.categorical,
            "medians": self.medians,
            "numeric_has_missing": self.numeric_has_missing,
            "categories": self.categories,
            "category_has_other": self.category_has_other,
            "category_has_missing": self.category_has_missing,
            "column_mean": self.column_mean,
            "column_scale": self.column_scale,
            "pca_mean": self.pca_mean,
            "components": self.components,
            "explained_variance": self.explained_variance,
            "residual_scale": self.residual_scale,
            "oof_errors": self.oof_errors,
            "sample": [[None if math.isnan(v) else v for v in row] for row in self.sample],
            "n_rows": self.n_rows,
            "seed": self.seed,
            "variance_share": self.variance_share,
            "false_alarm_rate": self.false_alarm_rate,
            "classifier_resamples": self.classifier_resamples,
            "reconstruction_thresholds": {str(k): v for k, v in sorted(self.reconstruction_thresholds.items())},
            "classifier_null": {str(k): list(v) for k, v in sorted(self.classifier_null.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MultivariateReference:
        try:
            if data.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format_version {data.get('format_version')!r}, expected {FORMAT_VERSION}")
            reference = cls(
                numeric=[str(v) for v in data["numeric"]],
                categorical=[str(v) for v in data["categorical"]],
                medians=_floats(data["medians"]),
                numeric_has_missing=[bool(v) for v in data["numeric_has_missing"]],
                categories=[[str(v) for v in labels] for labels in data["categories"]],
                category_has_other=[bool(v) for v in data["category_has_other"]],
                category_has_missing=[bool(v) for v in data["category_has_missing"]],
                column_mean=_floats(data["column_mean"]),
                column_scale=_floats(data["column_scale"]),
                pca_mean=_floats(data["pca_mean"]),
                components=[_floats(row) for row in data["components"]],
                explained_variance=float(data["explained_variance"]),
                residual_scale=_floats(data["residual_scale"]),
                oof_errors=_floats(data["oof_errors"]),
                sample=[[math.nan if v is None else float(v) for v in row] for row in data["sample"]],
                n_rows=int(data["n_rows"]),
                seed=int(data["seed"]),
                variance_share=float(data["variance_share"]),
                false_alarm_rate=float(data["false_alarm_rate"]),
                classifier_resamples=int(data["classifier_resamples"]),
                reconstruction_thresholds={int(k): float(v) for k, v in data["reconstruction_thresholds"].items()},
                classifier_null={int(k): (float(v[0]), float(v[1])) for k, v in data["classifier_null"].items()},
            )
            _check_shapes(reference)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise MonitorError(
                f"Not a valid multivariate drift reference ({type(exc).__name__}: {exc}). "
                "Register the model again to store a fresh one."
            ) from None
        return reference

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes | str) -> MultivariateReference:
        try:
            parsed = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MonitorError(f"Not a valid multivariate drift reference: not JSON ({exc}).") from None
        if not isinstance(parsed, dict):
            raise MonitorError("Not a valid multivariate drift reference: the JSON is not an object.")
        return cls.from_dict(parsed)


def _floats(values: Iterable[Any]) -> list[float]:
    return [float(v) for v in values]


def _check_shapes(reference: MultivariateReference) -> None:
    n_num, n_cat = len(reference.numeric), len(reference.categorical)
    if len(reference.medians) != n_num or len(reference.numeric_has_missing) != n_num:
        raise ValueError("one median and one missing flag per numeric column are needed")
    if (
        not len(reference.categories)
        == len(reference.category_has_other)
        == len(reference.category_has_missing)
        == n_cat
    ):
        raise ValueError("categories and flags are needed for every categorical column")
    width = len(_column_features(reference))
    for name in ("column_mean", "column_scale", "pca_mean", "residual_scale"):
        if len(getattr(reference, name)) != width:
            raise ValueError(f"{name} has {len(getattr(reference, name))} values for {width} encoded columns")
    if any(len(row) != width for row in reference.components):
        raise ValueError(f"every component needs {width} loadings")
    if any(len(row) != n_num + n_cat for row in reference.sample):
        raise ValueError(f"every sample row needs {n_num + n_cat} values")
    if not reference.oof_errors:
        raise ValueError("no reference errors")


# --- encoding helpers -------------------------------------------------------------------------------------


def _labels(values: pd.Series) -> tuple[NDArray[np.object_], NDArray[np.bool_]]:
    """Category labels as :func:`mloop.data.profile.category_counts` writes them, and the missing mask.

    ±inf in a float column counts as missing; integral floats are written as integers (``20.0`` → ``"20"``).
    """
    if pd.api.types.is_float_dtype(values.dtype):
        array = values.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = ~np.isfinite(array)
        present = array[~missing]
        if bool(np.all(np.mod(present, 1) == 0)):
            labels = np.array([str(int(v)) for v in present], dtype=object) if present.size else present.astype(object)
        else:
            labels = present.astype(str).astype(object)
        out = np.empty(array.size, dtype=object)
        out[~missing] = labels
        return out, missing
    missing = values.isna().to_numpy()
    out = values.astype(str).to_numpy(dtype=object)
    return out, missing


def _codes(values: pd.Series, categories: list[str]) -> NDArray[np.int64]:
    """Code per row: the index of its category, ``len(categories)`` for any other, ``+1`` for missing."""
    labels, missing = _labels(values)
    codes = pd.Index(categories, dtype=object).get_indexer(pd.Index(labels, dtype=object)).astype(np.int64)
    codes[codes < 0] = len(categories)
    codes[missing] = len(categories) + 1
    return codes


def _levels(reference: MultivariateReference, index: int) -> list[int]:
    """The codes of one categorical column that get a one-hot column: those the reference has."""
    size = len(reference.categories[index])
    levels = list(range(size))
    if reference.category_has_other[index]:
        levels.append(size)
    if reference.category_has_missing[index]:
        levels.append(size + 1)
    return levels


def _column_features(reference: MultivariateReference) -> list[int]:
    """The feature (index into ``columns``) of each encoded column."""
    features: list[int] = []
    for j, has_missing in enumerate(reference.numeric_has_missing):
        features += [j, j] if has_missing else [j]
    for j in range(len(reference.categorical)):
        features += [len(reference.numeric) + j] * len(_levels(reference, j))
    return features


def _feature_widths(reference: MultivariateReference) -> FloatArray:
    features = np.asarray(_column_features(reference), dtype=np.int64)
    return np.bincount(features, minlength=len(reference.columns))[features].astype(np.float64)


def _column_weights(reference: MultivariateReference) -> FloatArray:
    """``1/sqrt(columns)`` for the one-hot columns of a categorical feature, 1 for numeric ones."""
    widths = _feature_widths(reference)
    numeric = np.asarray(_column_features(reference)) < len(reference.numeric)
    return np.where(numeric, 1.0, 1.0 / np.sqrt(widths))


def _design_columns(reference: MultivariateReference, compact: FloatArray) -> FloatArray:
    blocks: list[FloatArray] = []
    for j, (median, has_missing) in enumerate(zip(reference.medians, reference.numeric_has_missing, strict=True)):
        values = compact[:, j]
        missing = np.isnan(values)
        blocks.append(np.where(missing, median, values))
        if has_missing:
            blocks.append(missing.astype(np.float64))
    offset = len(reference.numeric)
    for j in range(len(reference.categorical)):
        codes = compact[:, offset + j]
        blocks += [(codes == level).astype(np.float64) for level in _levels(reference, j)]
    if not blocks:
        return np.empty((compact.shape[0], 0))
    return np.column_stack(blocks)


def _residual(design: FloatArray, mean: FloatArray, components: FloatArray) -> FloatArray:
    centred = design - mean
    residual: FloatArray = centred - (centred @ components.T) @ components
    return residual


def _row_errors(residual: FloatArray, scale: FloatArray, reference: MultivariateReference) -> FloatArray:
    per_column = (residual / scale) ** 2 / _feature_widths(reference)
    errors: FloatArray = per_column.sum(axis=1) / len(reference.columns)
    return errors


# --- fitting ----------------------------------------------------------------------------------------------


def fit_multivariate_reference(
    frame: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    *,
    seed: int = SEED,
    variance_share: float = VARIANCE_SHARE,
    false_alarm_rate: float = FALSE_ALARM_RATE,
    sample_size: int = SAMPLE_SIZE,
    max_categories: int = 20,
    min_category_share: float = 0.01,
    folds: int = 5,
    classifier_resamples: int = CLASSIFIER_RESAMPLES,
    window_sizes: Iterable[int] = (),
) -> MultivariateReference:
    """Fit the encoding, the PCA and the reconstruction-error threshold on the training ``frame``.

    ``window_sizes`` are the monitoring window sizes to calibrate now (the domain classifier's threshold
    costs ``classifier_resamples`` fits per size; other sizes are calibrated on first use).
    """
    from sklearn.decomposition import PCA
    from sklearn.model_selection import KFold

    _check_fit_input(frame, numeric, categorical)
    if not 0 < variance_share < 1:
        raise ValueError(f"variance_share must be between 0 and 1, got {variance_share}")
    if not 0 < false_alarm_rate < 1:
        raise ValueError(f"false_alarm_rate must be between 0 and 1, got {false_alarm_rate}")
    if sample_size < 2 * MIN_CLASSIFIER_ROWS or folds < 2 or classifier_resamples < 2 or max_categories < 1:
        raise ValueError(
            f"sample_size must be at least {2 * MIN_CLASSIFIER_ROWS}, folds and classifier_resamples at least 2, "
            "max_categories at least 1"
        )
    rng = np.random.default_rng([seed, 0])
    if len(frame) > MAX_FIT_ROWS:
        frame = frame.iloc[np.sort(rng.choice(len(frame), MAX_FIT_ROWS, replace=False))]
    if len(frame) < 2 * folds:
        raise ProfileError(f"Multivariate drift needs at least {2 * folds} reference rows, got {len(frame)}.")

    medians: list[float] = []
    numeric_has_missing: list[bool] = []
    for name in numeric:
        values = numeric_values(frame[name])
        finite = values[~np.isnan(values)]
        medians.append(float(np.median(finite)) if finite.size else 0.0)
        numeric_has_missing.append(bool(finite.size < values.size))
    categories: list[list[str]] = []
    has_other: list[bool] = []
    has_missing: list[bool] = []
    for name in categorical:
        labels, missing = _labels(frame[name])
        counts, _ = category_counts(pd.Series(labels[~missing], dtype=object))
        kept = [label for label, count in counts.items() if count >= min_category_share * len(frame)][:max_categories]
        categories.append(kept)
        has_other.append(sum(counts.values()) > sum(counts[label] for label in kept))
        has_missing.append(bool(missing.any()))

    skeleton = MultivariateReference(
        numeric=list(numeric),
        categorical=list(categorical),
        medians=medians,
        numeric_has_missing=numeric_has_missing,
        categories=categories,
        category_has_other=has_other,
        category_has_missing=has_missing,
        column_mean=[],
        column_scale=[],
        pca_mean=[],
        components=[],
        explained_variance=0.0,
        residual_scale=[],
        oof_errors=[],
        sample=[],
        n_rows=len(frame),
        seed=seed,
        variance_share=variance_share,
        false_alarm_rate=false_alarm_rate,
        classifier_resamples=classifier_resamples,
    )
    compact = skeleton.encode(frame)
    raw = _design_columns(skeleton, compact)
    column_mean = raw.mean(axis=0)
    column_scale = raw.std(axis=0)
    column_scale[~(column_scale > 1e-12)] = 1.0
    design = (raw - column_mean) / column_scale * _column_weights(skeleton)

    width = design.shape[1]
    pca = PCA(n_components=variance_share, svd_solver="full").fit(design)
    n_components = min(int(pca.n_components_), max(width - 1, 1))  # keep a residual to measure
    components = pca.components_[:n_components]
    explained = float(np.sum(pca.explained_variance_ratio_[:n_components]))

    residual = np.empty_like(design)
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(design):
        fold = PCA(n_components=n_components, svd_solver="full").fit(design[train])
        residual[test] = _residual(design[test], fold.mean_, fold.components_)
    residual_scale = residual.std(axis=0)
    residual_scale[~(residual_scale > 1e-9)] = 1.0
    errors = _row_errors(residual, residual_scale, skeleton)

    kept_errors = errors if errors.size <= sample_size else errors[rng.choice(errors.size, sample_size, replace=False)]
    rows = (
        compact
        if len(compact) <= sample_size
        else compact[np.sort(rng.choice(len(compact), sample_size, replace=False))]
    )
    reference = replace(
        skeleton,
        column_mean=column_mean.tolist(),
        column_scale=column_scale.tolist(),
        pca_mean=pca.mean_.tolist(),
        components=components.tolist(),
        explained_variance=explained,
        residual_scale=residual_scale.tolist(),
        oof_errors=kept_errors.tolist(),
        sample=rows.tolist(),
    )
    for size in window_sizes:
        reference.reconstruction_threshold(size)
        reference.auroc_threshold(size)
    return reference


def _check_fit_input(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> None:
    if frame.empty:
        raise ProfileError("Cannot fit a multivariate drift reference on an empty frame: it has no rows.")
    both = sorted(set(numeric) & set(categorical))
    if both:
        raise ValueError(f"columns listed as both numeric and categorical: {', '.join(both)}")
    if not numeric and not categorical:
        raise ValueError("no columns: pass at least one numeric or categorical column")
    missing = [c for c in [*numeric, *categorical] if c not in frame.columns]
    if missing:
        raise ProfileError(
            f"Cannot fit a multivariate drift reference on columns {', '.join(missing)}: the frame has no such columns."
        )


# --- the domain classifier --------------------------------------------------------------------------------


def _distinct(rows: FloatArray) -> FloatArray:
    """The rows with exact duplicates left out (first occurrences, in order; missing values compare equal)."""
    if len(rows) == 0:
        return rows
    _, first = np.unique(np.where(np.isnan(rows), np.inf, rows), axis=0, return_index=True)
    kept: FloatArray = rows[np.sort(first)]
    return kept


def _domain_auroc(
    reference_rows: FloatArray, window_rows: FloatArray, reference: MultivariateReference
) -> float | None:
    """Cross-validated AUROC of a small gradient boosting classifier telling the two sets of rows apart.

    Exact duplicates within a side are dropped first: a row both in a training fold and in the held-out
    fold is recognised rather than generalised from, so a window with repeated rows (a bootstrap
    resample, retried requests) would score above 0.5 without any change in distribution. ``None`` when
    fewer than :data:`MIN_CLASSIFIER_ROWS` distinct rows are left on a side.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    reference_rows, window_rows = _distinct(reference_rows), _distinct(window_rows)
    if min(len(reference_rows), len(window_rows)) < MIN_CLASSIFIER_ROWS:
        return None
    rows = np.vstack([reference_rows, window_rows])
    labels = np.concatenate([np.zeros(len(reference_rows)), np.ones(len(window_rows))])
    categorical = np.arange(rows.shape[1]) >= len(reference.numeric)
    model = HistGradientBoostingClassifier(
        max_iter=50,
        max_leaf_nodes=8,
        learning_rate=0.1,
        max_bins=64,
        categorical_features=categorical if categorical.any() else None,
        early_stopping=False,
        random_state=reference.seed,
    )
    folds = StratifiedKFold(CLASSIFIER_FOLDS, shuffle=True, random_state=reference.seed)
    # One thread: a few hundred rows, where OpenMP's start-up costs more than it saves (10x on 2 cores).
    with threadpool_limits(limits=1, user_api="openmp"):
        scores = cross_val_predict(model, rows, labels, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(labels, scores))


# --- the window -------------------------------------------------------------------------------------------


def multivariate_drift(
    reference: MultivariateReference,
    window: pd.DataFrame,
    *,
    threshold_size: int | None = None,
    domain_classifier: bool = True,
) -> MultivariateDrift:
    """PCA reconstruction error and domain-classifier AUROC of ``window`` against ``reference``.

    The thresholds are those for windows of ``threshold_size`` rows (default: the window's own size).
    Window columns the reference does not know are ignored; unseen categories count as "other", missing,
    unparseable and infinite numbers as missing. ``domain_classifier=False`` skips the classifier (its
    fields are then ``None``/``False``).
    """
    if len(window) == 0:
        raise MonitorError("The monitoring window has no rows; wait for predictions to be logged.")
    absent = [name for name in reference.columns if name not in window.columns]
    if absent:
        raise MonitorError(
            f"The monitoring window lacks {len(absent)} column(s) of the multivariate drift reference: "
            f"{', '.join(absent)}. Log every feature the model was trained on."
        )
    size = len(window) if threshold_size is None else threshold_size
    if size < 1:
        raise ValueError(f"threshold_size must be at least 1, got {size}")
    compact = reference.encode(window)
    error = float(np.median(reference.row_errors(compact)))
    threshold = reference.reconstruction_threshold(size)

    auroc: float | None = None
    auroc_threshold: float | None = None
    rows = reference.classifier_rows(min(len(window), size)) if domain_classifier else 0
    if rows:
        auroc_threshold = reference.auroc_threshold(rows)
        if auroc_threshold is not None:
            sample = np.asarray(reference.sample, dtype=np.float64)
            side = sample[np.random.default_rng([reference.seed, 3, rows]).permutation(len(sample))[:rows]]
            current = _distinct(compact)
            if len(current) > rows:
                chosen = np.random.default_rng([reference.seed, 4, rows]).choice(len(current), rows, replace=False)
                current = current[np.sort(chosen)]
            auroc = _domain_auroc(side, current, reference)
        if auroc is None:
            auroc_threshold, rows = None, 0
    return MultivariateDrift(
        n_rows=len(window),
        threshold_size=size,
        false_alarm_rate=reference.false_alarm_rate,
        n_components=reference.n_components,
        explained_variance=reference.explained_variance,
        reconstruction_error=error,
        reconstruction_reference=float(np.median(reference.oof_errors)),
        reconstruction_threshold=threshold,
        reconstruction_drifted=bool(error > threshold),
        auroc=auroc,
        auroc_threshold=auroc_threshold,
        auroc_drifted=bool(auroc is not None and auroc_threshold is not None and auroc > auroc_threshold),
        classifier_rows=rows,
    )


__all__ = [
    "ARTIFACT",
    "FALSE_ALARM_RATE",
    "MAX_CLASSIFIER_ROWS",
    "SAMPLE_SIZE",
    "VARIANCE_SHARE",
    "MultivariateDrift",
    "MultivariateReference",
    "fit_multivariate_reference",
    "multivariate_drift",
]

"""The quality estimator of a model version: fitted at training time on the holdout, applied to live windows.

Regression: two gradient-boosted trees predict each row's absolute and squared error from the row's
features and the model's prediction (NannyML's direct loss estimation). Classification: an isotonic
calibrator per class maps the model's probabilities to calibrated ones (the input of NannyML's
confidence-based estimation). Both learn from the holdout's errors and, where the caller gives them,
from out-of-fold errors on the training rows too (:func:`out_of_fold_predictions`): a holdout of a few
hundred rows is a small sample of errors, and its few largest ones decide a root mean squared error.
:mod:`mloop.core.estimated` turns their outputs into a window's estimated metrics. Training stores the
estimator as the run artifact :data:`ESTIMATOR_ARTIFACT`; ``mloop monitor`` reads it, so a window has an
estimated quality as soon as it has rows, long before its labels arrive.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from mloop.core.estimated import classification_estimate, regression_estimate
from mloop.core.metrics import Predictions
from mloop.registry.scoring import predict

ESTIMATOR_ARTIFACT = "quality_estimator.joblib"
#: Fewer labelled holdout rows than this and no estimator is fitted: the errors would be noise.
MIN_ROWS = 30
PREDICTION = "__prediction__"
MISSING = "__missing__"


@dataclass
class QualityEstimator:
    """What training fitted; :meth:`estimate` gives a window's estimated metrics."""

    task: str
    numeric: list[str]
    categorical: list[str]
    absolute: Pipeline | None = None
    squared: Pipeline | None = None
    classes: list[str] | None = None
    calibrators: list[IsotonicRegression] | None = None

    def estimate(self, X: pd.DataFrame, predictions: Any, probabilities: Any = None) -> dict[str, float]:
        """Estimated metrics of a window: ``X`` its features, ``predictions`` the model's answers, and for a
        classifier ``probabilities`` (a column per class in :attr:`classes` order)."""
        if len(X) == 0:
            return {}
        if self.task == "regression":
            if self.absolute is None or self.squared is None:
                return {}
            design = _design(X, np.asarray(predictions, dtype=float), self.numeric, self.categorical)
            return regression_estimate(self.absolute.predict(design), self.squared.predict(design))
        if self.calibrators is None or self.classes is None or probabilities is None:
            return {}
        raw = np.asarray(probabilities, dtype=float)
        calibrated = np.column_stack([c.predict(raw[:, k]) for k, c in enumerate(self.calibrators)])
        index = {label: k for k, label in enumerate(self.classes)}
        labels = [str(p) for p in np.asarray(predictions).ravel()]
        unknown = sorted({label for label in labels if label not in index})
        if unknown:
            raise ValueError(f"predicted class(es) {', '.join(unknown)} are not among the model's {self.classes}")
        return classification_estimate(calibrated, [index[label] for label in labels])

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        joblib.dump(self, buffer)
        return buffer.getvalue()

    @staticmethod
    def from_bytes(data: bytes) -> QualityEstimator:
        """An estimator :meth:`to_bytes` wrote (the version's own artifact: as trusted as its model)."""
        loaded = joblib.load(io.BytesIO(data))
        if not isinstance(loaded, QualityEstimator):
            raise TypeError(f"not a quality estimator but a {type(loaded).__name__}")
        return loaded


def _design(X: pd.DataFrame, predictions: np.ndarray, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """The estimator's input: the numeric features as floats, the categorical ones as text (missing as a
    category of its own) and the model's prediction."""
    columns: dict[str, Any] = {name: pd.to_numeric(X[name], errors="coerce").astype(float) for name in numeric}
    for name in categorical:
        values = X[name]
        columns[name] = values.astype(object).where(values.notna(), MISSING).astype(str)
    columns[PREDICTION] = predictions
    return pd.DataFrame(columns, index=X.index)


def _error_model(numeric: list[str], categorical: list[str], seed: int) -> Pipeline:
    encode = ColumnTransformer(
        [
            ("numeric", "passthrough", [*numeric, PREDICTION]),
            ("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), categorical),
        ]
    )
    # Shallow, slow and with large leaves: a holdout has a few hundred rows and its errors are noisy.
    trees = HistGradientBoostingRegressor(
        max_iter=100, learning_rate=0.05, max_depth=3, min_samples_leaf=20, random_state=seed
    )
    return Pipeline([("encode", encode), ("trees", trees)])


def out_of_fold_predictions(
    model: Any, X: pd.DataFrame, y: pd.Series, task: str, *, folds: int = 5, seed: int = 0
) -> Predictions:
    """Predictions on the training rows ``X`` from ``folds`` copies of ``model`` (unfitted clones with its
    parameters), each fitted on the other folds: errors like the holdout's, for :func:`fit_quality_estimator`'s
    ``out_of_fold``. Costs ``folds`` fits."""
    splitter: KFold | StratifiedKFold
    if task == "classification" and pd.Series(y).value_counts().min() >= folds:
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    else:
        splitter = KFold(folds, shuffle=True, random_state=seed)
    regression = task == "regression"
    values = np.empty(len(X), dtype=float if regression else object)
    classes = None if regression else sorted({str(v) for v in np.asarray(y)})
    proba = None if classes is None else np.zeros((len(X), len(classes)))
    for train, test in splitter.split(X, y):
        part = predict(clone(model).fit(X.iloc[train], y.iloc[train]), X.iloc[test], task)
        values[test] = part.values
        if proba is not None and classes is not None and part.proba is not None and part.classes is not None:
            for k, label in enumerate(part.classes):  # a fold without a rare class leaves its column at 0
                proba[test, classes.index(label)] = part.proba[:, k]
    return Predictions(values if regression else values.astype(str), proba, classes)


def fit_quality_estimator(
    model: Any,
    X: pd.DataFrame,
    y: pd.Series,
    *,
    task: str,
    numeric: list[str],
    categorical: list[str],
    seed: int = 0,
    predictions: Predictions | None = None,
    out_of_fold: tuple[pd.DataFrame, pd.Series, Predictions] | None = None,
) -> QualityEstimator | None:
    """Fit the estimator of ``model`` on its labelled holdout ``X``, ``y``; ``None`` under :data:`MIN_ROWS` rows.

    ``predictions``: the model's on ``X`` when the caller has them (training does), else they are made here.
    ``out_of_fold``: labelled training rows and predictions on them by models that did not see them
    (:func:`out_of_fold_predictions`); their errors join the holdout's.
    """
    if len(X) < MIN_ROWS:
        return None
    estimator = QualityEstimator(task=task, numeric=list(numeric), categorical=list(categorical))
    scored = predictions if predictions is not None else predict(model, X, task)
    if out_of_fold is not None:
        X, y, scored = _joined(X, y, scored, *out_of_fold)
    if task == "regression":
        predicted = np.asarray(scored.values, dtype=float)
        error = np.asarray(y, dtype=float) - predicted
        design = _design(X, predicted, estimator.numeric, estimator.categorical)
        estimator.absolute = _error_model(estimator.numeric, estimator.categorical, seed).fit(design, np.abs(error))
        estimator.squared = _error_model(estimator.numeric, estimator.categorical, seed).fit(design, error**2)
        return estimator
    if scored.proba is None or scored.classes is None:
        raise ValueError("a classifier's quality estimator needs its class probabilities on the holdout")
    classes = list(scored.classes)
    probabilities = np.asarray(scored.proba, dtype=float)
    truth = np.asarray(y).astype(str)
    estimator.classes = classes
    estimator.calibrators = [
        IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(probabilities[:, k], truth == label)
        for k, label in enumerate(classes)
    ]
    return estimator


def _joined(
    X: pd.DataFrame, y: pd.Series, scored: Predictions, X2: pd.DataFrame, y2: pd.Series, scored2: Predictions
) -> tuple[pd.DataFrame, pd.Series, Predictions]:
    """The holdout and the out-of-fold rows as one sample of errors (the holdout's class order kept)."""
    joined_X = pd.concat([X, X2[list(X.columns)]], ignore_index=True)
    joined_y = pd.concat([pd.Series(np.asarray(y)), pd.Series(np.asarray(y2))], ignore_index=True)
    values = np.concatenate([np.asarray(scored.values), np.asarray(scored2.values)])
    if scored.proba is None or scored.classes is None or scored2.proba is None or scored2.classes is None:
        return joined_X, joined_y, Predictions(values)
    order = [list(scored2.classes).index(c) for c in scored.classes]
    proba = np.vstack([np.asarray(scored.proba), np.asarray(scored2.proba)[:, order]])
    return joined_X, joined_y, Predictions(values, proba, list(scored.classes))


__all__ = ["ESTIMATOR_ARTIFACT", "MIN_ROWS", "QualityEstimator", "fit_quality_estimator", "out_of_fold_predictions"]

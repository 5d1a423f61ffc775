"""Estimators by name, with LightGBM and XGBoost as optional extras imported only when chosen."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import LabelEncoder

from mloop.errors import TrainError

# estimator: (module, how to install it); hints spelled out so a test can check each extra exists
EXTRAS = {
    "lightgbm": ("lightgbm", "pip install 'mloop[lightgbm]'"),
    "xgboost": ("xgboost", "pip install 'mloop[xgboost]'"),
}


def _extra(estimator: str) -> ModuleType:
    module, install = EXTRAS[estimator]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise TrainError(
            f"train.estimator {estimator!r} needs the optional {module} package; install it with "
            f"`{install}` or choose hist_gradient_boosting."
        ) from None


class LabelEncodedClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Fits ``estimator`` on integer codes of the labels and answers with the labels themselves.

    XGBoost only accepts classes 0..k-1; every other mloop classifier takes text labels.
    """

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def fit(self, X: Any, y: Any) -> LabelEncodedClassifier:
        self.encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.encoder_.classes_
        self.estimator_ = clone(self.estimator).fit(X, self.encoder_.transform(y))
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.encoder_.inverse_transform(np.asarray(self.estimator_.predict(X)).astype(int)))

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.asarray(self.estimator_.predict_proba(X))


def make_estimator(task: str, estimator: str, params: dict[str, Any], seed: int, categorical: list[int]) -> Any:
    regression = task == "regression"
    if estimator == "hist_gradient_boosting":
        cls = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
        return cls(categorical_features=categorical or None, random_state=seed, **params)
    if estimator == "random_forest":
        cls_rf = RandomForestRegressor if regression else RandomForestClassifier
        return cls_rf(random_state=seed, **{"n_estimators": 200, "n_jobs": 1, **params})
    if estimator == "linear":
        if regression:
            return Ridge(**params)
        return LogisticRegression(random_state=seed, **{"max_iter": 1000, **params})
    if estimator == "lightgbm":
        lgb = _extra(estimator)
        cls_lgb = lgb.LGBMRegressor if regression else lgb.LGBMClassifier
        # n_jobs=1 and deterministic: the same data, config and seed give the same model.
        return cls_lgb(random_state=seed, **{"n_jobs": 1, "verbosity": -1, "deterministic": True, **params})
    if estimator == "xgboost":
        xgb = _extra(estimator)
        if regression:
            return xgb.XGBRegressor(random_state=seed, **{"n_jobs": 1, **params})
        return LabelEncodedClassifier(xgb.XGBClassifier(random_state=seed, **{"n_jobs": 1, **params}))
    raise TrainError(
        f"unknown estimator {estimator!r} in train.estimator; choose hist_gradient_boosting, random_forest, "
        "linear, lightgbm or xgboost."
    )

"""The scikit-learn Pipeline a model is: preprocessing derived from the contract plus an estimator.

Everything lives in one Pipeline so serving applies exactly the steps training did.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from mloop.config import Task
from mloop.data.contract import Contract
from mloop.errors import TrainError

MAX_CATEGORIES = 200  # HistGradientBoosting bins categories; rarer ones are pooled as "infrequent"


def _ordinal() -> OrdinalEncoder:
    # Unknown and missing categories both become NaN, which the tree models treat as missing.
    return OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
        max_categories=MAX_CATEGORIES,
    )


MISSING = "__missing__"


def _text_imputer() -> Pipeline:
    # Missing text arrives as NaN from files and as None from JSON (MLflow's scoring server keeps
    # None): both become one explicit category so every server predicts the same for a null.
    return make_pipeline(
        SimpleImputer(missing_values=np.nan, strategy="constant", fill_value=MISSING),
        SimpleImputer(missing_values=None, strategy="constant", fill_value=MISSING),
    )


def _tree_preprocessor(numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    return ColumnTransformer(
        [("num", "passthrough", numeric), ("cat", make_pipeline(_text_imputer(), _ordinal()), categorical)],
        verbose_feature_names_out=False,
    )


def _estimator(task: Task, estimator: str, params: dict[str, Any], seed: int, categorical_mask: list[bool]) -> Any:
    if estimator == "hist_gradient_boosting":
        cls = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
        return cls(categorical_features=categorical_mask or None, random_state=seed, **params)
    if estimator == "random_forest":
        cls_rf = RandomForestRegressor if task == "regression" else RandomForestClassifier
        return cls_rf(random_state=seed, **{"n_estimators": 200, "n_jobs": 1, **params})
    if task == "regression":
        return Ridge(**params)
    return LogisticRegression(random_state=seed, **{"max_iter": 1000, **params})


def build_pipeline(
    contract: Contract,
    task: Task,
    estimator: str = "hist_gradient_boosting",
    params: dict[str, Any] | None = None,
    seed: int = 42,
) -> Pipeline:
    numeric, categorical = contract.numeric_features, contract.categorical_features
    params = dict(params or {})
    if estimator == "hist_gradient_boosting":
        pre = _tree_preprocessor(numeric, categorical)
        mask = [False] * len(numeric) + [True] * len(categorical)
        model = _estimator(task, estimator, params, seed, mask)
    elif estimator == "random_forest":
        pre = ColumnTransformer(
            [
                ("num", SimpleImputer(strategy="median"), numeric),
                (
                    "cat",
                    make_pipeline(_text_imputer(), _ordinal(), SimpleImputer(strategy="constant", fill_value=-1)),
                    categorical,
                ),
            ],
            verbose_feature_names_out=False,
        )
        model = _estimator(task, estimator, params, seed, [])
    elif estimator == "linear":
        pre = ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
                (
                    "cat",
                    make_pipeline(
                        _text_imputer(),
                        OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5, sparse_output=False),
                    ),
                    categorical,
                ),
            ],
            verbose_feature_names_out=False,
        )
        model = _estimator(task, estimator, params, seed, [])
    else:
        raise TrainError(f"unknown estimator {estimator!r} in train.estimator")
    try:
        return Pipeline([("preprocess", pre), ("model", model)])
    except TypeError as exc:
        raise TrainError(f"train.params is not valid for {estimator}: {exc}") from None

"""The scikit-learn Pipeline a model is: preprocessing derived from the contract plus an estimator.

Everything lives in one Pipeline so serving applies exactly the steps training did.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler, TargetEncoder

from mloop.config import MloopConfig, Task
from mloop.data.contract import Contract
from mloop.errors import TrainError
from mloop.train.estimators import make_estimator

MAX_CATEGORIES = 200  # HistGradientBoosting bins categories; rarer ones are pooled as "infrequent"
HIGH_CARDINALITY = 50  # a text column with more categories than this (or none recorded) is target-encoded
MISSING = "__missing__"
_SKLEARN = tuple(int(p) for p in sklearn.__version__.split(".")[:2])


def _ordinal() -> OrdinalEncoder:
    # Unknown and missing categories both become NaN, which the tree models treat as missing.
    return OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
        max_categories=MAX_CATEGORIES,
    )


def _text_imputer() -> Pipeline:
    # Missing text arrives as NaN from files and as None from JSON (MLflow's scoring server keeps
    # None): both become one explicit category so every server predicts the same for a null.
    return make_pipeline(
        SimpleImputer(missing_values=np.nan, strategy="constant", fill_value=MISSING),
        SimpleImputer(missing_values=None, strategy="constant", fill_value=MISSING),
    )


def _target_encoder(seed: int) -> Pipeline:
    # Cross-fitted inside fit_transform, so a row's own label never leaks into its encoding; seeded folds
    # keep training reproducible (scikit-learn 1.9 takes them as ``cv``, older releases as random_state).
    if _SKLEARN >= (1, 9):
        encoder = TargetEncoder(cv=KFold(5, shuffle=True, random_state=seed))
    else:
        encoder = TargetEncoder(shuffle=True, random_state=seed)
    return make_pipeline(_text_imputer(), encoder)


def split_categorical(contract: Contract, threshold: int = HIGH_CARDINALITY) -> tuple[list[str], list[str]]:
    """(low, high) cardinality text features; free text (no category set in the contract) counts as high."""
    low: list[str] = []
    high: list[str] = []
    for name in contract.categorical_features:
        categories = contract.columns[name].categories
        (high if categories is None or len(categories) > threshold else low).append(name)
    return low, high


def _preprocessor(
    estimator: str, numeric: list[str], low: list[str], high: list[str], seed: int
) -> tuple[ColumnTransformer, list[int]]:
    """The column transformer for ``estimator`` and the indices of its outputs that are native categories."""
    if estimator == "linear":
        steps: list[tuple[str, Any, list[str]]] = [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "cat",
                make_pipeline(
                    _text_imputer(),
                    OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5, sparse_output=False),
                ),
                low,
            ),
            ("high", make_pipeline(_target_encoder(seed), StandardScaler()), high),
        ]
        mask: list[int] = []
    elif estimator == "random_forest":
        steps = [
            ("num", SimpleImputer(strategy="median"), numeric),
            ("cat", make_pipeline(_text_imputer(), _ordinal(), SimpleImputer(strategy="constant", fill_value=-1)), low),
            ("high", _target_encoder(seed), high),
        ]
        mask = []
    else:  # gradient boosting: missing numbers stay NaN, which each of them handles natively
        steps = [
            ("num", "passthrough", numeric),
            ("cat", make_pipeline(_text_imputer(), _ordinal()), low),
            ("high", _target_encoder(seed), high),
        ]
        # Indices, not a mask: the target encoder's width (one column per class) is only known once fitted.
        mask = list(range(len(numeric), len(numeric) + len(low))) if estimator == "hist_gradient_boosting" else []
    used = [step for step in steps if step[2]]
    return ColumnTransformer(used, verbose_feature_names_out=False), mask


def build_pipeline(
    contract: Contract,
    task: Task,
    estimator: str = "hist_gradient_boosting",
    params: dict[str, Any] | None = None,
    seed: int = 42,
    high_cardinality: int = HIGH_CARDINALITY,
) -> Pipeline:
    numeric = contract.numeric_features
    low, high = split_categorical(contract, high_cardinality)
    pre, mask = _preprocessor(estimator, numeric, low, high, seed)
    try:
        model = make_estimator(task, estimator, dict(params or {}), seed, mask)
    except TypeError as exc:
        raise TrainError(f"train.params is not valid for {estimator}: {exc}") from None
    return Pipeline([("preprocess", pre), ("model", model)])


def pipeline_for(contract: Contract, config: MloopConfig, params: dict[str, Any] | None = None) -> Pipeline:
    """The pipeline ``config`` asks for; ``params`` (from a search) override ``train.params``."""
    cfg = config.train
    merged = {**cfg.params, **(params or {})}
    return build_pipeline(contract, config.task, cfg.estimator, merged, cfg.seed, cfg.high_cardinality)

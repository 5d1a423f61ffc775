"""The fitted trees of a scikit-learn HistGradientBoosting model: the one module that reads its internals.

The serving fast path (``mloop.serve.fastpath``) and permutation importance (``mloop.train.importance``)
both sum the trees themselves rather than call ``predict``, whose per-call validation and re-encoding
cost more than the trees on a few rows. What they read is private to scikit-learn (``_predictors``,
``_baseline_prediction``, ``_bin_mapper``, ``_preprocessor``, ``_loss``, ``TreePredictor``), so it is read
here only: a scikit-learn that moves it raises ``AttributeError`` (or ``ImportError``) from here, which
both callers take as "no shortcut" and fall back to ``predict``, and check their results against it.
It sits in ``train`` because ``serve`` is above ``train`` in the layers and may import it, not the
other way round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def is_hist_gradient_boosting(estimator: Any) -> bool:
    """Whether ``estimator`` is a HistGradientBoosting regressor or classifier (the trees read here)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    return isinstance(estimator, HistGradientBoostingRegressor | HistGradientBoostingClassifier)


@dataclass(frozen=True)
class FittedTrees:
    """A fitted HistGradientBoosting model as its trees: ``raw`` sums them as ``_raw_predict`` does."""

    predictors: list[list[Any]]  # iteration by iteration, one TreePredictor per output
    baseline: np.ndarray  # the raw prediction the trees add to, shape (1, outputs)
    bin_mapper: Any  # the binning the trees were grown on
    preprocessor: Any  # the estimator's own encoder of categorical columns (they come first), or None
    loss: Any
    classes: np.ndarray | None  # None for a regressor
    per_iteration: int  # trees per iteration: one per class for a multiclass model, else one
    known_cat_bitsets: Any  # categories seen in training, per categorical feature, as bitsets
    f_idx_map: Any  # feature index → row of ``known_cat_bitsets``

    @classmethod
    def of(cls, estimator: Any) -> FittedTrees:
        """The trees of a fitted HistGradientBoosting ``estimator``; ``AttributeError`` if they are not there."""
        known_cat_bitsets, f_idx_map = estimator._bin_mapper.make_known_categories_bitsets()
        return cls(
            predictors=estimator._predictors,
            baseline=np.asarray(estimator._baseline_prediction),
            bin_mapper=estimator._bin_mapper,
            preprocessor=estimator._preprocessor,
            loss=estimator._loss,
            classes=np.asarray(estimator.classes_) if hasattr(estimator, "classes_") else None,
            per_iteration=int(estimator.n_trees_per_iteration_),
            known_cat_bitsets=known_cat_bitsets,
            f_idx_map=f_idx_map,
        )

    def raw(self, matrix: np.ndarray) -> np.ndarray:
        """Baseline plus every tree's output on ``matrix`` (values, not bins), in ``_raw_predict``'s order."""
        raw = np.empty((matrix.shape[0], self.baseline.shape[-1]), dtype=self.baseline.dtype, order="F")
        raw[:] = self.baseline
        # One thread: requests are already scored concurrently; large batches are rare on this path.
        for iteration in self.predictors:
            for k, predictor in enumerate(iteration):
                raw[:, k] += predictor.predict(matrix, self.known_cat_bitsets, self.f_idx_map, 1)
        return raw

    def values(self, raw: np.ndarray) -> np.ndarray:
        """A regressor's predictions from raw outputs."""
        return np.asarray(self.loss.link.inverse(raw.ravel()))

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        """A classifier's class probabilities from raw outputs."""
        return np.asarray(self.loss.predict_proba(raw))


def class_indices(raw: np.ndarray) -> np.ndarray:
    """The predicted class of each row of raw outputs, as ``predict``: "> 0" for two classes, argmax for more."""
    return (raw.ravel() > 0).astype(int) if raw.shape[1] == 1 else np.argmax(raw, axis=1)


def tree_predictor(nodes: np.ndarray, binned_left_cat_bitsets: Any, raw_left_cat_bitsets: Any) -> Any:
    """A scikit-learn ``TreePredictor`` over ``nodes`` (e.g. a copy of a fitted tree's, renumbered)."""
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    return TreePredictor(nodes, binned_left_cat_bitsets, raw_left_cat_bitsets)


__all__ = ["FittedTrees", "class_indices", "is_hist_gradient_boosting", "tree_predictor"]

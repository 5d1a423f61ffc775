"""Labels from production feedback, conformed to the type the data contract gives the target.

Feedback arrives as JSON, so a price the training data holds as an integer may come back as
``215000.0``. Such a label is cast to an integer without loss. A label that cannot be (``215000.5`` for
an integer target, text for a numeric one, NaN or infinity) is left out of the retraining set: one bad
feedback call must not make the whole retrain fail on the data contract. Each one left out is
reported, naming the request id and the target, so the caller can log and count it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mloop.data.contract import Dtype


@dataclass(frozen=True)
class RejectedLabel:
    """One feedback label left out of the retraining set, and why."""

    request_id: str
    target: str
    label: Any
    problem: str

    @property
    def message(self) -> str:
        return (
            f"feedback for request {self.request_id}: label {self.label!r} of target {self.target!r} {self.problem}; "
            "the row is left out of the retraining data (send the label again as a valid value to include it)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "field": "label", "target": self.target, "problem": self.problem}


def conform_labels(
    labels: pd.Series, request_ids: pd.Series, target: str, dtype: Dtype
) -> tuple[pd.Series, list[RejectedLabel]]:
    """``(the labels that fit the target's contract dtype, cast to it; the rejected ones)``.

    The kept labels keep their index, so the rows they belong to can be selected with it. Integer
    targets get ``int64``, float targets ``float64``; other dtypes (class names, booleans) are kept as
    they came, the contract check judging them as it judges any batch.
    """
    if dtype not in ("integer", "float"):
        return labels, []
    numbers = pd.to_numeric(labels, errors="coerce").astype(np.float64)
    finite = np.isfinite(numbers.to_numpy())
    problems = pd.Series("", index=labels.index, dtype=object)
    problems[~finite] = "is not a number" if dtype == "float" else "is not an integer"
    if dtype == "integer":
        fraction = finite & (np.mod(np.where(finite, numbers.to_numpy(), 0.0), 1) != 0)
        problems[fraction] = "is not an integer, as the data contract requires (it has a fractional part)"
    bad = problems != ""
    rejected = [
        RejectedLabel(str(request_ids[i]), target, _plain(labels[i]), str(problems[i])) for i in labels.index[bad]
    ]
    kept = numbers[~bad]
    return (kept.astype(np.int64) if dtype == "integer" else kept), rejected


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python value it holds, so messages show ``215000.5``, not ``np.float64(...)``."""
    return value.item() if isinstance(value, np.generic) else value


__all__ = ["RejectedLabel", "conform_labels"]

"""One Arrow batch against a version's contract: the rows to reject (and why), and the model's inputs.

These are the functions the Spark engine's Python workers run on every batch ``mapInArrow`` hands them;
they take and return Arrow, never Spark objects, so they run (and are tested) without a session.

Each feature the contract lists is checked row by row with the contract's own rules (``mloop.data.contract``)
and the contract's severities: a check whose severity is ``error`` rejects the row, one that only warns lets
it through, typed as ``coerce_frame`` types it (a number that does not parse becomes NaN, as in
``mloop score`` in process). The row-level checks are ``dtype`` (a number that does not parse, an integer
with a fraction, a boolean or a date that is not one), ``nullable`` (a null or NaN where the contract says the
column is never null), ``range`` and ``categories``. ``unique`` and ``row_count`` are properties of a whole
table, not of a row, and ``missing_column`` fails the job before it starts (``scoring``).

The model's inputs are built from the columns directly (``model_inputs``), with the same values
``coerce_frame`` then ``records_of`` give the compiled pipeline in process: float64 for numbers (NaN when
missing) and, for text, each category's code, the missing code or the unknown code, looked up in Arrow.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mloop.data.contract import ColumnSpec, Contract, coerce_frame
from mloop.serve.fastpath import CompiledPipeline

REASON = "reason"
MAX_SHOWN_CHARS = 60  # a rejected value is quoted in its reason up to this many characters
_NUMERIC = ("integer", "float")
_TRUTH = {"true": 1.0, "false": 0.0, "True": 1.0, "False": 0.0, True: 1.0, False: 0.0}


@dataclass(frozen=True)
class Checked:
    """A batch after the contract: ``rejected`` marks the rows to set aside, ``reasons`` says why (None: kept)."""

    rejected: np.ndarray  # bool, one per row
    reasons: list[str | None]
    numbers: dict[str, np.ndarray]  # numeric and boolean features as float64, NaN for missing
    texts: dict[str, pa.Array]  # text and datetime features as Arrow strings, null for missing

    @property
    def kept(self) -> int:
        return int((~self.rejected).sum())


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 1] + "…"


def _missing(column: pa.Array) -> np.ndarray:
    """Null, or NaN in a floating column: what pandas (and so the contract's checks) call missing."""
    missing = column.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_floating(column.type):
        missing = missing | pc.fill_null(pc.is_nan(column), False).to_numpy(zero_copy_only=False)
    return np.asarray(missing, dtype=bool)


def _as_numbers(column: pa.Array, spec: ColumnSpec) -> tuple[np.ndarray, np.ndarray]:
    """``coerce_frame``'s float64 values of a numeric or boolean column, and which values break ``dtype``."""
    kind = column.type
    if spec.dtype != "boolean" and (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        values = np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        bad = np.zeros(len(values), dtype=bool)
    else:  # text, booleans, decimals, dates: pandas parses them exactly as coerce_frame and the contract do
        series = pd.Series(column.to_pandas(), dtype=object)
        if spec.dtype == "boolean":
            series = series.map(lambda v: _TRUTH.get(v, math.nan) if v is not None else v)
            bad = series.isna().to_numpy() & ~_missing(column)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if spec.dtype != "boolean":
            bad = np.isnan(values) & ~series.isna().to_numpy()
    if spec.dtype == "integer":
        with np.errstate(invalid="ignore"):
            bad = bad | (~np.isnan(values) & (np.mod(values, 1) != 0))  # a fraction, or ±inf (mod gives NaN)
    return values, bad


def _as_text(column: pa.Array) -> pa.Array:
    """``coerce_frame``'s text of a column (``str`` of each value), as an Arrow string array, null for missing."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column.cast(pa.string()) if pa.types.is_large_string(column.type) else column
    series = pd.Series(column.to_pandas(), dtype=object)
    text = series.map(str).where(series.notna(), None)
    return pa.array(text.tolist(), type=pa.string())


def _unparsed_dates(text: pa.Array, original: pa.Array) -> np.ndarray:
    if pa.types.is_timestamp(original.type) or pa.types.is_date(original.type):
        return np.zeros(len(text), dtype=bool)
    series = pd.Series(text.to_pandas(), dtype=object)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", UserWarning)
        parsed = pd.to_datetime(series, errors="coerce", format="mixed")
    return np.asarray(parsed.isna().to_numpy() & series.notna().to_numpy(), dtype=bool)


def check_batch(batch: pa.RecordBatch, contract: Contract) -> Checked:
    """Check every feature of ``batch`` against ``contract`` row by row; the batch must hold every feature."""
    rows = batch.num_rows
    severity = contract.severity
    errors = {check for check in ("dtype", "nullable", "range", "categories") if severity.get(check) == "error"}
    reasons: dict[int, list[str]] = {}  # only rows that fail something: most batches have none
    rejected = np.zeros(rows, dtype=bool)
    numbers: dict[str, np.ndarray] = {}
    texts: dict[str, pa.Array] = {}

    def reject(mask: np.ndarray, column: pa.Array | None, say: str) -> None:
        nonlocal rejected
        rejected = rejected | mask
        for row in np.flatnonzero(mask).tolist():
            value = "" if column is None else f" {_shown(column[row].as_py())}"
            reasons.setdefault(row, []).append(say.replace("{value}", value))

    for name in contract.features:
        spec = contract.columns[name]
        column = batch.column(name)
        missing = _missing(column)
        if spec.dtype in (*_NUMERIC, "boolean"):
            values, bad = _as_numbers(column, spec)
            numbers[name] = values
            if "dtype" in errors and bad.any():
                reject(bad, column, f"{name}: the value{{value}} is not {_kind(spec)}")
            if spec.dtype in _NUMERIC and "range" in errors and (spec.min is not None or spec.max is not None):
                low = -math.inf if spec.min is None else spec.min
                high = math.inf if spec.max is None else spec.max
                with np.errstate(invalid="ignore"):
                    outside = ~np.isnan(values) & ((values < low) | (values > high))
                if outside.any():
                    reject(
                        outside, column, f"{name}: the value{{value}} is outside the contract's range [{low}, {high}]"
                    )
        else:
            text = _as_text(column)
            texts[name] = text
            if spec.dtype == "datetime" and "dtype" in errors:
                bad = _unparsed_dates(text, column)
                if bad.any():
                    reject(bad, column, f"{name}: the value{{value}} is not a date or time")
            if spec.categories is not None and "categories" in errors:
                known = pc.fill_null(pc.is_in(text, value_set=pa.array(spec.categories, type=pa.string())), True)
                unknown = ~np.asarray(known.to_numpy(zero_copy_only=False), dtype=bool)
                if unknown.any():
                    reject(unknown, column, f"{name}: the category{{value}} is not one the contract knows")
        if not spec.nullable and "nullable" in errors and missing.any():
            reject(missing, None, f"{name}: missing, but the contract says the column is never null")
    said: list[str | None] = (
        [None] * rows if not reasons else ["; ".join(reasons[r]) if r in reasons else None for r in range(rows)]
    )
    return Checked(rejected, said, numbers, texts)


def _kind(spec: ColumnSpec) -> str:
    return {"integer": "an integer", "float": "a number", "boolean": "true or false"}.get(spec.dtype, spec.dtype)


def model_inputs(checked: Checked, compiled: CompiledPipeline, keep: np.ndarray) -> np.ndarray:
    """The compiled pipeline's input matrix of the ``keep`` rows: what ``compiled.matrix`` makes of them.

    In process each row goes ``coerce_frame`` → ``records_of`` → ``matrix``: a number as ``float(value)``
    (None → NaN), a text through the category codes (missing → the missing code, anything else → the unknown
    code). Here the same values come from whole columns at once.
    """
    n_num = len(compiled.numeric)
    width = n_num + len(compiled.categorical)
    positions = compiled.positions or tuple(range(width))
    out = np.empty((int(keep.sum()), width), dtype=np.float64)
    for j, name in enumerate(compiled.numeric):
        out[:, positions[j]] = checked.numbers[name][keep]
    index = pa.array(np.flatnonzero(keep))
    for k, name in enumerate(compiled.categorical):
        text = checked.texts[name].take(index)
        codes = compiled.codes[k]
        found = pc.index_in(text, value_set=pa.array(list(codes), type=pa.string()))
        table = np.array([*codes.values(), compiled.unknown_codes[k]], dtype=np.float64)
        looked_up = table[np.asarray(pc.fill_null(found, len(codes)).to_numpy(zero_copy_only=False), dtype=np.intp)]
        null = np.asarray(text.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        out[:, positions[n_num + k]] = np.where(null, compiled.missing_codes[k], looked_up)
    return out


def model_frame(checked: Checked, contract: Contract, keep: np.ndarray) -> pd.DataFrame:
    """The ``keep`` rows as ``coerce_frame`` types them, for a pipeline that needs a frame (no fast path)."""
    columns: dict[str, Any] = {}
    for name in contract.features:
        if name in checked.numbers:
            columns[name] = checked.numbers[name][keep]
        else:
            values = checked.texts[name].to_pandas()[keep]
            columns[name] = values.to_numpy(dtype=object)
    return coerce_frame(pd.DataFrame(columns), contract)


__all__ = ["REASON", "Checked", "check_batch", "model_frame", "model_inputs"]

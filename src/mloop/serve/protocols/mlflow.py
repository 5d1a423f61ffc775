"""MLflow's scoring-server formats: JSON ``dataframe_split``, ``dataframe_records``, ``inputs``/``instances``
(records or columns), and CSV, with a header (MLflow) or without one (SageMaker), as records.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd

from mloop.errors import InconsistentInput, InvalidInput
from mloop.serve.fastpath import records_of
from mloop.serve.http import problem
from mloop.serve.model_holder import LoadedModel

MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "inputs", "instances")


def _rows_to_records(columns: Any, data: Any, where: list[str | int]) -> list[Any]:
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InvalidInput([problem([*where, "columns"], "expected a list of column names", "list_type")])
    if not isinstance(data, list):
        raise InvalidInput([problem([*where, "data"], "expected a list of rows", "list_type")])
    records = []
    for index, row in enumerate(data):
        if not isinstance(row, list):
            raise InvalidInput([problem([*where, "data", index], "expected a list of values", "list_type")])
        if len(row) != len(columns):
            msg = f"expected a list of {len(columns)} values, one per column"
            raise InconsistentInput([problem([*where, "data", index], msg, "list_length")])
        records.append(dict(zip(columns, row, strict=True)))
    return records


def _columns_to_records(columns: dict[str, Any], where: list[str | int]) -> list[Any]:
    """``{"col": [v, ...]}`` (or scalars, for one record) as records."""
    if all(not isinstance(v, list) for v in columns.values()):
        return [columns]
    lengths = {name: len(v) if isinstance(v, list) else -1 for name, v in columns.items()}
    n = max(lengths.values())
    for name, length in lengths.items():
        if length != n:
            raise InconsistentInput(
                [problem([*where, name], f"expected a list of {n} values like the other columns", "list_length")]
            )
    return [{name: values[i] for name, values in columns.items()} for i in range(n)]


def mlflow_records(payload: dict[str, Any]) -> list[Any]:
    """The records of an MLflow scoring-server JSON body (exactly one input key, optional ``params``)."""
    keys = [k for k in MLFLOW_KEYS if k in payload]
    extra = sorted(set(payload) - set(MLFLOW_KEYS) - {"params"})
    if len(keys) != 1 or extra:
        got = ", ".join(sorted(payload))
        msg = f"expected exactly one of {', '.join(MLFLOW_KEYS)} (and optionally params); got {got}"
        raise InvalidInput([problem(["body"], msg, "mlflow_format")])
    if "params" in payload and not isinstance(payload["params"], dict):
        raise InvalidInput([problem(["body", "params"], "expected an object of inference parameters", "dict_type")])
    key = keys[0]
    value = payload[key]
    if key == "dataframe_split":
        if not isinstance(value, dict):
            raise InvalidInput([problem(["body", key], "expected an object with columns and data", "dict_type")])
        unknown = sorted(set(value) - {"columns", "data", "index"})
        if unknown:  # the index (pandas' orient="split") is accepted and not needed
            msg = "dataframe_split takes columns, data and optionally index"
            raise InvalidInput([problem(["body", key, unknown[0]], msg, "extra_forbidden")])
        return _rows_to_records(value.get("columns"), value.get("data"), ["body", key])
    if key == "dataframe_records":
        if not isinstance(value, list):
            raise InvalidInput([problem(["body", key], "expected a list of records", "list_type")])
        return value
    if isinstance(value, dict):
        return _columns_to_records(value, ["body", key])
    if isinstance(value, list):
        return value
    raise InvalidInput([problem(["body", key], "expected a list of records or an object of columns", "model_type")])


def columnar(payload: dict[str, Any]) -> bool:
    """Whether an MLflow JSON body holds columns (split, or an object of columns), whose feature names and
    types its schema cannot check: their problems answer 400, those of records 422."""
    if "dataframe_split" in payload:
        return True
    return any(isinstance(payload.get(key), dict) for key in ("inputs", "instances"))


def _read_csv(body: bytes, model: LoadedModel, header: bool) -> pd.DataFrame:
    contract = model.contract
    text_columns = {c: str for c, s in contract.columns.items() if s.dtype in ("string", "datetime")}
    try:
        return pd.read_csv(
            io.BytesIO(body),
            header=0 if header else None,
            names=None if header else contract.features,
            dtype=text_columns,
        )
    except (ValueError, pd.errors.ParserError) as exc:
        raise InconsistentInput([problem(["body"], f"the body is not readable CSV: {exc}", "csv_invalid")]) from None


def csv_records(body: bytes, model: LoadedModel) -> tuple[list[Any], str]:
    """Records of a CSV body and its flavour: ``mlflow`` (a header row) or ``sagemaker`` (no header)."""
    first = body.lstrip().split(b"\n", 1)[0].decode("utf-8", errors="replace")
    names = {n.strip().strip('"') for n in first.split(",")}
    known = set(model.contract.features) | set(model.contract.with_role("time", "id"))
    has_header = bool(names) and names <= known
    if not has_header and len(first.split(",")) != len(model.contract.features):
        msg = (
            f"a CSV without a header needs {len(model.contract.features)} values per row, the features in the "
            f"order of GET /v1/model; or start with a header row of feature names"
        )
        raise InconsistentInput([problem(["body", 0], msg, "csv_columns")])
    frame = _read_csv(body, model, has_header)
    if frame.empty:
        raise InconsistentInput([problem(["body"], "the CSV has no rows", "too_short")])
    return records_of(frame), "mlflow" if has_header else "sagemaker"


__all__ = ["MLFLOW_KEYS", "columnar", "csv_records", "mlflow_records"]

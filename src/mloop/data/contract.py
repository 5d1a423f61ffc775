"""The data contract: inferred on the first ingest, stored as editable YAML, enforced with pandera.

A contract names every column with its type, nullability, range and category set, and the role it
plays (feature, target, time, id, ignored). Checks have a severity: ``error`` rejects a snapshot,
``warn`` lets it through and reports.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mloop.errors import ContractError, TrainError

if TYPE_CHECKING:  # imported where a frame is validated: a tenth of a second that loading a contract skips
    import pandera.pandas as pa

    from mloop.config import Task

Dtype = Literal["integer", "float", "boolean", "string", "datetime"]
Role = Literal["feature", "target", "time", "id", "ignored"]
Severity = Literal["error", "warn"]
CheckName = Literal["missing_column", "dtype", "nullable", "range", "categories", "row_count", "unique", "target"]

MAX_CATEGORIES = 200  # above this a text column is treated as free text: no category set is recorded
RANGE_TOLERANCE = 0.25  # inferred bounds are widened by this share of the observed span
EXAMPLES = 5


class ColumnSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dtype: Dtype
    role: Role = "feature"
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    unique: bool | None = None  # True: every value distinct (ids): a duplicate means rows were loaded twice


def _default_severity() -> dict[CheckName, Severity]:
    return {
        "missing_column": "error",
        "dtype": "error",
        "nullable": "error",
        "row_count": "error",
        "range": "warn",
        "categories": "warn",
        "unique": "error",
        "target": "error",
    }


class Contract(BaseModel):
    """The columns a snapshot must have and the checks each one must pass.

    It owns the target once the first ingest has inferred it: its name (``data.target`` in mloop.yaml
    must agree, see ``Project.contract``) and how its values are typed (:meth:`target_values`).
    """

    model_config = ConfigDict(extra="forbid")

    version: int = 1
    target: str
    min_rows: int = Field(default=1, ge=0)
    severity: dict[CheckName, Severity] = Field(default_factory=_default_severity)
    columns: dict[str, ColumnSpec]

    @model_validator(mode="after")
    def _one_target(self) -> Contract:
        # `target:` and the column roles must say the same: a second "target" column, or the named one left a
        # feature, would put the label among the model's inputs.
        spec = self.columns.get(self.target)
        if spec is None:
            raise ValueError(f"target {self.target!r} is not one of the contract's columns")
        if spec.role != "target":
            raise ValueError(f"target {self.target!r} has role {spec.role!r} under columns; give it role: target")
        others = [name for name, s in self.columns.items() if s.role == "target" and name != self.target]
        if others:
            raise ValueError(
                f"{', '.join(map(repr, others))} also {'has' if len(others) == 1 else 'have'} role target, but the "
                f"target is {self.target!r}; make {'it' if len(others) == 1 else 'them'} feature or ignored"
            )
        return self

    def target_values(self, frame: pd.DataFrame, task: Task) -> pd.Series:
        """The target column of ``frame`` typed as models learn and are scored on it.

        Classification labels are text (an integer class 3 is ``"3"``), regression targets float64 (an
        integer price is a float). Training, the gate and the retraining guard all read labels here, so a
        holdout is scored on the labels the model was fitted on.
        """
        y = frame[self.target]
        if task == "classification":
            return y.astype(str)
        values = pd.to_numeric(y, errors="coerce")
        bad = values.isna() & y.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise TrainError(
                f"target column {self.target!r} must be numeric for regression; row {row} holds "
                f"{y.iloc[row]!r}. Use task: classification for labels."
            )
        return values.astype(float)

    def with_target(self, column: str) -> Contract:
        """This contract predicting ``column``, its version bumped; the old target becomes ``ignored``.

        Not a feature: a label is rarely known when a prediction is asked for. Edit its role to use it.
        """
        if column == self.target:
            return self
        spec = self.columns.get(column)
        if spec is None:
            raise ContractError(
                f"column {column!r} is not in the data contract; run `mloop contract update` to add the latest "
                "snapshot's new columns, then set the target again."
            )
        if spec.role in ("time", "id"):
            raise ContractError(
                f"column {column!r} is the contract's {spec.role} column, not something to predict; "
                f"change its role in the contract first if it really is the target."
            )
        roles: dict[str, Role] = {column: "target", self.target: "ignored"}
        columns = {
            name: s.model_copy(update={"role": roles[name]}) if name in roles else s for name, s in self.columns.items()
        }
        return self.model_copy(update={"version": self.version + 1, "target": column, "columns": columns})

    def with_role(self, *roles: Role) -> list[str]:
        return [name for name, spec in self.columns.items() if spec.role in roles]

    @property
    def features(self) -> list[str]:
        return self.with_role("feature")

    @property
    def numeric_features(self) -> list[str]:
        return [c for c in self.features if self.columns[c].dtype in ("integer", "float", "boolean")]

    @property
    def categorical_features(self) -> list[str]:
        return [c for c in self.features if self.columns[c].dtype == "string"]

    def hash(self) -> str:
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------- inference


def _infer_dtype(series: pd.Series) -> Dtype:
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "integer"
    if pd.api.types.is_float_dtype(series):
        values = series.dropna()
        return "integer" if len(values) and bool(np.all(np.mod(values, 1) == 0)) else "float"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "string"


def _bounds(values: pd.Series) -> tuple[float | None, float | None]:
    values = values.dropna()
    if values.empty:
        return None, None
    low, high = float(values.min()), float(values.max())
    margin = (high - low) * RANGE_TOLERANCE
    lower = low - margin
    if low >= 0:  # counts, areas and prices stay non-negative
        lower = max(lower, 0.0)
    return lower, high + margin


def infer_contract(
    frame: pd.DataFrame,
    target: str,
    time_column: str | None = None,
    id_column: str | None = None,
    exclude: list[str] | None = None,
) -> Contract:
    """A contract describing ``frame``; ranges are widened so ordinary new data passes."""
    if target not in frame.columns:
        raise ContractError(
            f"target column {target!r} is not in the data; columns are: {', '.join(map(str, frame.columns))}"
        )
    excluded = set(exclude or [])
    columns: dict[str, ColumnSpec] = {}
    for name in frame.columns:
        series = frame[name]
        dtype = _infer_dtype(series)
        role: Role = "feature"
        if name == target:
            role = "target"
        elif name == time_column:
            role = "time"
        elif name == id_column:
            role = "id"
        elif name in excluded or dtype == "datetime":
            role = "ignored"
        spec = ColumnSpec(dtype=dtype, role=role, nullable=bool(series.isna().any()))
        if role == "id" and bool(series.notna().all()) and bool(series.is_unique):
            spec.unique = True
        if dtype in ("integer", "float") and role not in ("time", "id"):  # time moves on: no bounds
            spec.min, spec.max = _bounds(series)
        elif dtype == "string":
            distinct = series.dropna().astype(str).unique()
            if len(distinct) <= MAX_CATEGORIES:
                spec.categories = sorted(distinct.tolist())
            elif role == "feature" and len(distinct) > 0.5 * len(series):
                spec.role = "ignored"  # an identifier or free text, not a usable feature
        columns[str(name)] = spec
    if not any(spec.role == "feature" for spec in columns.values()):
        raise ContractError("the data has no usable feature column besides the target.")
    return Contract(target=target, min_rows=max(1, len(frame) // 10), columns=columns)


# -------------------------------------------------------------------------------------- storage

_HEADER = """\
# mloop data contract: every snapshot is checked against it (`mloop validate`).
# Edit it by hand: loosen a range, add a category, change a column's role (feature, target, time,
# id, ignored) or a check's severity (error rejects the snapshot, warn only reports).
"""


def save_contract(contract: Contract, path: Path) -> None:
    data = contract.model_dump(mode="json", exclude_none=True)
    path.write_text(_HEADER + yaml.safe_dump(data, sort_keys=False, width=110), encoding="utf-8")


def _problem(loc: tuple[int | str, ...], msg: str) -> str:
    """One pydantic error as ``key.path: message``; a whole-contract check has no key."""
    msg = msg.removeprefix("Value error, ")
    return f"{'.'.join(str(p) for p in loc)}: {msg}" if loc else msg


def load_contract(path: Path) -> Contract:
    if not path.is_file():
        raise ContractError(f"No data contract at {path}; run `mloop ingest` to infer one.")
    try:
        # libyaml's loader parses a contract ~9x faster (it is read by every train, serve and monitor run);
        # the same safe subset of YAML either way.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a safe loader
        return Contract.model_validate(data)
    except yaml.YAMLError as exc:
        raise ContractError(f"{path} is not valid YAML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(_problem(e["loc"], e["msg"]) for e in exc.errors(include_url=False))
        raise ContractError(f"{path} is not a valid data contract: {problems}") from None


# ----------------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class Violation:
    column: str
    check: str
    severity: Severity
    count: int
    examples: list[dict[str, Any]]
    message: str


@dataclass
class ValidationReport:
    rows: int
    contract_hash: str
    violations: list[Violation] = field(default_factory=list)

    @property
    def errors(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "error"]

    @property
    def warnings(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "warn"]

    @property
    def passed(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "rows": self.rows,
            "contract_hash": self.contract_hash,
            "counts": self.counts(),
            "violations": [v.__dict__ for v in self.violations],
        }

    def counts(self) -> dict[str, dict[str, int]]:
        """Failing values per column and check, e.g. ``{"Neighborhood": {"categories": 12}}``."""
        out: dict[str, dict[str, int]] = {}
        for v in self.violations:
            out.setdefault(v.column, {})[v.check] = out.get(v.column, {}).get(v.check, 0) + v.count
        return out

    def summary(self) -> str:
        lines = [f"{v.severity.upper()} column {v.column!r}: {v.message}" for v in self.violations]
        return "\n".join(lines)


def _numeric_ok(series: pd.Series, integral: bool) -> pd.Series:
    values = pd.to_numeric(series, errors="coerce")
    ok = values.notna() | series.isna()
    if integral:
        ok &= values.isna() | (values.fillna(0) % 1 == 0)
    return ok


def _reads_as_datetime(series: pd.Series) -> pd.Series:
    """Whether each value reads as a datetime on its own, whatever the other values of the column look like.

    ``pd.to_datetime`` infers one format from the first text value and turns every value written another way
    into NaT, so ``["2020-01-01", "2020-01-01 10:00"]`` failed on its second row, and the same rows in the other
    order on the first: the verdict hung on row order (found by the property tests). The one-format pass stays
    (it is fast); only the text it could not read is read again value by value (``format="mixed"``). Text mixed
    with other values (numbers, timestamps) is read apart from them: pandas applied the format inferred from the
    text to the numbers too, which it deprecates (``Pandas4Warning``), and will read them as epochs.
    """
    if pd.api.types.is_datetime64_any_dtype(series):
        return pd.Series(True, index=series.index)
    if series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) not in ("string", "empty"):
        text = series.map(lambda v: isinstance(v, str)).astype(bool)
        if text.any() and not text.all():
            ok = pd.Series(False, index=series.index)
            ok[text] = _parses(series[text], text=True)
            ok[~text] = _parses(series[~text], text=False)
            return ok
    return _parses(series, text=pd.api.types.is_string_dtype(series) or series.dtype == object)


def _parses(values: pd.Series, text: bool) -> pd.Series:
    # pandas warns when it cannot infer a format (or guesses day-first) and NumPy when a number is too large for
    # nanoseconds: either way the value comes back NaT and is reported as a dtype violation, so the warnings
    # only repeat that on stderr; under ``-W error`` they turned the check itself into a failure with no row.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", UserWarning)
        ok = pd.to_datetime(values, errors="coerce").notna()
        retry = ~ok & values.notna()
        if text and retry.any():
            ok[retry] = pd.to_datetime(values[retry], errors="coerce", format="mixed").notna()
    return ok


def _dtype_check(dtype: Dtype) -> pa.Check:
    import pandera.pandas as pa

    def check(series: pd.Series) -> pd.Series:
        if dtype in ("integer", "float"):
            return _numeric_ok(series, integral=dtype == "integer")
        if dtype == "boolean":
            allowed = {True, False, "true", "false", "True", "False"}
            return series.isna() | series.map(lambda v: v in allowed).astype(bool)
        if dtype == "datetime":
            return series.isna() | _reads_as_datetime(series)
        return pd.Series(True, index=series.index)

    return pa.Check(check, name="dtype")


def _schemas(contract: Contract) -> dict[Severity, pa.DataFrameSchema]:
    import pandera.pandas as pa

    sev = contract.severity
    columns: dict[Severity, dict[str, pa.Column]] = {"error": {}, "warn": {}}
    for name, spec in contract.columns.items():
        by_severity: dict[Severity, list[pa.Check]] = {"error": [], "warn": []}
        by_severity[sev.get("dtype", "error")].append(_dtype_check(spec.dtype))
        if spec.dtype in ("integer", "float") and (spec.min is not None or spec.max is not None):
            low = -math.inf if spec.min is None else spec.min
            high = math.inf if spec.max is None else spec.max

            def within(s: pd.Series, low: float = low, high: float = high) -> pd.Series:
                values = pd.to_numeric(s, errors="coerce")
                return values.isna() | ((values >= low) & (values <= high))

            by_severity[sev.get("range", "warn")].append(pa.Check(within, name="range"))
        if spec.categories is not None:
            known = set(spec.categories)

            def known_category(s: pd.Series, known: set[str] = known) -> pd.Series:
                return s.isna() | s.astype(str).isin(known)

            by_severity[sev.get("categories", "warn")].append(pa.Check(known_category, name="categories"))
        if spec.unique:
            by_severity[sev.get("unique", "error")].append(
                pa.Check(lambda s: ~s.duplicated(keep="first") | s.isna(), name="unique")
            )
        null_severity = sev.get("nullable", "error")
        for level in ("error", "warn"):
            columns[level][name] = pa.Column(
                checks=by_severity[level],
                nullable=spec.nullable or level != null_severity,
                # Ignored and id columns are not needed by the model, so a batch may leave them out.
                required=level == sev.get("missing_column", "error") and spec.role in ("feature", "target", "time"),
            )
    return {level: pa.DataFrameSchema(cols) for level, cols in columns.items()}


def _violations(failures: pd.DataFrame, severity: Severity, contract: Contract) -> list[Violation]:
    out: list[Violation] = []
    failures = failures.copy()
    failures["column"] = failures["column"].fillna("").astype(str)
    for (column, check), group in failures.groupby(["column", "check"], sort=True):
        check_name = str(check)
        if check_name.startswith("column_in_dataframe"):
            # pandera files every missing column under one (column=None) group, so each of its failure cases is
            # one column: reading only the first named one of several missing columns (found by the property
            # tests), and a batch fixed for it failed again on the next.
            out += [
                Violation(str(missing), "missing_column", severity, 1, [], "column is missing")
                for missing in group["failure_case"]
            ]
            continue
        if check_name == "not_nullable":
            check_name = "nullable"
        spec = contract.columns.get(str(column))
        examples = [
            {"row": int(idx), "value": None if pd.isna(val) else str(val)}
            for idx, val in zip(group["index"].head(EXAMPLES), group["failure_case"].head(EXAMPLES), strict=True)
            if pd.notna(idx)
        ]
        count = len(group)
        what = {
            "dtype": f"values that are not {spec.dtype}" if spec else "values of the wrong type",
            "nullable": "missing values in a column the contract says is never null",
            "range": f"values outside the contract's range [{spec.min if spec else '?'}, {spec.max if spec else '?'}]",
            "categories": "categories the contract has not seen",
            "unique": "repeated values in a column the contract says is unique",
        }.get(check_name, f"values failing {check_name}")
        shown = ", ".join(f"row {e['row']}: {e['value']!r}" for e in examples)
        message = f"{count} {what}" + (f" (e.g. {shown})" if shown else "")
        out.append(Violation(str(column), check_name, severity, count, examples, message))
    return out


def _target_violations(frame: pd.DataFrame, contract: Contract) -> list[Violation]:
    """The target must be usable for training: present in some rows, varying, and finite if numeric."""
    name = contract.target
    if name not in frame.columns:
        return []  # reported as a missing column
    severity = contract.severity.get("target", "error")
    values = frame[name].dropna()
    problem = ""
    if values.empty:
        problem = "the target has no values at all"
    elif values.nunique() < 2:
        problem = f"the target has a single value ({values.iloc[0]!r}); nothing to learn"
    elif contract.columns[name].dtype in ("integer", "float"):
        numbers = pd.to_numeric(values, errors="coerce")
        bad = frame.index[frame[name].notna()][~np.isfinite(numbers.to_numpy(dtype="float64", na_value=np.nan))]
        if len(bad):
            shown = [{"row": int(i), "value": str(frame.at[i, name])} for i in bad[:EXAMPLES]]
            return [
                Violation(
                    name,
                    "target",
                    severity,
                    len(bad),
                    shown,
                    f"{len(bad)} target values that are "
                    f"not finite numbers (e.g. row {shown[0]['row']}: {shown[0]['value']!r})",
                )
            ]
    return [Violation(name, "target", severity, len(frame), [], problem)] if problem else []


def validate_frame(frame: pd.DataFrame, contract: Contract) -> ValidationReport:
    """Check ``frame`` against ``contract``; never raises for bad data, it reports.

    A violation's example rows are index labels when the index is distinct integers (a frame read from a
    file has 0, 1, 2, …: the data row, counting from 0), else positions.
    """
    import pandera.pandas as pa

    if not (pd.api.types.is_integer_dtype(frame.index) and frame.index.is_unique):
        # Violations name a row by its index label, read as an int: a text or date index raised ValueError or
        # TypeError there (found by the property tests), and a repeated label names two rows. Rows are then
        # named by position, which is what "row" means for a file read without an index anyway.
        frame = frame.reset_index(drop=True)
    report = ValidationReport(rows=len(frame), contract_hash=contract.hash())
    for severity, schema in _schemas(contract).items():
        try:
            schema.validate(frame, lazy=True)
        except pa.errors.SchemaErrors as exc:
            report.violations.extend(_violations(exc.failure_cases, severity, contract))
    report.violations.extend(_target_violations(frame, contract))
    if len(frame) < contract.min_rows:
        report.violations.append(
            Violation(
                "*",
                "row_count",
                contract.severity.get("row_count", "error"),
                len(frame),
                [],
                f"only {len(frame)} rows; the contract requires at least {contract.min_rows}",
            )
        )
    return report


# ----------------------------------------------------------------------------------- coercion


def coerce_frame(frame: pd.DataFrame, contract: Contract, columns: list[str] | None = None) -> pd.DataFrame:
    """The columns the model reads, typed the same way in training and serving.

    Numbers become float64 and text becomes object with NaN for missing, so a JSON ``null`` and an
    empty CSV cell reach the pipeline's imputers as the same value.
    """
    out: dict[str, Any] = {}
    for name in columns if columns is not None else contract.features:
        spec = contract.columns[name]
        series = frame[name] if name in frame.columns else pd.Series(np.nan, index=frame.index)
        if spec.dtype in ("integer", "float", "boolean"):
            if spec.dtype == "boolean":
                truth = {"true": 1.0, "false": 0.0, "True": 1.0, "False": 0.0, True: 1.0, False: 0.0}
                series = series.map(truth)
            out[name] = pd.to_numeric(series, errors="coerce").astype("float64")
        else:
            text = series.astype(object)
            out[name] = text.map(str).where(text.notna(), np.nan).astype(object)
    return pd.DataFrame(out, index=frame.index)

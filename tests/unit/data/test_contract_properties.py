"""Property tests of the contract checker (issue 15): ``validate_frame`` against generated contracts and frames.

Each property draws a contract (features of every dtype, optional bounds from tiny to ±1.8e308, optional
category sets, an id column, an ignored column, a random severity per check) and a frame:

* a frame drawn *within* the contract passes with no violation at all;
* the same frame with *one* injected violation (wrong type, fraction in an integer column, out-of-range
  value, unknown category, null in a non-nullable column, missing column, duplicate id, constant or
  non-finite target, too few rows) is refused when that check's severity is ``error`` and reported as a
  warning when it is ``warn``, always naming the column, and the row where the check has rows;
* hostile frames (NaN, ±inf, 1e308, integers past int64, junk text, empty frames, one row, all-null
  columns, odd indexes) never make the checker raise, and never pass while an independent, deliberately
  conservative oracle sees an error-severity violation;
* checking is deterministic and does not depend on the order of the rows or of the columns.

Failures print the drawn contract and frame: each test ``note``s its case, because with the schemathesis
pytest plugin loaded hypothesis prints a falsifying argument as an empty ``case=,``. ``database=None`` keeps
the shared work tree free of a ``.hypothesis`` example database.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, Phase, assume, example, given, note, settings
from hypothesis import strategies as st

from mloop.data.contract import (
    EXAMPLES,
    CheckName,
    ColumnSpec,
    Contract,
    Dtype,
    Severity,
    ValidationReport,
    infer_contract,
    validate_frame,
)
from mloop.data.evolution import propose
from mloop.errors import ContractError

CHECKS: tuple[CheckName, ...] = get_args(CheckName)
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
TARGET, ID, NOTE = "y", "id", "note"
JUNK = ("abc", "n/a", "12abc", "--", "NaN?")  # text that no reading makes a number or a date
HUGE = (1e308, -1e308, 1.7976931348623157e308, -1.7976931348623157e308)

# pandas/pandera make a check's timing noisy (first calls import and build schemas): no deadline.
# No "explain" phase: it prints a composite argument as an empty ``case=,`` and costs a second per failure.
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)


# ------------------------------------------------------------------------------------------ strategies


@st.composite
def feature_specs(draw: st.DrawFn) -> ColumnSpec:
    dtype: Dtype = draw(st.sampled_from(["integer", "float", "string", "boolean", "datetime"]))
    spec = ColumnSpec(dtype=dtype, nullable=draw(st.booleans()))
    if dtype == "float":
        bound = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(HUGE)
        low, high = sorted([draw(bound), draw(bound)])
        spec.min = draw(st.none() | st.just(low))
        spec.max = draw(st.none() | st.just(high))
    elif dtype == "integer":
        bound_i = st.integers(INT64_MIN, INT64_MAX) | st.integers(-1000, 1000)
        low_i, high_i = sorted([draw(bound_i), draw(bound_i)])
        spec.min = draw(st.none() | st.just(float(low_i)))
        spec.max = draw(st.none() | st.just(float(high_i)))
    elif dtype == "string" and draw(st.booleans()):
        spec.categories = sorted(draw(st.lists(st.text(max_size=4), min_size=1, max_size=5, unique=True)))
    return spec


@st.composite
def contracts(draw: st.DrawFn) -> Contract:
    specs: dict[str, ColumnSpec] = {f"f{i}": draw(feature_specs()) for i in range(draw(st.integers(1, 4)))}
    specs[TARGET] = ColumnSpec(dtype=draw(st.sampled_from(["float", "integer"])), role="target", nullable=False)
    if draw(st.booleans()):
        specs[ID] = ColumnSpec(dtype="integer", role="id", nullable=False, unique=True)
    if draw(st.booleans()):
        specs[NOTE] = ColumnSpec(dtype="string", role="ignored")
    order = draw(st.permutations(list(specs)))  # the contract's column order is not meaningful
    severity = {check: draw(st.sampled_from(SEVERITIES)) for check in CHECKS}
    return Contract(
        target=TARGET,
        min_rows=draw(st.integers(0, 2)),
        severity=severity,
        columns={name: specs[name] for name in order},
    )


def _integer_range(spec: ColumnSpec) -> tuple[int, int]:
    low = INT64_MIN if spec.min is None else max(INT64_MIN, math.ceil(spec.min))
    high = INT64_MAX if spec.max is None else min(INT64_MAX, math.floor(spec.max))
    return low, high


DATETIMES = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1))
# ISO 8601 variants a date column mixes in practice (a date, a date with a time): each one is a datetime.
ISO_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S.%f")


def valid_values(spec: ColumnSpec) -> st.SearchStrategy[Any]:
    """Non-null values the contract accepts for ``spec``."""
    if spec.dtype == "integer":
        low, high = _integer_range(spec)
        return st.integers(low, high)
    if spec.dtype == "float":
        if spec.min is None and spec.max is None:
            return st.floats(allow_nan=False) | st.sampled_from(HUGE)  # ±inf included: no range to leave
        return st.floats(min_value=spec.min, max_value=spec.max, allow_nan=False)
    if spec.dtype == "string":
        return st.sampled_from(spec.categories) if spec.categories else st.text(max_size=6)
    if spec.dtype == "boolean":
        return st.sampled_from([True, False, "true", "false", "True", "False"])
    timestamps = DATETIMES.map(pd.Timestamp)
    text = st.tuples(DATETIMES, st.sampled_from(ISO_FORMATS)).map(lambda dt_fmt: dt_fmt[0].strftime(dt_fmt[1]))
    return timestamps | text


def column_values(spec: ColumnSpec, n: int) -> st.SearchStrategy[list[Any]]:
    cell = valid_values(spec)
    if spec.nullable:
        cell = st.none() | cell
    return st.lists(cell, min_size=n, max_size=n)


@dataclass(frozen=True)
class Case:
    """A contract and a frame to check against it (from ``valid_cases``: every value valid, the target varying)."""

    contract: Contract
    frame: pd.DataFrame

    def __repr__(self) -> str:  # what hypothesis prints for a falsifying example: enough to rebuild it
        columns = {name: spec.model_dump(exclude_defaults=True) for name, spec in self.contract.columns.items()}
        contract = f"min_rows={self.contract.min_rows}, severity={self.contract.severity}, columns={columns}"
        frame = {name: self.frame[name].tolist() for name in self.frame.columns}
        dtypes = self.frame.dtypes.astype(str).to_dict()
        return f"Case(contract=({contract}), frame={frame}, dtypes={dtypes}, index={self.frame.index.tolist()})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis prints dataclasses field by field
        printer.text(repr(self))


INDEXES = ("range", "shuffled", "offset", "text", "dates")


def _index(kind: str, n: int, draw: st.DrawFn) -> pd.Index:
    if kind == "shuffled":
        return pd.Index(draw(st.permutations(range(n))), dtype="int64")
    if kind == "offset":
        return pd.RangeIndex(100, 100 + n)
    if kind == "text":
        return pd.Index([f"r{i}" for i in range(n)])
    if kind == "dates":
        return pd.date_range("2024-01-01", periods=n, freq="D")
    if kind == "duplicated":
        return pd.Index([i // 2 for i in range(n)], dtype="int64")
    return pd.RangeIndex(n)


@st.composite
def valid_cases(draw: st.DrawFn, min_rows: int = 2) -> Case:
    contract = draw(contracts())
    n = draw(st.integers(max(min_rows, contract.min_rows, 2), 12))
    data: dict[str, list[Any]] = {}
    for name, spec in contract.columns.items():
        if name == TARGET:
            target = st.floats(-1e300, 1e300) if spec.dtype == "float" else st.integers(INT64_MIN, INT64_MAX)
            data[name] = draw(st.lists(target, min_size=n, max_size=n).filter(lambda v: len(set(v)) >= 2))
        elif name == ID:
            data[name] = draw(st.lists(st.integers(INT64_MIN, INT64_MAX), min_size=n, max_size=n, unique=True))
        else:
            data[name] = draw(column_values(spec, n))
    frame = pd.DataFrame(data)
    frame.index = _index(draw(st.sampled_from(INDEXES)), n, draw)
    return Case(contract, frame)


# The minimal failing cases hypothesis found before the fixes (issue 15), run as explicit examples every time.
def _example(columns: dict[str, ColumnSpec], data: dict[str, list[Any]], index: list[Any] | None = None) -> Case:
    frame = pd.DataFrame(data)
    if index is not None:
        frame.index = pd.Index(index)
    return Case(Contract(target=TARGET, columns=columns), frame)


Y_INT = ColumnSpec(dtype="integer", role="target", nullable=False)
MIXED_ISO: dict[str, list[Any]] = {"f0": ["2000-01-01", "2000-01-01 00:00"], "y": [0, 1]}  # a date, a date and time
MIXED_ISO_CASES = [
    _example({"f0": ColumnSpec(dtype="datetime"), "y": Y_INT}, MIXED_ISO),  # row 1 was "not a datetime"
    _example({"f0": ColumnSpec(dtype="datetime"), "y": Y_INT}, MIXED_ISO, ["r0", "r1"]),  # int('r1'): ValueError
    _example({"f0": ColumnSpec(dtype="datetime"), "y": Y_INT}, MIXED_ISO, list(pd.date_range("2024-01-01", periods=2))),
]
TWO_MISSING = _example(  # only f0 was named missing
    {"f0": ColumnSpec(dtype="integer", nullable=False), "y": ColumnSpec(dtype="float", role="target", nullable=False)},
    {},
)
JUNK_FIRST = _example(  # pandas' "Could not infer format" warning became a dtype failure naming no row
    {"f0": ColumnSpec(dtype="datetime"), "y": ColumnSpec(dtype="float", role="target", nullable=False)},
    {"f0": ["abc", "2020-01-01"], "y": [1.0, 2.0]},
)
HUGE_NUMBER_AS_DATE = _example(  # NumPy's "invalid value encountered in cast" did the same
    {"f0": ColumnSpec(dtype="datetime"), "y": ColumnSpec(dtype="float", role="target", nullable=False)},
    {"f0": [1e308, 1.0], "y": [1.0, 2.0]},
)
TEXT_AND_NUMBER_AS_DATE = _example(  # pandas' Pandas4Warning (a format applied to a float) did the same
    {"f0": ColumnSpec(dtype="datetime"), "y": ColumnSpec(dtype="float", role="target", nullable=False)},
    {"f0": ["2020-01-01", math.inf], "y": [1.0, 2.0]},
)
TEXT_INDEX_TARGET = _example(  # the target check's int('r0'): ValueError
    {"f0": ColumnSpec(dtype="float"), "y": ColumnSpec(dtype="float", role="target", nullable=False)},
    {"f0": [1.0, 2.0], "y": [math.inf, 1.0]},
    ["r0", "r1"],
)
ROW_CHECKS = ("dtype", "nullable", "range", "categories", "unique")


# ----------------------------------------------------------------------------------------- helpers


def signature(report: ValidationReport) -> list[tuple[str, str, str, int]]:
    """What a report found, independent of row order: sorted (column, check, severity, count)."""
    return sorted((v.column, v.check, v.severity, v.count) for v in report.violations)


def found(report: ValidationReport, column: str, check: str) -> list[Any]:
    return [v for v in report.violations if v.column == column and v.check == check]


def _row_label(frame: pd.DataFrame, position: int) -> Any:
    """What a violation calls the row at ``position``: its label under an integer index, else its position."""
    if pd.api.types.is_integer_dtype(frame.index) and frame.index.is_unique:
        return int(frame.index[position])
    return position


# --------------------------------------------------------------------------------- valid frames pass


@PROPERTY
@given(valid_cases())
@example(MIXED_ISO_CASES[0])
@example(MIXED_ISO_CASES[1])
@example(MIXED_ISO_CASES[2])
def test_a_frame_within_the_contract_passes_with_no_violation(case: Case) -> None:
    note(repr(case))
    report = validate_frame(case.frame, case.contract)
    assert report.violations == [], report.summary()
    assert report.passed and report.rows == len(case.frame)


@PROPERTY
@given(valid_cases(), st.data())
def test_extra_columns_and_absent_id_or_ignored_columns_are_tolerated(case: Case, data: st.DataObject) -> None:
    note(repr(case))
    n = len(case.frame)
    frame = case.frame.assign(extra_sensor=data.draw(st.lists(st.floats(), min_size=n, max_size=n)))
    optional = [c for c in (ID, NOTE) if c in frame.columns]
    frame = frame.drop(columns=data.draw(st.lists(st.sampled_from(optional), unique=True)) if optional else [])
    report = validate_frame(frame, case.contract)
    assert report.violations == [], report.summary()


# ------------------------------------------------------------------------ one violation is refused


@dataclass(frozen=True)
class Injection:
    column: str
    check: CheckName
    position: int | None  # the row position the violation is at; None for column-level checks


def _outside(spec: ColumnSpec, above: bool) -> float | int:
    """A number the range check must refuse: past the bound as float64 compares it."""
    bound = spec.max if above else spec.min
    assert bound is not None  # callers check
    step = math.nextafter(bound, math.inf if above else -math.inf)  # ±inf beyond ±1.8e308: still outside
    if spec.dtype == "integer" and abs(bound) < 2**52:  # keep it integral so only the range check fires
        return math.floor(bound) + 1 if above else math.ceil(bound) - 1
    return float(step)


def _apply(
    frame: pd.DataFrame, contract: Contract, check: CheckName, draw: Callable[[st.SearchStrategy[Any]], Any]
) -> tuple[pd.DataFrame, Injection]:
    n = len(frame)
    row = draw(st.integers(0, n - 1))
    specs = contract.columns
    frame = frame.copy()

    def put(column: str, value: Any) -> pd.DataFrame:
        frame[column] = frame[column].astype(object)
        frame.iat[row, list(frame.columns).index(column)] = value
        return frame

    if check == "dtype":
        name = draw(st.sampled_from([c for c, s in specs.items() if s.dtype != "string"]))
        number = _number(frame[name].iloc[row])
        fraction = specs[name].dtype == "integer" and number is not None and abs(number) < 2**51
        value = number + 0.5 if number is not None and fraction and draw(st.booleans()) else draw(st.sampled_from(JUNK))
        return put(name, value), Injection(name, "dtype", row)
    if check == "range":
        name = draw(st.sampled_from([c for c, s in specs.items() if s.min is not None or s.max is not None]))
        spec = specs[name]
        above = spec.min is None or (spec.max is not None and draw(st.booleans()))
        return put(name, _outside(spec, above)), Injection(name, "range", row)
    if check == "categories":
        name = draw(st.sampled_from([c for c, s in specs.items() if s.categories]))
        unknown = "unseen:" + "|".join(specs[name].categories or [])  # longer than any category: not one of them
        return put(name, unknown), Injection(name, "categories", row)
    if check == "nullable":
        name = draw(st.sampled_from([c for c, s in specs.items() if not s.nullable]))
        return put(name, draw(st.sampled_from([None, np.nan]))), Injection(name, "nullable", row)
    if check == "missing_column":
        name = draw(st.sampled_from([c for c, s in specs.items() if s.role in ("feature", "target", "time")]))
        return frame.drop(columns=[name]), Injection(name, "missing_column", None)
    if check == "unique":
        other = draw(st.integers(0, n - 1).filter(lambda i: i != row))
        frame = put(ID, frame[ID].iloc[other])
        return frame, Injection(ID, "unique", max(row, other))  # the later copy is the repeat
    if check == "target":
        if specs[TARGET].dtype == "float" and draw(st.booleans()):
            return put(TARGET, draw(st.sampled_from([math.inf, -math.inf]))), Injection(TARGET, "target", row)
        frame[TARGET] = frame[TARGET].iloc[row]
        return frame, Injection(TARGET, "target", None)
    raise AssertionError(check)


def _applicable(contract: Contract) -> list[CheckName]:
    specs = contract.columns
    checks: list[CheckName] = ["dtype", "missing_column", "target"]
    if any(s.min is not None or s.max is not None for s in specs.values()):
        checks.append("range")
    if any(s.categories for s in specs.values()):
        checks.append("categories")
    checks.append("nullable")  # the target is never nullable
    if ID in specs:
        checks.append("unique")
    return checks


@PROPERTY
@given(valid_cases(), st.data())
def test_one_injected_violation_is_refused_or_warned_by_its_severity_naming_column_and_row(
    case: Case, data: st.DataObject
) -> None:
    note(repr(case))
    check = data.draw(st.sampled_from(_applicable(case.contract)), label="check")
    frame, injected = _apply(case.frame, case.contract, check, data.draw)
    report = validate_frame(frame, case.contract)
    severity = case.contract.severity[check]

    hits = found(report, injected.column, check)
    assert len(hits) == 1, (injected, report.summary())
    hit = hits[0]
    assert hit.severity == severity and repr(injected.column) in report.summary()
    if injected.position is not None:
        assert hit.count == 1
        assert [e["row"] for e in hit.examples] == [_row_label(frame, injected.position)], hit
    # Nothing else is blamed: every violation is on the injected column (a bad target value can also fail
    # the target check, an infinite integer the dtype check as well as the range check).
    assert {v.column for v in report.violations} == {injected.column}, report.summary()
    assert report.passed == all(v.severity == "warn" for v in report.violations)
    if severity == "error":
        assert not report.passed


@PROPERTY
@given(valid_cases())
def test_too_few_rows_is_reported_on_the_whole_frame(case: Case) -> None:
    note(repr(case))
    contract = case.contract.model_copy(update={"min_rows": len(case.frame) + 1})
    report = validate_frame(case.frame, contract)
    assert [(v.column, v.check) for v in report.violations] == [("*", "row_count")]
    assert report.passed == (contract.severity["row_count"] == "warn")


# ---------------------------------------------------------------------------- determinism and order


@PROPERTY
@given(valid_cases(), st.data())
def test_checking_is_deterministic_and_independent_of_row_and_column_order(case: Case, data: st.DataObject) -> None:
    note(repr(case))
    check = data.draw(st.sampled_from(_applicable(case.contract)), label="check")
    frame, _ = _apply(case.frame, case.contract, check, data.draw)
    report = validate_frame(frame, case.contract)
    assert validate_frame(frame, case.contract).to_dict() == report.to_dict()

    rows = data.draw(st.permutations(range(len(frame))), label="row order")
    columns = data.draw(st.permutations(list(frame.columns)), label="column order")
    shuffled = frame.iloc[list(rows)][list(columns)]  # each row keeps its label
    again = validate_frame(shuffled, case.contract)
    assert signature(again) == signature(report)
    assert again.passed == report.passed
    if pd.api.types.is_integer_dtype(frame.index) and frame.index.is_unique:
        # The same rows are named, whatever their order (a repeat is the later copy, so "unique" moves).
        for before in report.violations:
            if before.check != "unique" and before.count <= EXAMPLES:
                (after,) = found(again, before.column, before.check)
                assert sorted(map(str, after.examples)) == sorted(map(str, before.examples))


# ------------------------------------------------------------------------------------ hostile frames

HOSTILE_KINDS: tuple[st.SearchStrategy[Any], ...] = (
    st.none(),
    st.sampled_from([math.nan, math.inf, -math.inf, *HUGE, 5e-324, 0.0, -0.0]),
    st.floats(),
    st.integers(INT64_MIN, INT64_MAX),
    st.integers(-(2**80), 2**80),  # past int64: an object column to pandas
    st.booleans(),
    st.sampled_from(JUNK),
    st.text(max_size=4),
    DATETIMES.map(pd.Timestamp),
    st.sampled_from(["2020-01-01", "2020-01-01 10:00", "01/02/2020", "true", "1e5", "inf", "nan", ""]),
)
HOSTILE_CELLS: st.SearchStrategy[Any] = st.one_of(*HOSTILE_KINDS)


@st.composite
def hostile_columns(draw: st.DrawFn, n: int) -> list[Any]:
    mode = draw(st.sampled_from(["mixed", "typed", "null", "nan"]))
    if mode == "null":
        return [None] * n
    if mode == "nan":
        return [math.nan] * n
    cell = HOSTILE_CELLS if mode == "mixed" else draw(st.sampled_from(HOSTILE_KINDS))
    return draw(st.lists(cell, min_size=n, max_size=n))


@st.composite
def hostile_cases(draw: st.DrawFn) -> Case:
    contract = draw(contracts())
    n = draw(st.integers(0, 6))
    names = [c for c in contract.columns if draw(st.integers(0, 5)) > 0]  # now and then a column is left out
    names += draw(st.lists(st.sampled_from(["extra", "f9"]), unique=True))
    frame = pd.DataFrame({name: draw(hostile_columns(n)) for name in names}, index=pd.RangeIndex(n))
    frame.index = _index(draw(st.sampled_from([*INDEXES, "duplicated"])), n, draw)
    return Case(contract, frame)


def _is_null(value: Any) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _number(value: Any) -> float | None:
    """``value`` as the float64 the range check compares, or None when it is not plainly a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer past float64: beyond every finite bound
        return math.copysign(math.inf, value)
    return None if math.isnan(number) else number


def _unparseable(value: Any) -> bool:
    return isinstance(value, str) and value in JUNK


def definite_violations(frame: pd.DataFrame, contract: Contract) -> set[tuple[str, CheckName]]:
    """Violations beyond doubt, found cell by cell without pandas or pandera: an independent oracle.

    It is deliberately conservative (text such as ``"1e5"`` or a boolean in a numeric column is left to the
    checker), so everything it finds the checker must find too.
    """
    out: set[tuple[str, CheckName]] = set()
    if len(frame) < contract.min_rows:
        out.add(("*", "row_count"))
    for name, spec in contract.columns.items():
        if name not in frame.columns:
            if spec.role in ("feature", "target", "time"):
                out.add((name, "missing_column"))
            continue
        cells = frame[name].astype(object).tolist()
        present = [v for v in cells if not _is_null(v)]
        if not spec.nullable and len(present) < len(cells):
            out.add((name, "nullable"))
        for value in present:
            number = _number(value)
            if spec.dtype in ("integer", "float", "datetime") and _unparseable(value):
                out.add((name, "dtype"))
            if spec.dtype == "integer" and number is not None and math.isfinite(number) and number % 1 != 0:
                out.add((name, "dtype"))
            if spec.dtype == "boolean" and (isinstance(value, str) and value.lower() not in ("true", "false")):
                out.add((name, "dtype"))
            if spec.dtype in ("integer", "float") and number is not None:
                if (spec.max is not None and number > spec.max) or (spec.min is not None and number < spec.min):
                    out.add((name, "range"))
            if spec.categories is not None and isinstance(value, str) and value not in spec.categories:
                out.add((name, "categories"))
        if spec.unique:
            keys = [(type(v), v) for v in present if isinstance(v, (int, str)) and not isinstance(v, bool)]
            if len(keys) != len(set(keys)):
                out.add((name, "unique"))
        if name == TARGET:
            numbers = [_number(v) for v in present]
            if not present or any(x is not None and not math.isfinite(x) for x in numbers):
                out.add((name, "target"))
    return out


@settings(PROPERTY, max_examples=100)
@given(hostile_cases())
@example(TWO_MISSING)
@example(JUNK_FIRST)
@example(HUGE_NUMBER_AS_DATE)
@example(TEXT_AND_NUMBER_AS_DATE)
@example(TEXT_INDEX_TARGET)
def test_hostile_frames_never_raise_and_never_pass_with_an_error_present(case: Case) -> None:
    note(repr(case))
    report = validate_frame(case.frame, case.contract)  # never raises: bad data is reported, not thrown
    assert report.rows == len(case.frame)
    assert report.passed == (not report.errors)
    for column, check in definite_violations(case.frame, case.contract):
        hits = found(report, column, check)
        assert hits, f"{check} on {column!r} not reported: {report.summary()}"
        assert hits[0].severity == case.contract.severity[check]
        if hits[0].severity == "error":
            assert not report.passed
    for violation in report.violations:
        assert violation.column == "*" or violation.column in case.contract.columns
        assert all(isinstance(e["row"], int) for e in violation.examples)
        if violation.check in ROW_CHECKS:  # a check of values names the rows that failed it
            assert violation.examples, violation
    assert validate_frame(case.frame, case.contract).to_dict() == report.to_dict()  # deterministic


@PROPERTY
@given(st.integers(0, 1), contracts())
def test_empty_and_single_row_frames_are_reported_not_raised(n: int, contract: Contract) -> None:
    frame = pd.DataFrame({name: [None] * n for name in contract.columns})
    report = validate_frame(frame, contract)
    targets = found(report, TARGET, "target")
    assert len(targets) == 1 and targets[0].severity == contract.severity["target"]  # no values to learn from
    assert ("*", "row_count") in {(v.column, v.check) for v in report.violations} or n >= contract.min_rows


# -------------------------------------------------------------------- inference: a frame fits its contract

TYPED_COLUMNS: dict[str, Callable[[int], st.SearchStrategy[list[Any]]]] = {
    "float": lambda n: st.lists(st.none() | st.floats() | st.sampled_from(HUGE), min_size=n, max_size=n),
    "int": lambda n: st.lists(st.integers(INT64_MIN, INT64_MAX), min_size=n, max_size=n),
    "text": lambda n: st.lists(st.none() | st.text(max_size=3), min_size=n, max_size=n),
    "bool": lambda n: st.lists(st.booleans(), min_size=n, max_size=n),
}


@st.composite
def observed_frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 10))
    kinds = draw(st.lists(st.sampled_from(sorted(TYPED_COLUMNS)), min_size=1, max_size=4))
    data = {f"c{i}": draw(TYPED_COLUMNS[kind](n)) for i, kind in enumerate(kinds)}
    data[TARGET] = draw(st.lists(st.floats(-1e300, 1e300), min_size=n, max_size=n))
    return pd.DataFrame(data)


@PROPERTY
@given(observed_frames())
def test_a_frame_passes_the_contract_inferred_from_it(frame: pd.DataFrame) -> None:
    try:
        contract = infer_contract(frame, TARGET)
    except ContractError:  # documented: every column besides the target was set aside as free text
        assume(False)
        raise
    report = validate_frame(frame, contract)
    # The only thing data can fail against its own contract is being unusable as training data.
    assert {v.check for v in report.violations} <= {"target"}, report.summary()


@PROPERTY
@given(valid_cases(), st.data())
def test_the_proposed_contract_evolution_accepts_the_batch_it_was_proposed_for(case: Case, data: st.DataObject) -> None:
    """``evolution.propose`` widens a contract to a new batch: that batch then passes every column check."""
    note(repr(case))
    frame = case.frame.reset_index(drop=True)
    n = len(frame)
    features = case.contract.features
    for name in data.draw(st.lists(st.sampled_from(features), unique=True), label="changed columns"):
        kind = data.draw(st.sampled_from(sorted(TYPED_COLUMNS)), label=f"{name} becomes")
        frame[name] = pd.Series(data.draw(TYPED_COLUMNS[kind](n), label=name), dtype=object if kind == "text" else None)
    note(f"batch={frame.to_dict(orient='list')}")
    try:
        proposed = propose(case.contract, frame)
    except ContractError:  # documented: no usable feature column is left in the batch
        assume(False)
        raise
    report = validate_frame(frame, proposed)
    assert {v.check for v in report.violations} <= {"target", "row_count"}, report.summary()

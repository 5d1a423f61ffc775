"""Contract evolution: what a new batch would change in the contract, and accepting that change.

The proposal keeps everything a person decided (roles, severities, row bounds) and widens only what
the data showed: new columns, a changed type, nulls, a wider range, new categories.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import pandas as pd

from mloop.data.contract import ColumnSpec, Contract, infer_contract

ChangeKind = Literal["added_column", "removed_column", "dtype", "nullable", "range", "categories", "unique"]


@dataclass(frozen=True)
class Change:
    column: str
    kind: ChangeKind
    old: Any
    new: Any

    def describe(self) -> str:
        if self.kind == "added_column":
            return f"new column ({self.new})"
        if self.kind == "removed_column":
            return "column no longer in the data"
        if self.kind == "categories":
            return f"new categories: {', '.join(map(repr, self.new))}"
        return f"{self.kind}: {self.old!r} → {self.new!r}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "description": self.describe()}


def _merge(old: ColumnSpec, seen: ColumnSpec) -> ColumnSpec:
    merged = old.model_copy()
    if seen.dtype != old.dtype:
        # an integer column that gained decimals is still numeric: float covers both
        numeric = {old.dtype, seen.dtype} <= {"integer", "float"}
        merged.dtype = "float" if numeric else seen.dtype
        if not numeric:
            merged.min = merged.max = merged.categories = None
    merged.nullable = old.nullable or seen.nullable
    if merged.dtype in ("integer", "float") and old.min is not None and seen.min is not None:
        merged.min = min(old.min, seen.min)
    if merged.dtype in ("integer", "float") and old.max is not None and seen.max is not None:
        merged.max = max(old.max, seen.max)
    if merged.dtype == "string" and old.categories is not None:
        merged.categories = sorted(set(old.categories) | set(seen.categories or []))
    if old.unique and not seen.unique:
        merged.unique = None
    return merged


def propose(current: Contract, frame: pd.DataFrame) -> Contract:
    """The contract that would accept ``frame`` while keeping every choice made in ``current``."""
    time = next(iter(current.with_role("time")), None)
    ids = current.with_role("id")
    ignored = [c for c in current.with_role("ignored") if c in frame.columns]
    inferred = infer_contract(frame, current.target, time, ids[0] if ids else None, ignored)
    columns: dict[str, ColumnSpec] = {}
    for name, seen in inferred.columns.items():
        old = current.columns.get(name)
        columns[name] = _merge(old, seen) if old is not None else seen
    return current.model_copy(update={"version": current.version + 1, "columns": columns})


def diff(current: Contract, proposed: Contract) -> list[Change]:
    """Column by column, what ``proposed`` changes relative to ``current``."""
    changes: list[Change] = []
    for name, new in proposed.columns.items():
        old = current.columns.get(name)
        if old is None:
            changes.append(Change(name, "added_column", None, f"{new.dtype}, {new.role}"))
            continue
        if new.dtype != old.dtype:
            changes.append(Change(name, "dtype", old.dtype, new.dtype))
        if new.nullable != old.nullable:
            changes.append(Change(name, "nullable", old.nullable, new.nullable))
        if (new.min, new.max) != (old.min, old.max) and new.dtype in ("integer", "float"):
            changes.append(Change(name, "range", [old.min, old.max], [new.min, new.max]))
        added = sorted(set(new.categories or []) - set(old.categories or []))
        if added and old.categories is not None:
            changes.append(Change(name, "categories", None, added))
        if bool(new.unique) != bool(old.unique):
            changes.append(Change(name, "unique", bool(old.unique), bool(new.unique)))
    changes += [
        Change(n, "removed_column", old.dtype, None) for n, old in current.columns.items() if n not in proposed.columns
    ]
    return changes

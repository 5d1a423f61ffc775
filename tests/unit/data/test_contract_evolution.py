"""New checks (uniqueness, target sanity, per-column counts) and contract evolution (diff, update)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mloop.data.contract import Contract, infer_contract, validate_frame
from mloop.data.evolution import diff, propose


@pytest.fixture(scope="module")
def frame(ames: pd.DataFrame) -> pd.DataFrame:
    return ames.iloc[:600].reset_index(drop=True).assign(sale_id=np.arange(600))


@pytest.fixture(scope="module")
def contract(frame: pd.DataFrame) -> Contract:
    return infer_contract(frame, "Sale_Price", time_column="Year_Sold", id_column="sale_id")


def checks(frame: pd.DataFrame, contract: Contract) -> dict[tuple[str, str], int]:
    return {(v.column, v.check): v.count for v in validate_frame(frame, contract).violations}


def test_an_id_column_is_inferred_unique_and_duplicates_fail(frame: pd.DataFrame, contract: Contract) -> None:
    assert contract.columns["sale_id"].unique is True
    assert contract.columns["Lot_Area"].unique is None
    assert checks(frame, contract) == {}
    doubled = pd.concat([frame, frame.iloc[:7]], ignore_index=True)
    report = validate_frame(doubled, contract)
    assert not report.passed
    (violation,) = [v for v in report.violations if v.check == "unique"]
    assert violation.column == "sale_id" and violation.count == 7 and violation.severity == "error"
    assert violation.examples[0]["row"] == 600


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda f: f.assign(Sale_Price=np.nan), "no values"),
        (lambda f: f.assign(Sale_Price=100000), "single value"),
        (lambda f: f.assign(Sale_Price=f["Sale_Price"].astype(float).where(f.index != 3, np.inf)), "not finite"),
    ],
)
def test_target_sanity(frame: pd.DataFrame, contract: Contract, change, expected: str) -> None:  # type: ignore[no-untyped-def]
    report = validate_frame(change(frame), contract)
    targets = [v for v in report.violations if v.check == "target"]
    assert len(targets) == 1 and expected in targets[0].message and targets[0].severity == "error"
    assert not report.passed


def test_counts_per_column_for_unseen_categories_and_out_of_range(frame: pd.DataFrame, contract: Contract) -> None:
    batch = frame.copy()
    batch.loc[:4, "Neighborhood"] = "Atlantis"
    batch.loc[10:12, "Lot_Area"] = 10**9
    report = validate_frame(batch, contract)
    counts = report.to_dict()["counts"]
    assert counts["Neighborhood"] == {"categories": 5}
    assert counts["Lot_Area"] == {"range": 3}
    assert report.passed  # both are warnings by default


def test_diff_and_update_accept_a_changed_batch(frame: pd.DataFrame, contract: Contract) -> None:
    batch = frame.drop(columns=["Alley"]).copy()
    batch["Neighborhood"] = batch["Neighborhood"].where(batch.index > 2, "Atlantis")
    batch["Lot_Area"] = batch["Lot_Area"].astype(float) + 0.5  # integer → float
    batch.loc[0, "Gr_Liv_Area"] = 10**6
    batch["Pool_Sqft"] = 1.0
    proposed = propose(contract, batch)
    changes = {(c.column, c.kind): c for c in diff(contract, proposed)}
    assert changes[("Neighborhood", "categories")].new == ["Atlantis"]
    assert changes[("Lot_Area", "dtype")].new == "float"
    assert changes[("Gr_Liv_Area", "range")].new[1] >= 10**6
    assert ("Alley", "removed_column") in changes and ("Pool_Sqft", "added_column") in changes
    assert proposed.version == contract.version + 1
    assert proposed.columns["sale_id"].role == "id" and proposed.columns["Year_Sold"].role == "time"
    assert proposed.severity == contract.severity
    assert validate_frame(batch, proposed).violations == []
    # the old data still passes: the update only widens
    assert validate_frame(frame.drop(columns=["Alley"]).assign(Pool_Sqft=1.0), proposed).passed
    assert diff(proposed, propose(proposed, batch)) == []

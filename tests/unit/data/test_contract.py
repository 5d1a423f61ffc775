from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mloop.data.contract import (
    ColumnSpec,
    Contract,
    coerce_frame,
    infer_contract,
    load_contract,
    save_contract,
    validate_frame,
)
from mloop.errors import ContractError

NUMERIC = ("integer", "float")


@pytest.fixture(scope="module")
def frame(ames: pd.DataFrame) -> pd.DataFrame:
    return ames.iloc[:600]


@pytest.fixture(scope="module")
def contract(frame: pd.DataFrame) -> Contract:
    return infer_contract(frame, "Sale_Price", time_column="Year_Sold")


def only(report_violations: list, column: str, check: str):  # type: ignore[no-untyped-def]
    found = [v for v in report_violations if v.column == column and v.check == check]
    assert len(found) == 1, f"expected one {check} violation on {column}, got {report_violations}"
    return found[0]


# ------------------------------------------------------------------------------------- inference


def test_roles_on_ames(contract: Contract, frame: pd.DataFrame) -> None:
    assert contract.target == "Sale_Price"
    assert contract.columns["Sale_Price"].role == "target"
    assert contract.columns["Year_Sold"].role == "time"
    assert contract.with_role("target") == ["Sale_Price"]
    assert contract.with_role("time") == ["Year_Sold"]
    assert set(contract.features) == set(frame.columns) - {"Sale_Price", "Year_Sold"}
    assert list(contract.columns) == list(frame.columns)
    assert contract.min_rows == 60  # a tenth of the rows it was inferred from


def test_dtypes_and_feature_kinds_on_ames(contract: Contract, frame: pd.DataFrame) -> None:
    assert contract.columns["Lot_Area"].dtype == "integer"
    assert contract.columns["Longitude"].dtype == "float"
    assert contract.columns["Neighborhood"].dtype == "string"
    text_columns = {c for c in contract.features if frame[c].dtype.kind not in "iufb"}
    assert set(contract.categorical_features) == text_columns
    assert set(contract.numeric_features) == set(contract.features) - text_columns


def test_categories_are_the_observed_values(contract: Contract, frame: pd.DataFrame) -> None:
    assert contract.columns["Neighborhood"].categories == sorted(frame["Neighborhood"].unique())
    # missing values are not a category
    assert contract.columns["Mas_Vnr_Type"].categories == sorted(frame["Mas_Vnr_Type"].dropna().unique())
    assert contract.columns["Lot_Area"].categories is None


def test_nullability_is_observed(contract: Contract) -> None:
    assert contract.columns["Mas_Vnr_Type"].nullable is True
    assert contract.columns["Sale_Price"].nullable is False
    assert contract.columns["Neighborhood"].nullable is False


def test_bounds_widen_the_observed_range_and_stay_non_negative(contract: Contract, frame: pd.DataFrame) -> None:
    checked = 0
    for name, spec in contract.columns.items():
        if spec.dtype not in NUMERIC or spec.role == "time":
            continue
        low, high = float(frame[name].min()), float(frame[name].max())
        assert spec.min is not None and spec.max is not None, name
        assert spec.min <= low and spec.max >= high, name
        if low >= 0:
            assert spec.min >= 0, f"{name} is never negative but the contract allows {spec.min}"
        checked += 1
    assert checked > 30
    price = contract.columns["Sale_Price"]
    assert price.min == 0.0  # widened below the cheapest sale, but not below zero
    assert price.max is not None and price.max > frame["Sale_Price"].max()
    longitude = contract.columns["Longitude"]  # negative values are widened, not clamped
    assert longitude.min is not None and longitude.min < frame["Longitude"].min() < 0


def test_time_and_id_columns_have_no_bounds(frame: pd.DataFrame) -> None:
    with_id = frame.assign(Sale_Id=np.arange(len(frame)))
    contract = infer_contract(with_id, "Sale_Price", time_column="Year_Sold", id_column="Sale_Id")
    for name in ("Year_Sold", "Sale_Id"):
        spec = contract.columns[name]
        assert (spec.min, spec.max) == (None, None), name
    assert contract.columns["Sale_Id"].role == "id"
    assert "Sale_Id" not in contract.features


def test_excluded_datetime_and_free_text_columns_are_ignored(frame: pd.DataFrame) -> None:
    data = frame.assign(
        sold_at=pd.to_datetime("2008-01-01") + pd.to_timedelta(np.arange(len(frame)), unit="D"),
        listing_text=[f"nice house number {i}" for i in range(len(frame))],
    )
    contract = infer_contract(data, "Sale_Price", exclude=["Longitude", "Latitude"])
    roles = {name: contract.columns[name].role for name in ("Longitude", "Latitude", "sold_at", "listing_text")}
    assert roles == dict.fromkeys(roles, "ignored")
    assert contract.columns["sold_at"].dtype == "datetime"
    assert contract.columns["listing_text"].categories is None
    assert not {"Longitude", "sold_at", "listing_text"} & set(contract.features)


def test_small_dtype_cases() -> None:
    data = pd.DataFrame(
        {
            "flag": [True, False, True, False],
            "count_with_gaps": [1.0, np.nan, 3.0, 4.0],
            "ratio": [0.5, 1.5, np.nan, 2.0],
            "y": [1.0, 2.0, 3.0, 4.0],
        }
    )
    contract = infer_contract(data, "y")
    assert contract.columns["flag"].dtype == "boolean"
    assert contract.columns["count_with_gaps"].dtype == "integer"
    assert contract.columns["count_with_gaps"].nullable is True
    assert contract.columns["ratio"].dtype == "float"
    assert contract.numeric_features == ["flag", "count_with_gaps", "ratio"]


def test_missing_target_lists_the_columns(frame: pd.DataFrame) -> None:
    with pytest.raises(ContractError) as info:
        infer_contract(frame, "SalePrice")
    assert "'SalePrice'" in info.value.message
    assert "Sale_Price" in info.value.message and "Lot_Area" in info.value.message


def test_target_alone_is_not_enough() -> None:
    with pytest.raises(ContractError, match="no usable feature"):
        infer_contract(pd.DataFrame({"y": [1, 2, 3], "when": pd.to_datetime(["2020", "2021", "2022"])}), "y")


def test_contract_hash_is_stable_and_follows_edits(contract: Contract) -> None:
    assert contract.hash() == contract.model_copy(deep=True).hash()
    edited = contract.model_copy(deep=True)
    edited.columns["Lot_Area"].max = 1e9
    assert edited.hash() != contract.hash()


# ---------------------------------------------------------------------------------------- storage


def test_yaml_round_trip(tmp_path: Path, contract: Contract) -> None:
    path = tmp_path / "contract.yaml"
    save_contract(contract, path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# mloop data contract")
    data = yaml.safe_load(text)
    assert "min" not in data["columns"]["Neighborhood"]  # no null noise for a hand editor
    assert data["columns"]["Year_Sold"] == {"dtype": "integer", "role": "time", "nullable": False}
    loaded = load_contract(path)
    assert loaded == contract
    assert loaded.hash() == contract.hash()


def test_hand_edits_are_honoured(tmp_path: Path, contract: Contract, frame: pd.DataFrame) -> None:
    path = tmp_path / "contract.yaml"
    save_contract(contract, path)
    data = yaml.safe_load(path.read_text())
    data["columns"]["Neighborhood"]["categories"].remove("Old_Town")
    data["severity"]["categories"] = "error"
    path.write_text(yaml.safe_dump(data))
    report = validate_frame(frame, load_contract(path))
    violation = only(report.violations, "Neighborhood", "categories")
    assert violation.severity == "error"
    assert violation.count == int((frame["Neighborhood"] == "Old_Town").sum()) > 0
    assert not report.passed


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda d: d["columns"]["Lot_Area"].update(dtype="number"), "columns.Lot_Area.dtype"),
        (lambda d: d["columns"]["Lot_Area"].update(nulable=True), "columns.Lot_Area.nulable"),
        (lambda d: d["columns"]["Lot_Area"].update(role="label"), "columns.Lot_Area.role"),
        (lambda d: d["severity"].update(range="fatal"), "severity.range"),
        (lambda d: d.pop("target"), "target"),
        (lambda d: d.update(min_rows=-1), "min_rows"),
    ],
)
def test_invalid_hand_edit_names_the_field(tmp_path: Path, contract: Contract, edit, named: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "contract.yaml"
    save_contract(contract, path)
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ContractError) as info:
        load_contract(path)
    assert str(path) in info.value.message
    assert named in info.value.message


def test_broken_yaml_and_missing_contract(tmp_path: Path) -> None:
    path = tmp_path / "contract.yaml"
    with pytest.raises(ContractError, match="mloop ingest"):
        load_contract(path)
    path.write_text("columns: {Lot_Area: [dtype: integer\n")
    with pytest.raises(ContractError, match="not valid YAML") as info:
        load_contract(path)
    assert str(path) in info.value.message


# ------------------------------------------------------------------------------------- validation


def test_the_data_a_contract_was_inferred_from_passes(contract: Contract, frame: pd.DataFrame) -> None:
    report = validate_frame(frame, contract)
    assert report.passed
    assert report.violations == []
    assert report.rows == 600
    assert report.contract_hash == contract.hash()


def test_numbers_turned_text_in_some_rows_is_an_error(tmp_path: Path, contract: Contract, frame: pd.DataFrame) -> None:
    data = frame.astype({"Lot_Area": object})
    data.loc[[3, 10, 20, 21], "Lot_Area"] = ["big", "unknown", "8,450", "huge"]
    path = tmp_path / "batch.csv"
    data.to_csv(path, index=False)  # the way it arrives: a CSV whose column now reads as text
    report = validate_frame(pd.read_csv(path), contract)
    assert not report.passed
    violation = only(report.errors, "Lot_Area", "dtype")
    assert violation.count == 4
    assert [e["row"] for e in violation.examples] == [3, 10, 20, 21]
    assert [e["value"] for e in violation.examples] == ["big", "unknown", "8,450", "huge"]
    assert "'Lot_Area'" in report.summary()
    assert "4 values that are not integer" in report.summary()
    assert "row 3: 'big'" in report.summary()
    assert len(report.errors) == 1  # the other 596 rows of the column are fine and nothing else is flagged


def test_examples_are_capped(contract: Contract, frame: pd.DataFrame) -> None:
    data = frame.astype({"Gr_Liv_Area": object})
    data.loc[list(range(0, 100, 2)), "Gr_Liv_Area"] = "unknown"
    violation = only(validate_frame(data, contract).errors, "Gr_Liv_Area", "dtype")
    assert violation.count == 50
    assert len(violation.examples) == 5


def test_fractions_in_an_integer_column(contract: Contract, frame: pd.DataFrame) -> None:
    data = frame.astype({"Full_Bath": float})
    data.loc[7, "Full_Bath"] = 1.5
    violation = only(validate_frame(data, contract).errors, "Full_Bath", "dtype")
    assert (violation.count, violation.examples[0]["row"]) == (1, 7)


def test_missing_column_is_an_error(contract: Contract, frame: pd.DataFrame) -> None:
    report = validate_frame(frame.drop(columns=["Street"]), contract)
    assert not report.passed
    violation = only(report.errors, "Street", "missing_column")
    assert "missing" in violation.message


def test_null_in_a_non_nullable_column_is_an_error(contract: Contract, frame: pd.DataFrame) -> None:
    data = frame.copy()
    data.loc[[8, 9], "Neighborhood"] = None
    data.loc[11, "Gr_Liv_Area"] = np.nan
    report = validate_frame(data, contract)
    assert not report.passed
    assert only(report.errors, "Neighborhood", "nullable").count == 2
    gr = only(report.errors, "Gr_Liv_Area", "nullable")
    assert gr.count == 1
    assert gr.examples == [{"row": 11, "value": None}]


def test_null_in_a_nullable_column_passes(contract: Contract, frame: pd.DataFrame) -> None:
    data = frame.copy()
    data.loc[:50, "Mas_Vnr_Type"] = None
    assert validate_frame(data, contract).passed


def test_unseen_categories_and_out_of_range_values_are_warnings(contract: Contract, frame: pd.DataFrame) -> None:
    data = frame.copy()
    data.loc[[5, 6, 7], "Neighborhood"] = "Atlantis"
    data.loc[12, "Gr_Liv_Area"] = 1_000_000
    data.loc[13, "Lot_Area"] = -5
    report = validate_frame(data, contract)
    assert report.passed
    assert report.errors == []
    category = only(report.warnings, "Neighborhood", "categories")
    assert category.count == 3
    assert category.examples[0] == {"row": 5, "value": "Atlantis"}
    assert only(report.warnings, "Gr_Liv_Area", "range").count == 1
    low = only(report.warnings, "Lot_Area", "range")
    assert low.examples == [{"row": 13, "value": "-5"}]
    assert "[0.0, " in low.message
    assert len(report.warnings) == 3
    assert report.to_dict()["passed"] is True
    assert len(report.to_dict()["violations"]) == 3


def test_too_few_rows_is_an_error(contract: Contract, frame: pd.DataFrame) -> None:
    report = validate_frame(frame.iloc[:10], contract)
    assert not report.passed
    violation = only(report.errors, "*", "row_count")
    assert "60" in violation.message


def test_extra_columns_are_tolerated(contract: Contract, frame: pd.DataFrame) -> None:
    assert validate_frame(frame.assign(new_sensor=1.0), contract).passed


# -------------------------------------------------------------------------------------- coercion


@pytest.fixture(scope="module")
def small_contract() -> Contract:
    return Contract(
        target="y",
        columns={
            "area": ColumnSpec(dtype="float"),
            "rooms": ColumnSpec(dtype="integer"),
            "street": ColumnSpec(dtype="string"),
            "garage": ColumnSpec(dtype="boolean"),
            "y": ColumnSpec(dtype="float", role="target"),
            "note": ColumnSpec(dtype="string", role="ignored"),
            "later": ColumnSpec(dtype="string"),
        },
    )


def test_coerce_types_numbers_and_booleans_as_float_with_nan(small_contract: Contract) -> None:
    frame = pd.DataFrame(
        {
            "area": [1.5, None, np.nan, "2", "wide"],
            "rooms": [1, None, 3, "4", 5],
            "garage": [True, "false", None, "True", False],
        }
    )
    out = coerce_frame(frame, small_contract, ["area", "rooms", "garage"])
    assert out.dtypes.tolist() == [np.dtype("float64")] * 3
    assert out["area"].isna().tolist() == [False, True, True, False, True]  # unparseable text is missing too
    assert out["area"][[0, 3]].tolist() == [1.5, 2.0]
    assert out["rooms"].isna().tolist() == [False, True, False, False, False]
    assert out["garage"][[0, 1, 3, 4]].tolist() == [1.0, 0.0, 1.0, 0.0] and np.isnan(out["garage"][2])


def test_coerce_turns_none_and_nan_into_nan_for_text_and_numbers(small_contract: Contract) -> None:
    frame = pd.DataFrame(
        {
            "area": [1.5, None, np.nan, "2"],
            "rooms": [1, None, 3, "4"],
            "street": ["Pave", None, np.nan, 5],
            "garage": [True, "false", None, "True"],
            "y": [1.0, 2.0, 3.0, 4.0],
            "note": ["a", "b", "c", "d"],
        }
    )
    out = coerce_frame(frame, small_contract)
    assert list(out.columns) == ["area", "rooms", "street", "garage", "later"]  # features only, in order
    assert out["area"].dtype == "float64" and out["rooms"].dtype == "float64"
    assert out["area"].tolist()[0] == 1.5 and out["area"].tolist()[3] == 2.0
    assert out["area"].isna().tolist() == [False, True, True, False]
    assert out["rooms"].isna().tolist() == [False, True, False, False]
    assert out["garage"].tolist()[:2] == [1.0, 0.0] and np.isnan(out["garage"][2])
    assert out["street"].dtype == object
    street = out["street"].tolist()
    assert street[0] == "Pave" and street[3] == "5"
    assert all(isinstance(v, float) and np.isnan(v) for v in street[1:3]), street
    # a column the frame lacks arrives as missing, not as the text "nan"
    assert out["later"].isna().all()


def test_coerce_treats_pandas_missing_markers_alike(small_contract: Contract) -> None:
    frame = pd.DataFrame(
        {
            "street": pd.array(["Pave", pd.NA, None, "Grvl"], dtype="string"),
            "rooms": pd.array([1, pd.NA, 3, 4], dtype="Int64"),
        }
    )
    out = coerce_frame(frame, small_contract, ["street", "rooms"])
    assert out["street"].isna().tolist() == [False, True, True, False]
    assert out["street"].iloc[0] == "Pave"
    assert out["rooms"].isna().tolist() == [False, True, False, False]


def test_coerce_keeps_the_index(small_contract: Contract) -> None:
    frame = pd.DataFrame({"area": [1.0, 2.0], "street": ["a", "b"]}, index=[10, 20])
    out = coerce_frame(frame, small_contract, ["area", "street"])
    assert out.index.tolist() == [10, 20]

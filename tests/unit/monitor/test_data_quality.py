"""Data quality of a window of logged features: null rates, unseen categories, out-of-contract values, coercions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mloop.config import DataQualityConfig
from mloop.data.contract import ColumnSpec, Contract, coerce_frame
from mloop.data.profile import Profile, build_profile
from mloop.monitor.data_quality import DataQualityReport, FeatureQuality, data_quality
from mloop.monitor.report import data_quality_section

FEATURES = ["area", "zone", "pool", "rooms"]


@pytest.fixture
def contract() -> Contract:
    return Contract(
        target="price",
        columns={
            "area": ColumnSpec(dtype="float", min=0.0, max=500.0),
            "zone": ColumnSpec(dtype="string", categories=["a", "b", "c"]),
            "pool": ColumnSpec(dtype="boolean"),
            "rooms": ColumnSpec(dtype="integer", nullable=False, min=1.0, max=10.0),
            "price": ColumnSpec(dtype="float", role="target"),
        },
    )


@pytest.fixture
def profile(contract: Contract) -> Profile:
    """Training saw zones a and b only (c is in the contract, never in training), and area missing in 10% of rows."""
    rng = np.random.default_rng(0)
    n = 1000
    train = pd.DataFrame(
        {
            "area": np.where(rng.random(n) < 0.1, np.nan, rng.uniform(50, 400, n)),
            "zone": rng.choice(["a", "b"], n),
            "pool": rng.choice([True, False], n),
            "rooms": rng.integers(1, 10, n),
        }
    )
    X = coerce_frame(train, contract, FEATURES)
    return build_profile(X, numeric=["area", "pool", "rooms"], categorical=["zone"])


def clean(n: int = 100) -> pd.DataFrame:
    """Logged rows as the prediction log reads them back: every value of the contract's type, in range."""
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "area": rng.uniform(50, 400, n),
            "zone": pd.Series(rng.choice(["a", "b"], n), dtype=object),
            "pool": rng.choice([True, False], n),
            "rooms": rng.integers(1, 10, n),
        }
    )


def figures(report: DataQualityReport, feature: str) -> FeatureQuality:
    found = report.get(feature)
    assert found is not None, feature
    return found


def test_clean_traffic_has_no_issues(contract: Contract, profile: Profile) -> None:
    report = data_quality(clean(), contract, profile)
    assert report.n_rows == 100 and [f.feature for f in report.features] == list(profile.columns)  # model order
    assert report.features_with_issues == [] and report.n_issues == 0
    for f in report.features:
        assert (f.nulls, f.unseen, f.out_of_contract, f.coerced, f.coercion_failures) == (0, 0, 0, 0, 0), f
    area = figures(report, "area")
    assert area.null_rate == 0.0 and area.reference_null_rate == pytest.approx(0.1, abs=0.03)


def test_null_rates_against_the_reference(contract: Contract, profile: Profile) -> None:
    rows = clean()
    rows.loc[:14, "area"] = np.nan  # 15%: within 0.1 of the reference's ~10%
    rows.loc[:29, "zone"] = np.nan  # 30% against 0% in training
    report = data_quality(rows, contract, profile)
    area, zone = figures(report, "area"), figures(report, "zone")
    assert (area.nulls, area.null_rate) == (15, 0.15) and area.issues == ()
    assert (zone.nulls, zone.null_rate, zone.reference_null_rate) == (30, 0.3, 0.0)
    assert zone.null_rate_increase == pytest.approx(0.3) and zone.issues == ("nulls",)
    assert report.features_with_issues == ["zone"] and report.issue_counts() == {"nulls": 1}
    # A looser threshold lets the same window through.
    loose = data_quality(rows, contract, profile, DataQualityConfig(max_null_rate_increase=0.5))
    assert loose.n_issues == 0


def test_a_null_in_a_column_the_contract_says_is_never_null_is_an_issue(contract: Contract, profile: Profile) -> None:
    rows = clean()
    rows["rooms"] = rows["rooms"].astype("float64")
    rows.loc[0, "rooms"] = np.nan  # 1%: far below the null-rate threshold, but the contract forbids any
    rooms = figures(data_quality(rows, contract, profile), "rooms")
    assert rooms.nulls == 1 and rooms.issues == ("nulls",)


def test_unseen_categories_are_counted_and_listed_most_frequent_first(contract: Contract, profile: Profile) -> None:
    rows = clean()
    rows.loc[:9, "zone"] = "c"  # in the contract, never in training: unseen, not out of contract
    rows.loc[10:14, "zone"] = "x"  # in neither
    rows.loc[15:16, "zone"] = "y"
    zone = figures(data_quality(rows, contract, profile), "zone")
    assert zone.unseen == 17 and zone.unseen_values == ("c", "x", "y") and zone.n_unseen_values == 3
    assert zone.out_of_contract == 7
    assert zone.issues == ("unseen_categories", "out_of_contract")


def test_the_list_of_unseen_categories_is_bounded(contract: Contract, profile: Profile) -> None:
    rows = clean()
    rows.loc[:49, "zone"] = [f"new{i:02d}" for i in range(50)]
    zone = figures(data_quality(rows, contract, profile, DataQualityConfig(max_examples=3)), "zone")
    assert zone.unseen == 50 and zone.n_unseen_values == 50
    assert zone.unseen_values == ("new00", "new01", "new02")  # ties in name order


def test_values_outside_the_contracts_range_are_out_of_contract(contract: Contract, profile: Profile) -> None:
    rows = clean()
    rows.loc[:5, "area"] = [-1.0, 501.0, np.inf, -5.0, 600.0, 1e9]  # below, above, infinitely above the range
    rows.loc[6, "area"] = 500.0  # the bound itself is in range
    rows["rooms"] = rows["rooms"].astype("float64")
    rows.loc[0, "rooms"] = 2.5  # a fraction in an integer column
    rows.loc[1, "rooms"] = 11.0
    report = data_quality(rows, contract, profile)
    assert figures(report, "area").out_of_contract == 6
    assert figures(report, "rooms").out_of_contract == 2
    assert figures(report, "area").issues == ("out_of_contract",)  # 6% against monitor's 5%
    assert figures(report, "rooms").issues == ()
    relaxed = data_quality(rows, contract, profile, DataQualityConfig(max_out_of_contract_share=0.1))
    assert relaxed.n_issues == 0


def test_type_coercions_converted_and_failed(contract: Contract, profile: Profile) -> None:
    rows = clean(10).astype(object)
    rows.loc[0, "area"] = "120.5"  # text of a number: converted
    rows.loc[1, "area"] = "n/a"  # unreadable: the model sees a missing value
    rows.loc[2, "area"] = True  # a boolean for a number: converted (1.0)
    rows.loc[0, "pool"] = "true"  # text of a boolean: converted
    rows.loc[1, "pool"] = 1  # a number for a boolean: converted
    rows.loc[2, "pool"] = "maybe"  # unreadable
    rows.loc[0, "zone"] = 7  # a number for text: converted to "7", an unseen category
    report = data_quality(rows, contract, profile)
    area, pool, zone = figures(report, "area"), figures(report, "pool"), figures(report, "zone")
    assert (area.coerced, area.coercion_failures, area.nulls) == (2, 1, 0)
    assert (pool.coerced, pool.coercion_failures) == (2, 1)
    assert (zone.coerced, zone.coercion_failures, zone.unseen_values) == (1, 0, ("7",))
    assert figures(report, "rooms").coerced == 0
    assert "coercion_failures" in area.issues and "coerced" in area.issues  # any failure; 20% converted > 5%
    assert set(report.features_with_issues) == {"area", "pool", "zone"}


def test_an_empty_window(contract: Contract, profile: Profile) -> None:
    report = data_quality(clean(0), contract, profile)
    assert report.n_rows == 0 and len(report.features) == len(FEATURES) and report.n_issues == 0
    assert all(f.null_rate == 0.0 and f.unseen_values == () for f in report.features)


def test_every_value_missing_and_a_column_never_sent(contract: Contract, profile: Profile) -> None:
    rows = clean(20).drop(columns=["pool"])  # a field left out of every request
    rows["area"] = np.nan
    rows["zone"] = pd.Series([None] * 20, dtype=object)
    report = data_quality(rows, contract, profile)
    for name in ("area", "zone", "pool"):
        f = figures(report, name)
        assert (f.nulls, f.null_rate) == (20, 1.0), name
        assert (f.unseen, f.out_of_contract, f.coerced, f.coercion_failures) == (0, 0, 0, 0), name
        assert f.issues == ("nulls",), name
    assert sorted(report.features_with_issues) == ["area", "pool", "zone"]


def test_the_report_is_json_ready(contract: Contract, profile: Profile) -> None:
    rows = clean()
    rows.loc[:9, "zone"] = "x"
    data = json.loads(json.dumps(data_quality(rows, contract, profile).to_dict()))
    assert data["n_rows"] == 100 and data["n_features"] == 4 and data["n_issues"] == 1
    assert data["features_with_issues"] == ["zone"]
    assert data["issue_counts"] == {"unseen_categories": 1, "out_of_contract": 1}
    assert data["thresholds"]["max_unseen_share"] == DataQualityConfig().max_unseen_share
    (zone,) = [f for f in data["features"] if f["feature"] == "zone"]
    assert zone["unseen"] == 10 and zone["unseen_values"] == ["x"]
    assert zone["issues"] == ["unseen_categories", "out_of_contract"]


def test_without_a_profile_the_contracts_features_are_checked(contract: Contract) -> None:
    report = data_quality(clean(), contract)
    assert [f.feature for f in report.features] == FEATURES
    assert all(f.reference_null_rate is None and f.unseen == 0 for f in report.features)


def test_the_reports_section_lists_the_features_with_issues_first(contract: Contract, profile: Profile) -> None:
    rows = clean()
    rows.loc[:9, "zone"] = "<b>x</b>"  # escaped in the page
    rows.loc[0, "area"] = 9999.0  # 1 of 100 out of contract: listed, not past the 5% threshold
    html = data_quality_section({"data_quality": data_quality(rows, contract, profile).to_dict()})
    assert "1 of 4 features have data-quality issues in the latest window (100 rows): zone." in html
    assert html.index("<td>zone</td>") < html.index("<td>area</td>")
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert "<span class='drift'>10</span>" in html  # the unseen rows of zone, past their threshold
    assert "<td>rooms</td>" not in html  # nothing to report
    assert "No data-quality figures yet" in data_quality_section({"n_rows": 3})
    assert "Every feature was sent complete" in data_quality_section(
        {"data_quality": data_quality(clean(), contract, profile).to_dict()}
    )

"""Data quality of live traffic through `mloop monitor` on a real project: bad traffic sent to a real server and
written by a lax producer straight into the prediction log, its figures in latest.json, the report and /metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.helpers.cli import mloop_json
from tests.helpers.projects import early_sales, train_champion, write_project
from tests.helpers.servers import Server, run_server, wait_for
from tests.helpers.traffic import as_records, send_with_labels

from mloop.data.contract import load_contract
from mloop.data.predictions import PredictionRow, utc_now
from mloop.project import Project
from mloop.registry.versions import CHAMPION, alias_version

pytestmark = pytest.mark.integration

TRAIN_ROWS = 800
SERVED = 150  # rows sent to the server
INJECTED = 50  # rows a lax producer wrote into the log itself: the window is the last 200 (monitor.window_size)
UNSEEN = 20  # served rows in a neighbourhood that does not exist
HUGE = 20  # served rows with a living area far outside the contract's range
UNREADABLE = 5  # injected rows with Lot_Area "n/a"
AS_TEXT = 15  # injected rows with Lot_Area sent as text ("8450")


@dataclass(frozen=True)
class Checked:
    project: Project
    server: Server
    latest: dict[str, Any]  # what `mloop monitor --json` printed


def bad_traffic(ames: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Later sales: the served ones with unseen neighbourhoods and huge living areas, and the records a lax
    producer logged itself: Lot_Frontage missing, Lot_Area unreadable or sent as text."""
    later = ames[ames["Year_Sold"] >= 2008].head(SERVED + INJECTED).reset_index(drop=True)
    served = later.head(SERVED).copy()
    served.loc[: UNSEEN - 1, "Neighborhood"] = "Atlantis"
    served.loc[UNSEEN : UNSEEN + HUGE - 1, "Gr_Liv_Area"] = 100_000
    return served, as_records(later.iloc[SERVED:], served.columns.drop("Sale_Price"))


def lax(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, record in enumerate(records):
        record = {**record, "Lot_Frontage": None}
        if i < UNREADABLE:
            record["Lot_Area"] = "n/a"
        elif i < UNREADABLE + AS_TEXT:
            record["Lot_Area"] = str(record["Lot_Area"])
        out.append(record)
    return out


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory, ames: pd.DataFrame) -> Iterator[Checked]:
    root = tmp_path_factory.mktemp("data-quality")
    project = train_champion(write_project(root / "ames", early_sales(ames, TRAIN_ROWS), "ames-data-quality"))
    features = load_contract(project.contract_path).features
    served, injected = bad_traffic(ames)
    injected = lax([{k: v for k, v in r.items() if k in features} for r in injected])
    champion = alias_version(project, CHAMPION)
    assert champion is not None
    with run_server(project, root) as server, server.client() as client:
        send_with_labels(client, served, features, served["Sale_Price"])
        store = project.prediction_store()
        wait_for(lambda: store.count(model_version=champion.version) >= SERVED or None, "the served rows logged")
        rows = [
            PredictionRow(f"lax-{i}", utc_now(), champion.version, record, 180_000.0, 1.0)
            for i, record in enumerate(injected)
        ]
        assert store.write_many(rows) == INJECTED
        latest = mloop_json("monitor", "--json", project=project)
        yield Checked(project, server, latest)


def feature(data: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [f for f in data["features"] if f["feature"] == name]
    return found


def test_the_window_reports_every_kind_of_bad_value(checked: Checked) -> None:
    quality = checked.latest["data_quality"]
    assert quality["n_rows"] == SERVED + INJECTED == checked.latest["n_rows"]
    assert quality["n_features"] == len(quality["features"]) > 50

    neighborhood = feature(quality, "Neighborhood")
    assert neighborhood["unseen"] >= UNSEEN and neighborhood["unseen_values"][0] == "Atlantis"
    assert neighborhood["out_of_contract"] >= UNSEEN
    assert {"unseen_categories", "out_of_contract"} <= set(neighborhood["issues"])

    living = feature(quality, "Gr_Liv_Area")
    assert living["out_of_contract"] >= HUGE and "out_of_contract" in living["issues"]

    frontage = feature(quality, "Lot_Frontage")
    assert (frontage["nulls"], frontage["null_rate"], frontage["reference_null_rate"]) == (INJECTED, 0.25, 0.0)
    assert frontage["issues"] == ["nulls"]

    lot = feature(quality, "Lot_Area")
    assert (lot["coercion_failures"], lot["coerced"], lot["nulls"]) == (UNREADABLE, AS_TEXT, 0)
    assert {"coercion_failures", "coerced"} <= set(lot["issues"])

    year = feature(quality, "Year_Built")
    assert (year["nulls"], year["out_of_contract"], year["coerced"], year["coercion_failures"]) == (0, 0, 0, 0)
    assert year["issues"] == []

    assert {"Neighborhood", "Gr_Liv_Area", "Lot_Frontage", "Lot_Area"} <= set(quality["features_with_issues"])
    assert quality["n_issues"] == len(quality["features_with_issues"])


def test_latest_json_and_the_history_carry_the_figures(checked: Checked) -> None:
    published = json.loads((checked.project.monitor_dir / "latest.json").read_text(encoding="utf-8"))
    assert published["data_quality"]["features"] == checked.latest["data_quality"]["features"]
    last = (checked.project.monitor_dir / "history.jsonl").read_text(encoding="utf-8").splitlines()[-1]
    assert (
        json.loads(last)["data_quality"]["features_with_issues"]
        == checked.latest["data_quality"]["features_with_issues"]
    )


def test_the_report_has_a_data_quality_section(checked: Checked) -> None:
    path = mloop_json("report", "--json", project=checked.project)["path"]
    with open(path, encoding="utf-8") as handle:
        page = handle.read()
    section = page[page.index("<h2>Data quality</h2>") : page.index("<h2>Monitoring windows</h2>")]
    n_issues = checked.latest["data_quality"]["n_issues"]
    assert f"{n_issues} of {checked.latest['data_quality']['n_features']} features have data-quality issues" in section
    for name in ("Neighborhood", "Gr_Liv_Area", "Lot_Frontage", "Lot_Area"):
        assert f"<td>{name}</td>" in section, name
    assert "Atlantis" in section and "<td>Year_Built</td>" not in section


def test_the_server_exports_the_figures_on_metrics(checked: Checked) -> None:
    with checked.server.client() as client:
        text = client.get("/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("mloop_data_")
    }
    quality = checked.latest["data_quality"]

    def gauge(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert gauge("mloop_data_window_rows") == SERVED + INJECTED
    assert gauge("mloop_data_quality_issues") == quality["n_issues"]
    assert gauge("mloop_data_null_rate", feature="Lot_Frontage") == 0.25
    assert gauge("mloop_data_reference_null_rate", feature="Lot_Frontage") == 0.0
    assert gauge("mloop_data_coercions", feature="Lot_Area", outcome="failed") == UNREADABLE
    assert gauge("mloop_data_coercions", feature="Lot_Area", outcome="coerced") == AS_TEXT
    neighborhood, living = feature(quality, "Neighborhood"), feature(quality, "Gr_Liv_Area")
    assert gauge("mloop_data_unseen_categories", feature="Neighborhood") == neighborhood["unseen"]
    assert gauge("mloop_data_out_of_contract", feature="Gr_Liv_Area") == living["out_of_contract"]
    per_feature = {labels for name, labels in samples if name == "mloop_data_null_rate"}
    assert len(per_feature) == quality["n_features"]

"""Bad batches against a trained project: each is reported, quarantined and leaves the champion alone;
`mloop contract diff|update` then show and accept a change from the real command line."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
import yaml
from tests.helpers.cli import mloop
from tests.helpers.projects import init_project_on

from mloop.data.contract import load_contract, save_contract
from mloop.errors import ContractError
from mloop.pipeline import stages
from mloop.project import Project
from mloop.registry import versions

pytestmark = pytest.mark.integration


def batch_with(ames: pd.DataFrame, kind: str) -> pd.DataFrame:
    batch = ames.iloc[:300].reset_index(drop=True)  # rows the contract knows: only the planted fault shows
    if kind == "changed type":
        batch = batch.astype({"Gr_Liv_Area": object})
        batch.loc[:5, "Gr_Liv_Area"] = "see listing"
    elif kind == "new category":
        batch.loc[:8, "Neighborhood"] = "Atlantis"
    elif kind == "out of range":
        batch.loc[:3, "Lot_Area"] = 10**8
    elif kind == "missing column":
        batch = batch.drop(columns=["Year_Built"])
    return batch


EXPECTED = {
    "changed type": ("Gr_Liv_Area", "dtype", 6),
    "new category": ("Neighborhood", "categories", 9),
    "out of range": ("Lot_Area", "range", 4),
    "missing column": ("Year_Built", "missing_column", 1),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, ames: pd.DataFrame) -> dict[str, Any]:
    """One champion, then the four bad batches through `run`, with range and category checks made errors."""
    root = tmp_path_factory.mktemp("bad")
    project = init_project_on(
        root,
        ames.iloc[:400],
        data_file="houses.csv",
        project="p",
        name="houses",
        dvc=False,
        train={"estimator": "linear"},
    )
    first = stages.run(project)
    contract = load_contract(project.contract_path)
    contract.severity.update(range="error", categories="error")  # a hand edit: reject these too
    save_contract(contract, project.contract_path)
    outcome: dict[str, Any] = {"project": project, "champion": first.version.version, "errors": {}, "reports": {}}
    for kind in EXPECTED:
        path = root / f"{kind.replace(' ', '_')}.csv"
        batch_with(ames, kind).to_csv(path, index=False)
        with pytest.raises(ContractError) as info:
            stages.run(project, str(path))
        outcome["errors"][kind] = info.value.message
        rejected = stages.latest_snapshot(project.snapshots_dir).hash
        outcome["reports"][kind] = json.loads((project.quarantine_dir / rejected / "report.json").read_text())
    outcome["champion_after"] = versions.alias_version(project, versions.CHAMPION)
    outcome["versions"] = [v.version for v in versions.list_versions(project)]
    return outcome


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_each_bad_batch_is_reported_and_quarantined(trained: dict[str, Any], kind: str) -> None:
    project: Project = trained["project"]
    column, check, count = EXPECTED[kind]
    assert column in trained["errors"][kind]
    reports = [json.loads(p.read_text()) for p in project.quarantine_dir.glob("*/report.json")]
    matching = [v for r in reports for v in r["violations"] if v["column"] == column and v["check"] == check]
    assert len(matching) == 1 and matching[0]["count"] == count and matching[0]["severity"] == "error"
    if check != "missing_column":
        assert matching[0]["examples"] and matching[0]["examples"][0]["row"] == 0


def test_the_champion_is_untouched(trained: dict[str, Any]) -> None:
    assert trained["versions"] == [trained["champion"]] == ["1"]
    assert trained["champion_after"].version == "1"


def test_contract_diff_and_update_from_the_command_line(trained: dict[str, Any], ames: pd.DataFrame) -> None:
    project: Project = trained["project"]
    path = project.root.parent / "new_category.csv"
    ingested = stages.ingest(project, str(path)).snapshot
    shown = mloop("validate", ingested.hash, cwd=project.root)
    assert shown.returncode != 0 and "Atlantis" in shown.stdout and "categories" in shown.stdout
    before = project.contract_path.read_text()
    diffed = mloop("contract", "diff", "--json", cwd=project.root)
    assert diffed.returncode == 0, diffed.stderr
    changes = json.loads(diffed.stdout)["changes"]
    assert [(c["column"], c["kind"], c["new"]) for c in changes] == [("Neighborhood", "categories", ["Atlantis"])]
    assert project.contract_path.read_text() == before  # diff writes nothing
    updated = mloop("contract", "update", cwd=project.root)
    assert updated.returncode == 0, updated.stderr
    assert "Neighborhood" in updated.stdout
    contract = yaml.safe_load(project.contract_path.read_text())
    assert "Atlantis" in contract["columns"]["Neighborhood"]["categories"] and contract["version"] == 2
    again = mloop("validate", "--json", ingested.hash, cwd=project.root)
    assert again.returncode == 0 and json.loads(again.stdout)["passed"] is True

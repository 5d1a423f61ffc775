"""The data stages on a project folder (no MLflow store): ingest, validate, quarantine, require_valid,
incremental ingest, and the refusals of `mloop run` and train that come before any model is trained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from mloop.config import MloopConfig
from mloop.data.contract import load_contract, save_contract
from mloop.data.snapshot import list_snapshots
from mloop.errors import ConfigError, ContractError
from mloop.pipeline import stages
from mloop.project import Project


def sales(start: int, rows: int) -> pd.DataFrame:
    ids = range(start, start + rows)
    return pd.DataFrame(
        {"sale_id": list(ids), "district": [("north", "south")[i % 2] for i in ids], "price": [100.0 + i for i in ids]}
    )


def make_project(root: Path, frame: pd.DataFrame, **data: Any) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "sales.csv", index=False)
    config = MloopConfig.from_file_values(
        name="sales", data={"source": "sales.csv", "target": "price", "versioning": "off", **data}
    )
    return Project(root=root.resolve(), config=config)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "p", sales(0, 40))


def test_a_relative_sqlite_source_is_resolved_against_the_project(tmp_path: Path) -> None:
    def source_of(uri: str) -> str:
        config = MloopConfig.from_file_values(name="s", data={"source": uri, "target": "y", "query": "t"})
        return stages._config_source(Project(root=tmp_path, config=config))

    assert source_of("sqlite:///data/sales.db") == f"sqlite:///{tmp_path / 'data' / 'sales.db'}"
    assert source_of("sqlite:////srv/sales.db") == "sqlite:////srv/sales.db"  # absolute: as written
    assert source_of("sqlite:///:memory:") == "sqlite:///:memory:"
    assert source_of("data/sales.csv") == str(tmp_path / "data" / "sales.csv")  # a file path, like Project.source


def test_only_the_first_ingest_infers_the_contract(project: Project) -> None:
    first = stages.ingest(project)
    assert first.contract_created and project.contract_path.is_file()
    assert first.snapshot.rows == 40 and first.added_rows is None
    contract_text = project.contract_path.read_text(encoding="utf-8")
    again = stages.ingest(project)
    assert not again.contract_created
    assert again.snapshot.hash == first.snapshot.hash  # the same data is the same snapshot
    assert project.contract_path.read_text(encoding="utf-8") == contract_text
    assert load_contract(project.contract_path).target == "price"


def test_a_passing_snapshot_is_recorded_and_not_quarantined(project: Project) -> None:
    ingested = stages.ingest(project).snapshot
    record = project.snapshots_dir / f"{ingested.hash}.validation.json"
    assert not record.exists()
    stages.require_valid(project, ingested)  # never validated: require_valid validates it first
    assert record.is_file()
    snapshot, report = stages.validate(project)
    assert snapshot.hash == ingested.hash and report.passed
    recorded = yaml.safe_load(record.read_text(encoding="utf-8"))
    assert recorded["snapshot"] == snapshot.hash and recorded["passed"] is True
    assert not project.quarantine_dir.exists() or not any(project.quarantine_dir.iterdir())


def test_a_rejected_snapshot_is_quarantined_and_refused_for_training(project: Project) -> None:
    stages.ingest(project)
    broken = sales(0, 40).assign(price=None)  # no target values at all
    bad = stages.ingest(project, frame=broken).snapshot
    snapshot, report = stages.validate(project, bad.hash)
    assert not report.passed
    folder = project.quarantine_dir / bad.hash
    assert sorted(p.name for p in folder.iterdir()) == ["data.parquet", "report.json"]
    assert pd.read_parquet(folder / "data.parquet")["price"].isna().all()
    with pytest.raises(ContractError, match=f"snapshot {bad.hash[:12]} was rejected by the data contract"):
        stages.require_valid(project, snapshot)
    with pytest.raises(ContractError, match="quarantined"):
        stages.train_stage(project, bad.hash)  # refused before any training starts


def test_incremental_ingest_appends_only_the_new_rows(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", sales(0, 40), incremental_column="sale_id")
    first = stages.ingest(project).snapshot
    pd.concat([sales(0, 40), sales(40, 10)]).to_csv(project.root / "sales.csv", index=False)
    grown = stages.ingest(project)
    assert grown.added_rows == 10
    assert grown.snapshot.rows == 50 and grown.snapshot.parent == first.hash
    assert grown.snapshot.read()["sale_id"].tolist() == list(range(50))
    unchanged = stages.ingest(project)  # nothing past the watermark
    assert unchanged.added_rows == 0 and unchanged.snapshot.hash == grown.snapshot.hash
    assert [s.hash for s in list_snapshots(project.snapshots_dir)] == [first.hash, grown.snapshot.hash]


def test_run_refuses_a_target_the_contract_does_not_own_before_writing_a_snapshot(project: Project) -> None:
    stages.ingest(project)
    contract = load_contract(project.contract_path).with_target("sale_id")
    save_contract(contract, project.contract_path)
    before = sorted(p.name for p in project.snapshots_dir.iterdir())
    with pytest.raises(ConfigError, match="has the target 'sale_id'"):
        stages.run(project)
    assert sorted(p.name for p in project.snapshots_dir.iterdir()) == before
    assert not (project.workspace / "mlflow.db").exists()


def test_run_stops_at_a_snapshot_that_breaks_the_contract(project: Project) -> None:
    stages.ingest(project)  # the contract, from good data
    (project.root / "sales.csv").write_text(sales(0, 40).assign(price="n/a").to_csv(index=False), encoding="utf-8")
    with pytest.raises(ContractError, match="breaks the data contract"):
        stages.run(project)
    assert not (project.workspace / "mlflow.db").exists()  # stopped before training touched the store

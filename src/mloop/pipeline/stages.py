"""The stages of the loop as plain functions over a Project; the CLI and the runner call these."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

import pandas as pd

from mloop.core.gate import GateDecision
from mloop.data.contract import ValidationReport, infer_contract, load_contract, save_contract, validate_frame
from mloop.data.snapshot import Snapshot, latest_snapshot, load_snapshot, write_snapshot
from mloop.data.sources import read_source
from mloop.errors import ContractError
from mloop.project import Project
from mloop.registry import gate, versions
from mloop.train.trainer import TrainResult, train


@dataclass(frozen=True)
class IngestResult:
    snapshot: Snapshot
    contract_created: bool


def ingest(project: Project, source: str | None = None, frame: pd.DataFrame | None = None) -> IngestResult:
    """Read the source into a snapshot; the first ingest also infers the data contract."""
    project.ensure_workspace()
    uri = source or project.source
    data = read_source(uri) if frame is None else frame
    snapshot = write_snapshot(data, uri, project.snapshots_dir)
    created = False
    if not project.contract_path.exists():
        cfg = project.config.data
        contract = infer_contract(data, cfg.target, cfg.time_column, cfg.id_column, cfg.exclude)
        save_contract(contract, project.contract_path)
        created = True
    return IngestResult(snapshot, created)


def _validation_file(project: Project, snapshot: Snapshot) -> str:
    return str(project.snapshots_dir / f"{snapshot.hash}.validation.json")


def validate(project: Project, ref: str | None = None) -> tuple[Snapshot, ValidationReport]:
    """Check a snapshot (default: the latest) against the contract; a failing one is quarantined."""
    snapshot = load_snapshot(project.snapshots_dir, ref) if ref else latest_snapshot(project.snapshots_dir)
    contract = load_contract(project.contract_path)
    report = validate_frame(snapshot.read(), contract)
    text = json.dumps({"snapshot": snapshot.hash, **report.to_dict()}, indent=2, default=str)
    with open(_validation_file(project, snapshot), "w", encoding="utf-8") as handle:
        handle.write(text)
    if not report.passed:
        folder = project.quarantine_dir / snapshot.hash
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(snapshot.path, folder / "data.parquet")
        (folder / "report.json").write_text(text, encoding="utf-8")
    return snapshot, report


def require_valid(project: Project, snapshot: Snapshot) -> None:
    """Refuse to train on a snapshot the contract rejected (or that was never checked and fails)."""
    path = _validation_file(project, snapshot)
    try:
        with open(path, encoding="utf-8") as handle:
            passed = bool(json.load(handle)["passed"])
    except FileNotFoundError:
        passed = validate(project, snapshot.hash)[1].passed
    if not passed:
        raise ContractError(
            f"snapshot {snapshot.hash[:12]} was rejected by the data contract and is quarantined in "
            f"{project.quarantine_dir / snapshot.hash}; fix the data or the contract, then ingest again."
        )


def train_stage(project: Project, ref: str | None = None) -> TrainResult:
    snapshot = load_snapshot(project.snapshots_dir, ref) if ref else latest_snapshot(project.snapshots_dir)
    require_valid(project, snapshot)
    return train(project, snapshot)


@dataclass(frozen=True)
class RunResult:
    snapshot: Snapshot
    report: ValidationReport
    trained: TrainResult
    version: versions.VersionInfo
    decision: GateDecision


def run(project: Project, source: str | None = None) -> RunResult:
    """ingest → validate → train → register → gate, stopping at the first stage that fails."""
    ingested = ingest(project, source)
    snapshot, report = validate(project, ingested.snapshot.hash)
    if not report.passed:
        raise ContractError(
            f"snapshot {snapshot.hash[:12]} breaks the data contract ({project.contract_path}):\n{report.summary()}"
        )
    trained = train(project, snapshot)
    version = versions.register(project, trained.run_id)
    decision = gate.promote(project, version.version)
    return RunResult(snapshot, report, trained, version, decision)

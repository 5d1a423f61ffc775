"""The stages of the loop as plain functions over a Project; the CLI and the runner call these."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mloop.core.gate import GateDecision
from mloop.data import versioning
from mloop.data.contract import ValidationReport, infer_contract, load_contract, save_contract, validate_frame
from mloop.data.progress import Progress
from mloop.data.snapshot import Snapshot, latest_snapshot, list_snapshots, load_snapshot, write_snapshot
from mloop.data.sources import describe_source, read_source
from mloop.errors import ContractError, SourceError
from mloop.project import Project
from mloop.registry import gate, versions
from mloop.train.trainer import TrainResult, train


@dataclass(frozen=True)
class IngestResult:
    snapshot: Snapshot
    contract_created: bool
    added_rows: int | None = None  # incremental ingest: rows appended to the previous version (0: none new)


def _config_source(project: Project) -> str:
    """data.source with a relative SQLite path resolved against the project, like a file path."""
    uri = project.source
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////") and ":memory:" not in uri:
        return f"sqlite:///{(project.root / uri.removeprefix('sqlite:///')).resolve()}"
    return uri


def _watermark(project: Project, label: str, column: str) -> tuple[Snapshot | None, tuple[str, Any] | None]:
    """The latest snapshot of the source and the largest ``column`` value in it: where incremental ingest starts."""
    same_source = [s for s in list_snapshots(project.snapshots_dir) if s.source == label]
    if not same_source:
        return None, None
    parent = same_source[-1]
    if column not in parent.columns:
        raise SourceError(f"incremental column {column!r} is not in snapshot {parent.hash[:12]} of {label}.")
    values = pd.read_parquet(parent.path, columns=[column])[column].dropna()
    if values.empty:
        return None, None
    top = values.max()
    value: Any = top.to_pydatetime() if isinstance(top, pd.Timestamp) else getattr(top, "item", lambda: top)()
    return parent, (column, value)


def read_project_source(project: Project) -> pd.DataFrame:
    """All rows of data.source as mloop.yaml configures it (query, endpoint, relative SQLite path)."""
    cfg = project.config.data
    return read_source(_config_source(project), cfg.query, endpoint_url=cfg.s3_endpoint_url)


def ingest(
    project: Project,
    source: str | None = None,
    frame: pd.DataFrame | None = None,
    progress: Progress | None = None,
) -> IngestResult:
    """Read the source into a snapshot; the first ingest also infers the data contract.

    With ``data.incremental_column`` set, only rows past the latest snapshot of the same source are
    read and appended to it as a new snapshot version. ``progress(done, total)`` is told how many bytes
    of a local CSV/TSV file have been read.
    """
    project.ensure_workspace()
    cfg = project.config.data
    uri = source or _config_source(project)
    label = describe_source(uri, cfg.query) if frame is None else uri
    parent: Snapshot | None = None
    if frame is None:
        after = None
        if cfg.incremental_column:
            parent, after = _watermark(project, label, cfg.incremental_column)
        data = read_source(uri, cfg.query, after, cfg.s3_endpoint_url, progress)
        if parent is not None:
            if data.empty:
                return IngestResult(parent, False, added_rows=0)
            data = pd.concat([parent.read(), data], ignore_index=True)
    else:
        data = frame
    snapshot = write_snapshot(data, label, project.snapshots_dir, parent=parent)
    created = False
    if not project.contract_path.exists():
        contract = infer_contract(data, cfg.target, cfg.time_column, cfg.id_column, cfg.exclude)
        save_contract(contract, project.contract_path)
        created = True
    return IngestResult(snapshot, created, snapshot.added_rows)


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
    elif versioning.enabled(project.root, project.config.data):
        versioning.track(project.root, project.config.data, snapshot)  # only accepted data becomes a DVC version
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
    project.contract()  # a data.target that disagrees with the contract fails before require_valid writes a report
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
    if project.contract_path.exists():
        project.contract()  # a data.target that disagrees with the contract fails before a snapshot is written
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

"""The lineage of one logged prediction, from an alarm back to its cause (``mloop trace REQUEST_ID``).

``trace`` looks the request up in the prediction log by its id (SQLite or PostgreSQL, one primary-key
query), then follows what answered it: the model version in the registry, the MLflow run that trained it,
the data snapshot (and how to restore exactly those bytes with DVC), the data contract and the git commit.

A gap never stops the trace: a version gone from the registry, a deleted run or a missing tag leaves its
fields ``None`` and adds a sentence to ``Lineage.missing`` that names what is missing and where it was
looked for. Only an unknown request id (or no prediction log at all) is an error. Nothing here prints:
``mloop.cli.trace_cmd`` shows a ``Lineage``; ``Lineage.to_dict`` is its ``--json`` form.
"""

from __future__ import annotations

import math
import shlex
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.data.contract import load_contract
from mloop.data.predictions import SHADOW_SUFFIX
from mloop.data.snapshot import load_snapshot
from mloop.data.versioning import dvc_file
from mloop.errors import ContractError, MloopError, MonitorError, RegistryError, SourceError, TrackingError
from mloop.project import Project
from mloop.registry import versions
from mloop.tracking.runs import CONTRACT_ARTIFACT
from mloop.tracking.store import safe_uri

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from mloop.data.predictions import PredictionRow

DATA_HASH_TAG = "mloop.data_hash"
CONTRACT_HASH_TAG = "mloop.contract_hash"
GIT_TAGS = ("mloop.git_sha", "mlflow.source.git.commit")


@dataclass(frozen=True)
class LoggedPrediction:
    """The row of the prediction log: what was asked, what was answered, and the label if feedback came."""

    ts: str
    model_version: str
    features: dict[str, Any]
    prediction: Any
    latency_ms: float | None
    label: Any
    label_ts: str | None


@dataclass(frozen=True)
class ModelLineage:
    """The registered version that answered, as the registry has it now."""

    name: str
    version: str
    registered: bool
    aliases: list[str] = field(default_factory=list)
    created: str | None = None
    artifact_sha256: str | None = None


@dataclass(frozen=True)
class RunLineage:
    """The MLflow run that trained the version; ``metrics`` are its headline ones (details stay in MLflow)."""

    id: str | None
    name: str | None = None
    experiment: str | None = None
    status: str | None = None
    deleted: bool = False
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DataLineage:
    """The snapshot the version was trained on and the commands that bring exactly its bytes back."""

    hash: str | None
    source: str | None = None
    rows: int | None = None
    path: str | None = None
    in_workspace: bool = False
    dvc_file: str | None = None
    restore: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Lineage:
    """Everything known about how one prediction came to be; ``missing`` names every gap."""

    request_id: str
    log: str  # where the row was found (no password)
    shadow: bool  # the challenger's shadow answer, never sent to the caller
    answered_request_id: str  # the id the caller got: request_id without ``:shadow``
    prediction: LoggedPrediction
    model: ModelLineage
    run: RunLineage
    data: DataLineage
    contract_hash: str | None
    contract_version: int | None
    git_commit: str | None
    primary_metric: str
    missing: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def trace(project: Project, request_id: str) -> Lineage:
    """The lineage of the prediction logged as ``request_id`` (``<id>:shadow`` for the challenger's).

    Raises ``MonitorError`` when the project has no prediction log or the log has no such request.
    """
    if not project.has_prediction_log():
        raise MonitorError(
            f"no prediction log at {project.predictions_db} (and no monitor.predictions_url): nothing to trace "
            "until the model has been served and asked for predictions."
        )
    store = project.prediction_store()
    row = store.get(request_id)
    if row is None:
        hint = ""
        if not request_id.endswith(SHADOW_SUFFIX) and store.get(request_id + SHADOW_SUFFIX) is not None:
            hint = f" (only the challenger's shadow answer {request_id + SHADOW_SUFFIX!r} is)"
        raise MonitorError(
            f"request {request_id!r} is not in the prediction log {store.location}{hint}. Use a request_id "
            "that /v1/predict answered (request_id, or request_ids for a batch); for another project's log, name "
            "its config with -c."
        )
    return lineage_of(project, row, store.location)


def lineage_of(project: Project, row: PredictionRow, log: str) -> Lineage:
    """The lineage of a row already read from the log at ``log``: registry, run, data, contract, commit."""
    missing: list[str] = []
    shadow = row.request_id.endswith(SHADOW_SUFFIX)
    version, version_tags, run_id = _version(project, row.model_version, missing)
    run, run_tags = _run(project, version, run_id, missing)
    tags = {**version_tags, **run_tags}  # the run is the source; the version holds copies made at registration
    if run.id is not None and not run.metrics:
        run = RunLineage(**{**asdict(run), "metrics": _version_metrics(version_tags)})
    data = _data(project, tags.get(DATA_HASH_TAG), missing) if version.registered else DataLineage(None)
    contract_hash = tags.get(CONTRACT_HASH_TAG)
    contract_version = _contract_version(project, run.id, contract_hash, missing)
    if contract_hash is None and version.registered:
        missing.append(f"no {CONTRACT_HASH_TAG} tag on version {version.version} or its run: the contract is unknown")
    git_commit = next((tags[t] for t in GIT_TAGS if tags.get(t)), None)
    if git_commit is None and version.registered:
        missing.append(
            f"no git commit recorded (tag {GIT_TAGS[0]}): the project was not in a git work tree with a commit "
            "when the model was trained"
        )
    return Lineage(
        request_id=row.request_id,
        log=log,
        shadow=shadow,
        answered_request_id=row.request_id.removesuffix(SHADOW_SUFFIX),
        prediction=LoggedPrediction(
            ts=row.ts,
            model_version=row.model_version,
            features=dict(row.features),
            prediction=row.prediction,
            latency_ms=None if math.isnan(row.latency_ms) else row.latency_ms,
            label=row.label,
            label_ts=row.label_ts,
        ),
        model=version,
        run=run,
        data=data,
        contract_hash=contract_hash,
        contract_version=contract_version,
        git_commit=git_commit,
        primary_metric=project.config.primary_metric,
        missing=missing,
    )


# ------------------------------------------------------------------------------------------ the pieces


def _has_store(project: Project) -> bool:
    """Whether there is an MLflow store to read: connecting to a missing SQLite one would create it empty."""
    return project.config.tracking.uri is not None or (project.workspace / "mlflow.db").is_file()


def _version(project: Project, number: str, missing: list[str]) -> tuple[ModelLineage, dict[str, str], str | None]:
    """The version as the registry has it, its tags and its run's id."""
    store = safe_uri(project.tracking_uri)
    if not _has_store(project):
        missing.append(f"no MLflow store at {store}: the model version and its run are unknown")
        return ModelLineage(project.name, number, registered=False), {}, None
    try:
        info = versions.get_version(project, number)
    except TrackingError as exc:
        missing.append(f"{exc.message}: the model version and its run are unknown")
        return ModelLineage(project.name, number, registered=False), {}, None
    except RegistryError:
        missing.append(
            f"model {project.name!r} has no version {number} in the registry at {store}: it was deleted, or "
            "the row was logged by another project"
        )
        return ModelLineage(project.name, number, registered=False), {}, None
    created = datetime.fromtimestamp(info.created_ms / 1000, UTC).isoformat(timespec="seconds")
    model = ModelLineage(
        name=project.name,
        version=info.version,
        registered=True,
        aliases=sorted(info.aliases),
        created=created if info.created_ms else None,
        artifact_sha256=info.tags.get(versions.ARTIFACT_HASH_TAG),
    )
    return model, dict(info.tags), (info.run_id if info.run_id not in ("", "None") else None)


def _run(
    project: Project, version: ModelLineage, run_id: str | None, missing: list[str]
) -> tuple[RunLineage, dict[str, str]]:
    if run_id is None:
        if version.registered:
            missing.append(f"version {version.version} names no MLflow run")
        return RunLineage(None), {}
    client = versions.client(project)
    found = _get_run(client, run_id)
    if found is None:
        missing.append(
            f"MLflow run {run_id} of version {version.version} is gone from the tracking store (deleted and "
            "garbage-collected): its name, experiment and metrics are unknown; the lineage below comes from the "
            "version's tags"
        )
        return RunLineage(run_id), {}
    deleted = found.info.lifecycle_stage == "deleted"
    if deleted:
        missing.append(f"MLflow run {run_id} was deleted (it is in the trash until `mlflow gc`); shown as it was")
    experiment = client.get_experiment(found.info.experiment_id)
    primary = project.config.primary_metric
    headline = {
        k: float(v) for k, v in found.data.metrics.items() if "." not in k and not k.startswith(versions.DETAIL_METRICS)
    }
    metrics = {k: headline[k] for k in sorted(headline, key=lambda k: (k != primary, k))}
    return (
        RunLineage(
            id=run_id,
            name=found.info.run_name,
            experiment=experiment.name if experiment is not None else None,
            status=str(found.info.status),
            deleted=deleted,
            metrics=metrics,
        ),
        {k: str(v) for k, v in found.data.tags.items()},
    )


def _get_run(client: MlflowClient, run_id: str) -> Run | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise  # the store failing is no gap in the lineage: the CLI reports it as a tracking error


def _version_metrics(tags: dict[str, str]) -> dict[str, float]:
    """The headline metrics copied onto the version at registration, for a run that is gone."""
    found: dict[str, float] = {}
    for key, value in tags.items():
        if key.startswith("mloop.metric."):
            try:
                found[key.removeprefix("mloop.metric.")] = float(value)
            except ValueError:
                continue
    return found


def _data(project: Project, data_hash: str | None, missing: list[str]) -> DataLineage:
    if data_hash is None:
        missing.append(f"no {DATA_HASH_TAG} tag on the version or its run: the training data is unknown")
        return DataLineage(None)
    try:
        snapshot = load_snapshot(project.snapshots_dir, data_hash)
    except SourceError:
        tracked = project.snapshots_dir / f"{data_hash}.parquet.dvc"
        if tracked.is_file():  # the metadata is gone but DVC still knows the bytes
            missing.append(f"snapshot {data_hash[:12]} has no metadata ({data_hash}.json) in {project.snapshots_dir}")
            return DataLineage(data_hash, dvc_file=str(tracked), restore=[_dvc_pull(project, tracked)])
        missing.append(
            f"snapshot {data_hash[:12]} is not in {project.snapshots_dir}: its metadata and .dvc file are gone "
            "from this workspace (restore them from git, where the .dvc files are committed)"
        )
        return DataLineage(data_hash)
    tracked = dvc_file(snapshot)
    restore: list[str] = []
    if tracked.is_file():
        restore = [
            f"mloop -c {shlex.quote(str(project.config_file))} data checkout {snapshot.hash}",
            _dvc_pull(project, tracked),
        ]
    else:
        kept = "only the workspace copy holds" if Path(snapshot.path).is_file() else "nothing holds"
        missing.append(
            f"snapshot {snapshot.hash[:12]} is not versioned by DVC (no {tracked.name}; data.versioning is off or "
            f"was when it was ingested): {kept} its bytes"
        )
    return DataLineage(
        hash=snapshot.hash,
        source=snapshot.source,
        rows=snapshot.rows,
        path=snapshot.path,
        in_workspace=Path(snapshot.path).is_file(),
        dvc_file=str(tracked) if tracked.is_file() else None,
        restore=restore,
    )


def _dvc_pull(project: Project, tracked: Path) -> str:
    """DVC's own command for exactly those bytes: from its cache, else from the remote."""
    try:
        relative = str(tracked.resolve().relative_to(project.root.resolve()))
    except ValueError:
        relative = str(tracked)
    return f"cd {shlex.quote(str(project.root))} && dvc pull {shlex.quote(relative)}"


def _contract_version(
    project: Project, run_id: str | None, contract_hash: str | None, missing: list[str]
) -> int | None:
    """The version of the contract the run trained under: the project's own if its hash matches, else the
    copy the run logged (``contract.yaml``)."""
    try:
        current = load_contract(project.contract_path)
    except ContractError:
        current = None
    if current is not None and contract_hash is not None and current.hash() == contract_hash:
        return current.version
    if run_id is None:
        if contract_hash is not None:
            missing.append(f"contract {contract_hash} is no longer the project's and the run is unknown: no version")
        return None
    import mlflow
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="mloop-trace-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=CONTRACT_ARTIFACT, dst_path=tmp)
            logged = load_contract(Path(local))
        except (MloopError, OSError, MlflowException):
            missing.append(
                f"run {run_id} has no readable {CONTRACT_ARTIFACT} artifact: the contract version is unknown"
            )
            return None
    if contract_hash is not None and logged.hash() != contract_hash:
        missing.append(
            f"the {CONTRACT_ARTIFACT} run {run_id} logged has hash {logged.hash()}, not its tag's {contract_hash}"
        )
    return logged.version

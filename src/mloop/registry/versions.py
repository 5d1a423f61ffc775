"""Model versions in the MLflow registry: register with lineage tags, read, load, move aliases."""

from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from mloop import failpoints
from mloop.errors import RegistryError
from mloop.project import Project
from mloop.tracking.store import connect

CHAMPION = "champion"
CHALLENGER = "challenger"
# Run metrics too detailed for version tags (dozens per run); the run keeps them.
DETAIL_METRICS = ("baseline", "slice.", "importance.", "behaviour.")
# SHA-256 over the files of the version's model, recorded at registration; the server checks it
# before loading, because loading a pickled model runs code.
ARTIFACT_HASH_TAG = "mloop.artifact_sha256"
# ``failed`` on a version a crash left incomplete: never served, gated or returned by ``register`` again.
STATUS_TAG, FAILED = "mloop.status", "failed"
# Written by MLflow into every download of a models:/ URI (the name and version downloaded), not stored.
_NOT_HASHED = frozenset({"registered_model_meta"})
# MLmodel's top-level ``artifact_path:`` is where the files were stored (an absolute URI that changes when a
# project is moved or baked into an image); loading never reads it, so it is left out of the hash.
_LOCATION_LINE = re.compile(rb"^artifact_path:[^\n]*\n?", re.MULTILINE)
_CHUNK = 1 << 20


def artifact_sha256(directory: Path | str) -> str:
    """One SHA-256 over every file of a model directory: relative paths and contents, in path order."""
    root = Path(directory)
    digest = hashlib.sha256()
    files = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file())
    for relative, path in files:
        if relative in _NOT_HASHED:
            continue
        content = hashlib.sha256()
        if relative.rsplit("/", 1)[-1] == "MLmodel":
            content.update(_LOCATION_LINE.sub(b"", path.read_bytes()))
        else:
            with open(path, "rb") as file:
                while chunk := file.read(_CHUNK):
                    content.update(chunk)
        digest.update(relative.encode("utf-8") + b"\0" + content.digest())
    return digest.hexdigest()


def _model_sha256(source: str) -> str:
    """The artifact hash of the model at ``source`` (what the version will point at), before it exists."""
    with tempfile.TemporaryDirectory(prefix="mloop-register-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(source, dst_path=tmp)
        except (MlflowException, OSError) as exc:
            raise RegistryError(f"cannot read the model files of {source} to hash them: {exc}") from None
        return artifact_sha256(local)


@dataclass(frozen=True)
class VersionInfo:
    version: str
    run_id: str
    aliases: list[str]
    tags: dict[str, str]
    created_ms: int

    def metric(self, name: str) -> float | None:
        value = self.tags.get(f"mloop.metric.{name}")
        return float(value) if value is not None else None


def _info(mv: ModelVersion) -> VersionInfo:
    return VersionInfo(
        version=str(mv.version),
        run_id=str(mv.run_id),
        aliases=list(mv.aliases or []),
        tags=dict(mv.tags or {}),
        created_ms=int(mv.creation_timestamp or 0),
    )


def latest_training_run(project: Project) -> str:
    client = connect(project)
    experiment = client.get_experiment_by_name(project.experiment_name)
    if experiment is None:
        raise RegistryError(f"No MLflow experiment {project.experiment_name!r}; run `mloop train` first.")
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string="tags.`mloop.stage` = 'train' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        raise RegistryError("No finished training run to register; run `mloop train` first.")
    return str(runs[0].info.run_id)


def register(project: Project, run_id: str | None = None) -> VersionInfo:
    """Register the model of ``run_id`` (default: the latest training run) with its lineage tags.

    The version is created with every tag in one registry write, so no crash or outage leaves a version
    half-tagged. A version of the same run left without its artifact hash (a crash inside an older,
    two-step registration) is marked ``mloop.status=failed`` and a complete one is created instead.
    """
    client = connect(project)
    run_id = run_id or latest_training_run(project)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise RegistryError(f"No MLflow run {run_id!r} in {project.tracking_uri}.") from None
    for existing in client.search_model_versions(f"name = '{project.name}' and run_id = '{run_id}'"):
        if existing.tags.get(STATUS_TAG) == FAILED:
            continue
        if ARTIFACT_HASH_TAG in existing.tags:
            return _info(existing)  # registering the same run twice would duplicate a version
        client.set_model_version_tag(project.name, existing.version, STATUS_TAG, FAILED)
    try:
        client.get_registered_model(project.name)
    except MlflowException:
        client.create_registered_model(project.name, description=f"mloop project {project.name}")
    model_ids = [o.model_id for o in (run.outputs.model_outputs if run.outputs else [])]
    source = f"models:/{model_ids[0]}" if model_ids else f"runs:/{run_id}/model"
    tags = {k: v for k, v in run.data.tags.items() if k.startswith("mloop.") and k != "mloop.stage"}
    tags.update({f"mloop.metric.{k}": repr(v) for k, v in run.data.metrics.items() if not k.startswith(DETAIL_METRICS)})
    tags[ARTIFACT_HASH_TAG] = _model_sha256(source)
    failpoints.hit("register:before-create")
    # A tracking server checks a models:/ source against model_id; the embedded store does not.
    mv = client.create_model_version(
        project.name, source, run_id=run_id, tags=tags, model_id=model_ids[0] if model_ids else None
    )
    failpoints.hit("register:after-create")
    return get_version(project, str(mv.version))


def get_version(project: Project, version: str) -> VersionInfo:
    client = connect(project)
    try:
        return _info(client.get_model_version(project.name, version))
    except MlflowException:
        raise RegistryError(
            f"Model {project.name!r} has no version {version!r}; `mloop models` lists the versions."
        ) from None


def list_versions(project: Project) -> list[VersionInfo]:
    client = connect(project)
    versions = client.search_model_versions(f"name = '{project.name}'")
    if not versions:
        return []
    # search_model_versions leaves ``aliases`` empty; the registered model holds them.
    held = client.get_registered_model(project.name).aliases or {}
    infos = [_info(v) for v in versions]
    infos = [replace(i, aliases=sorted(a for a, n in held.items() if str(n) == i.version)) for i in infos]
    return sorted(infos, key=lambda v: int(v.version))


def alias_version(project: Project, alias: str = CHAMPION) -> VersionInfo | None:
    client = connect(project)
    try:
        return _info(client.get_model_version_by_alias(project.name, alias))
    except MlflowException:
        return None


def set_alias(project: Project, version: str, alias: str = CHAMPION) -> None:
    """Move ``alias`` to ``version`` in one registry write, so readers never see it missing."""
    connect(project).set_registered_model_alias(project.name, alias, version)


def set_tag(project: Project, version: str, key: str, value: str) -> None:
    connect(project).set_model_version_tag(project.name, version, key, value)


def load_model(project: Project, version: str) -> Any:
    """The scikit-learn pipeline of one version."""
    connect(project)
    try:
        return mlflow.sklearn.load_model(f"models:/{project.name}/{version}")
    except (MlflowException, OSError) as exc:
        raise RegistryError(f"cannot load version {version} of {project.name!r}: {exc}") from None


def download_run_artifact(project: Project, run_id: str, path: str) -> str:
    connect(project)
    try:
        return str(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path))
    except (MlflowException, OSError) as exc:
        raise RegistryError(f"run {run_id} has no artifact {path!r}: {exc}") from None


def client(project: Project) -> MlflowClient:
    return connect(project)

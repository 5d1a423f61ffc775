"""The MLflow tracking store of a project: where runs, models and versions are written."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mloop.errors import TrackingError
from mloop.project import Project

# MLflow logs alembic migrations and artifact-store chatter at INFO on first use; users never need it.
for _name in ("alembic", "mlflow.store.db.utils", "mlflow.tracking.fluent", "mlflow.store.model_registry"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def connect(project: Project) -> MlflowClient:
    """Point MLflow at the project's store and make sure its experiment exists."""
    if project.config.tracking.uri is None:
        project.ensure_workspace()
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    mlflow.set_tracking_uri(project.tracking_uri)
    mlflow.set_registry_uri(project.tracking_uri)
    try:
        client = MlflowClient(project.tracking_uri, project.tracking_uri)
        if client.get_experiment_by_name(project.experiment_name) is None:
            location = project.artifacts_dir.as_uri() if project.config.tracking.uri is None else None
            client.create_experiment(project.experiment_name, artifact_location=location)
    except MlflowException as exc:
        raise TrackingError(f"cannot use the MLflow store at {_safe(project.tracking_uri)}: {exc.message}") from None
    mlflow.set_experiment(project.experiment_name)
    return client


def _safe(uri: str) -> str:
    """The URI without any password, so it can be shown in a message or a log."""
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return uri


def git_sha(folder: Path) -> str | None:
    """The commit the project folder is at, if it is inside a git work tree."""
    try:
        out = subprocess.run(  # noqa: S603 - fixed argv, no shell
            ["git", "rev-parse", "HEAD"],  # noqa: S607 - git from PATH is what users expect
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and len(sha) == 40 else None

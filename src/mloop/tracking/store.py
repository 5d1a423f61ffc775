"""The MLflow tracking store of a project: where runs, models and versions are written."""

from __future__ import annotations

import importlib.util
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
# At least WARNING: never louder than the CLI's quieting (mloop.quiet) made a logger before this import.
for _name in ("alembic", "mlflow.store.db.utils", "mlflow.tracking.fluent", "mlflow.store.model_registry"):
    _logger = logging.getLogger(_name)
    _logger.setLevel(max(_logger.level, logging.WARNING))


def connect(project: Project) -> MlflowClient:
    """Point MLflow at the project's store and make sure its experiment exists."""
    if project.config.tracking.uri is None:
        project.ensure_workspace()
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    uri = sqlalchemy_url(project.tracking_uri)  # a PostgreSQL store straight from SQLAlchemy needs a driver
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        client = MlflowClient(uri, uri)
        if client.get_experiment_by_name(project.experiment_name) is None:
            location = project.artifacts_dir.as_uri() if project.config.tracking.uri is None else None
            client.create_experiment(project.experiment_name, artifact_location=location)
    except MlflowException as exc:
        raise TrackingError(f"cannot use the MLflow store at {safe_uri(project.tracking_uri)}: {exc.message}") from None
    mlflow.set_experiment(project.experiment_name)
    return client


def experiment_id(client: MlflowClient, project: Project) -> str | None:
    """The id of the project's experiment (``connect`` creates it), or None if it is gone."""
    experiment = client.get_experiment_by_name(project.experiment_name)
    return str(experiment.experiment_id) if experiment is not None else None


# Query parameters that carry a secret in the URIs MLflow stores take (libpq's password=, tokens on http).
_SECRET_PARAMS = ("password", "passwd", "pwd", "token", "secret", "key", "signature", "credential")


def safe_uri(uri: str) -> str:
    """The URI without any password, so it can be shown in a message or a log.

    User info (``user:pass@``) becomes ``***@``, and the value of any query parameter that names a secret
    becomes ``***``; an ``@`` in the path of a URI without user info is left as it is.
    """
    if "://" not in uri:
        return uri
    scheme, rest = uri.split("://", 1)
    authority, sep, tail = rest.partition("/")
    query = ""
    if "?" in authority:  # no path: "host?password=…"
        authority, query = authority.split("?", 1)
        query = "?" + query
    if "@" in authority:
        authority = "***@" + authority.rsplit("@", 1)[1]
    shown = f"{scheme}://{authority}{query}{sep}{tail}"
    if "?" not in shown:
        return shown
    base, _, params = shown.partition("?")
    masked = []
    for param in params.split("&"):
        name, eq, _value = param.partition("=")
        secret = eq and any(word in name.lower() for word in _SECRET_PARAMS)
        masked.append(f"{name}=***" if secret else param)
    return f"{base}?{'&'.join(masked)}"


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


def sqlalchemy_url(uri: str) -> str:
    """A PostgreSQL URI with a driver SQLAlchemy can load: psycopg 3 or psycopg2, whichever is installed.

    ``postgresql://`` means psycopg2 to SQLAlchemy; with only psycopg 3 installed (mloop's postgres
    extra) that fails, so the driver is named. An explicit ``+psycopg``/``+psycopg2`` is kept as written.
    """
    if not uri.startswith(("postgresql://", "postgres://")):
        return uri
    rest = uri.split("://", 1)[1]
    for module, driver in (("psycopg", "psycopg"), ("psycopg2", "psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return f"postgresql+{driver}://{rest}"
    raise TrackingError(f"{safe_uri(uri)} needs a PostgreSQL driver; install it with `pip install 'mloop[postgres]'`.")

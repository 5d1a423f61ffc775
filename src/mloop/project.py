"""A project: one ``mloop.yaml`` and the ``.mloop/`` workspace beside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mloop.config import MloopConfig, load_config

if TYPE_CHECKING:
    from mloop.data.predictions import PredictionLog

WORKSPACE = ".mloop"


@dataclass(frozen=True)
class Project:
    """Where a project's files live; every stage takes one of these."""

    root: Path
    config: MloopConfig

    @classmethod
    def load(cls, config_path: Path | str = "mloop.yaml") -> Project:
        path = Path(config_path).resolve()
        return cls(root=path.parent, config=load_config(path))

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def workspace(self) -> Path:
        return self.root / WORKSPACE

    @property
    def source(self) -> str:
        """The data source: a URI as written, or a path resolved against the project root."""
        src = self.config.data.source
        return src if "://" in src else str((self.root / src).resolve())

    @property
    def contract_path(self) -> Path:
        return self.root / self.config.data.contract

    @property
    def snapshots_dir(self) -> Path:
        return self.workspace / "snapshots"

    @property
    def quarantine_dir(self) -> Path:
        return self.workspace / "quarantine"

    @property
    def artifacts_dir(self) -> Path:
        return self.workspace / "artifacts"

    @property
    def tracking_uri(self) -> str:
        return self.config.tracking.uri or f"sqlite:///{self.workspace / 'mlflow.db'}"

    @property
    def experiment_name(self) -> str:
        return self.config.tracking.experiment or self.config.name

    @property
    def predictions_db(self) -> Path:
        """The SQLite prediction log, used unless ``monitor.predictions_url`` names a PostgreSQL one."""
        return self.workspace / "predictions.db"

    def has_prediction_log(self) -> bool:
        """Whether there is a log to read: a configured PostgreSQL one always is (opening creates the table)."""
        return self.config.monitor.predictions_url is not None or self.predictions_db.exists()

    def prediction_store(self) -> PredictionLog:
        """The prediction log, opened (and created if new) where the config says."""
        from mloop.data.predictions import open_prediction_store  # the log's modules load pandas: only when used

        return open_prediction_store(self.config.monitor.predictions_url or self.predictions_db)

    @property
    def audit_log(self) -> Path:
        return self.workspace / "audit.jsonl"

    @property
    def monitor_dir(self) -> Path:
        return self.workspace / "monitor"

    def ensure_workspace(self) -> None:
        for folder in (self.workspace, self.snapshots_dir, self.artifacts_dir, self.monitor_dir):
            folder.mkdir(parents=True, exist_ok=True)

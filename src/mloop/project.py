"""A project: one ``mloop.yaml`` and the ``.mloop/`` workspace beside it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mloop.config import MloopConfig, load_config
from mloop.errors import ConfigError

if TYPE_CHECKING:
    from mloop.data.contract import Contract
    from mloop.data.predictions import PredictionLog

WORKSPACE = ".mloop"


@dataclass(frozen=True)
class Project:
    """Where a project's files live; every stage takes one of these."""

    root: Path
    config: MloopConfig
    config_path: Path | None = None  # the file it was loaded from, named in messages; None: root/mloop.yaml

    @classmethod
    def load(cls, config_path: Path | str = "mloop.yaml") -> Project:
        path = Path(config_path).resolve()
        return cls(root=path.parent, config=load_config(path), config_path=path)

    @property
    def config_file(self) -> Path:
        return self.config_path or self.root / "mloop.yaml"

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

    def contract(self) -> Contract:
        """The data contract, refused if ``data.target`` no longer names its target.

        The contract owns the target once the first ingest has inferred it: validation, training, the gate,
        serving and retraining all read it there. A ``data.target`` edited since would otherwise go unseen
        (and the new target, a feature in the contract, would leak into the model's inputs), so every stage
        that reads both loads the contract through here.
        """
        from mloop.data.contract import load_contract  # pandas and pydantic: only for commands that use them

        contract = load_contract(self.contract_path)
        if contract.target != self.config.data.target:
            raise ConfigError(self._target_disagreement(contract))
        return contract

    def _target_disagreement(self, contract: Contract) -> str:
        wanted, owned = self.config.data.target, contract.target
        env = next((k for k in os.environ if k.upper() == "MLOOP_DATA__TARGET"), None)
        where = f"{env} (overriding {self.config_file})" if env else str(self.config_file)
        spec = contract.columns.get(wanted)
        role = f" ({wanted!r} has the role {spec.role} there)" if spec is not None else ""
        keep = f"unset {env} or set it to {owned}" if env else f"set `data.target: {owned}` in {self.config_file.name}"
        option = "" if self.config_file.name == "mloop.yaml" else f"-c {self.config_file.name} "
        return (
            f"data.target is {wanted!r} in {where}, but the data contract {self.contract_path} "
            f"(version {contract.version}) has the target {owned!r}{role}. The contract owns the target once "
            f"the first ingest has inferred it. To keep predicting {owned!r}, {keep}; to predict {wanted!r} "
            f"instead, run `mloop {option}contract set-target {wanted}`, which makes it the contract's target "
            "(checked against the latest snapshot) and bumps the contract's version."
        )

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

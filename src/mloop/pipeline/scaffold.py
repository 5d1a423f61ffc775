"""`mloop init`: write a working mloop.yaml for any tabular file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from mloop.config import DataConfig, MloopConfig, Task, dump_config
from mloop.data.sources import read_source
from mloop.errors import ConfigError


def guess_task(target: pd.Series) -> Task:
    """Regression for a numeric target with many distinct values, classification otherwise."""
    values = target.dropna()
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return "regression" if values.nunique() > max(20, len(values) // 50) else "classification"
    return "classification"


def init_project(
    folder: Path,
    source: str,
    target: str,
    task: Task | None = None,
    time_column: str | None = None,
    name: str | None = None,
) -> Path:
    """Create ``folder/mloop.yaml``; refuses to overwrite an existing one."""
    config_path = folder / "mloop.yaml"
    if config_path.exists():
        raise ConfigError(f"{config_path} already exists; edit it or choose another folder.")
    is_uri = "://" in source
    frame = read_source(source if is_uri else str(Path(source).resolve()))
    for what, column in (("--target", target), ("--time-column", time_column)):
        if column is not None and column not in frame.columns:
            raise ConfigError(
                f"{what} {column!r} is not a column of {source}; columns are: {', '.join(map(str, frame.columns))}"
            )
    folder.mkdir(parents=True, exist_ok=True)  # only now: a failed init leaves nothing behind
    if not is_uri:
        source = os.path.relpath(Path(source).resolve(), folder.resolve())
    project_name = name or re.sub(r"[^A-Za-z0-9_.-]+", "-", folder.resolve().name).strip("-.") or "model"
    config = MloopConfig(
        name=project_name,
        task=task or guess_task(frame[target]),
        data=DataConfig(source=source, target=target, time_column=time_column),
    )
    if time_column is None:
        config.split.strategy = "random"
    config_path.write_text(
        "# mloop project config: every key is documented in the README; unknown keys are errors.\n"
        + dump_config(config),
        encoding="utf-8",
    )
    gitignore = folder / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text(".mloop/\n", encoding="utf-8")
    return config_path

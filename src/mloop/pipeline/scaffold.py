"""`mloop init`: write a working mloop.yaml for any tabular file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import yaml
from pydantic import ValidationError

from mloop.config import DataConfig, MloopConfig, Task, dump_config
from mloop.data import versioning
from mloop.data.sources import read_source
from mloop.errors import ConfigError, MloopError

_HEADER = "# mloop project config: every key is documented in the README; unknown keys are errors.\n"


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
    *,
    query: str | None = None,
    dvc: bool | None = None,
    no_scm: bool = False,
) -> Path:
    """Create ``folder/mloop.yaml`` and ``dvc.yaml``; refuses to overwrite an existing project.

    ``dvc`` (default: when DVC is installed) also makes the folder a DVC repository, with git if it
    sits in a git work tree and ``no_scm`` is not set.
    """
    config_path = folder / "mloop.yaml"
    if config_path.exists():
        raise ConfigError(f"{config_path} already exists; edit it or choose another folder.")
    is_uri = "://" in source
    frame = read_source(source if is_uri else str(Path(source).resolve()), query)
    for what, column in (("--target", target), ("--time-column", time_column)):
        if column is not None and column not in frame.columns:
            raise ConfigError(
                f"{what} {column!r} is not a column of {source}; columns are: {', '.join(map(str, frame.columns))}"
            )
    if not is_uri:
        source = os.path.relpath(Path(source).resolve(), folder.resolve())
    # A registered model's name: letters, digits, "_", "." and "-", starting with a letter or digit.
    project_name = name or re.sub(r"[^A-Za-z0-9_.-]+", "-", folder.resolve().name).strip("-._") or "model"
    try:
        config = MloopConfig.from_file_values(  # not MLOOP_* overrides: they may hold secrets
            name=project_name,
            task=task or guess_task(frame[target]),
            data=DataConfig(source=source, target=target, time_column=time_column, query=query),
        )
    except ValidationError as exc:
        where = "--name" if name else f"the folder name {folder.name!r}"
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"cannot make a project config from {where}: {problems}. Pass a valid --name.") from None
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)  # only now: a failed init leaves nothing behind
    if time_column is None:
        config.split.strategy = "random"
    use_dvc = dvc if dvc is not None else versioning.available()
    if not use_dvc:
        config.data.versioning = "off"
    written = [config_path, folder / "dvc.yaml"]
    config_path.write_text(_HEADER + dump_config(config), encoding="utf-8")
    written[1].write_text(dvc_pipeline(source if not is_uri else None), encoding="utf-8")
    gitignore = folder / ".gitignore"
    if not gitignore.exists():
        # With git and DVC the snapshots' .dvc files must stay visible to git; otherwise ignore it all.
        with_git = use_dvc and not no_scm and versioning.git_root(folder) is not None
        gitignore.write_text(GITIGNORE if with_git else ".mloop/\n", encoding="utf-8")
        written.append(gitignore)
    if use_dvc and not (folder / ".dvc").is_dir():
        try:
            versioning.init_repo(folder, no_scm=no_scm)
        except MloopError:
            for path in written:
                path.unlink(missing_ok=True)
            if created and not any(folder.iterdir()):
                folder.rmdir()
            raise
    return config_path


# The workspace stays out of git except the snapshots folder, whose .dvc files are the data versions.
GITIGNORE = """\
/.mloop/*
!/.mloop/snapshots/
/.mloop/snapshots/*.validation.json
"""

_STAGES = ".mloop/stages"


def _stage(cmd: str, out: str, deps: list[str], always: bool = False) -> dict[str, object]:
    stage: dict[str, object] = {
        "cmd": f"mkdir -p {_STAGES} && {cmd}",
        "deps": deps,
        # small JSON results, kept in the workspace: DVC compares them but need not cache them
        "outs": [{f"{_STAGES}/{name}": {"cache": False}} for name in out.split()],
    }
    if always:
        stage["always_changed"] = True
    return stage


def dvc_pipeline(local_source: str | None) -> str:
    """``dvc.yaml`` whose stages are mloop commands, so ``dvc repro`` re-runs only what changed.

    A database or URL source cannot be hashed by DVC, so ingest then always runs; an unchanged result
    still leaves the later stages skipped.
    """
    j = _STAGES
    stages = {
        "ingest": _stage(
            f"mloop ingest --json > {j}/ingest.json",
            "ingest.json",
            [local_source, "mloop.yaml"] if local_source else ["mloop.yaml"],
            always=local_source is None,
        ),
        "validate": _stage(
            f"mloop validate --json > {j}/validate.json", "validate.json", [f"{j}/ingest.json", "contract.yaml"]
        ),
        "train": _stage(f"mloop train --json > {j}/train.json", "train.json", [f"{j}/validate.json", "mloop.yaml"]),
        "register": _stage(
            f"mloop register --json > {j}/register.json && mloop promote --json > {j}/promote.json",
            "register.json promote.json",
            [f"{j}/train.json"],
        ),
    }
    header = "# mloop pipeline for DVC: `dvc repro` re-runs the stages whose inputs changed and skips the rest.\n"
    return header + yaml.safe_dump({"stages": stages}, sort_keys=False, width=120)

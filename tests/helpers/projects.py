"""Project folders for tests: a frame written beside an ``mloop.yaml``, loaded as a ``Project``.

Every builder takes ``**sections``: each names a config section (``train={"estimator": "linear"}``) whose
keys are set over what the builder writes, key by key; ``None`` drops the section, and a value that is
not a dict (``name="x"``) replaces the top-level key.
"""

from __future__ import annotations

import copy
import hashlib
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from mloop.pipeline import stages
from mloop.pipeline.scaffold import init_project
from mloop.project import Project
from mloop.registry import versions
from mloop.registry.versions import VersionInfo

TARGET = "Sale_Price"  # the Ames target
TIME_COLUMN = "Year_Sold"
MAX_BATCH = 50  # serve.max_batch_size of write_project's config: a larger /v1/predict batch is 413
RELOAD_SECONDS = 0.5  # serve.reload_interval_seconds: a new champion is served within a second


def early_sales(ames: pd.DataFrame, rows: int | None = None, until: int = 2007) -> pd.DataFrame:
    """The first ``rows`` Ames sales up to the year ``until`` (all of them when ``rows`` is None), indexed 0…n."""
    early = ames[ames[TIME_COLUMN] <= until]
    return (early if rows is None else early.head(rows)).reset_index(drop=True)


def merge_sections(config: dict[str, Any], sections: dict[str, Any]) -> dict[str, Any]:
    """``config`` with ``sections`` set over it (see the module's docstring); ``config`` itself is not changed."""
    merged = copy.deepcopy(config)
    for section, values in sections.items():
        if values is None:
            merged.pop(section, None)
        elif isinstance(values, dict) and isinstance(merged.get(section), dict):
            merged[section] = {**merged[section], **values}
        else:
            merged[section] = copy.deepcopy(values)
    return merged


def write_config(root: Path, config: dict[str, Any], file_name: str = "mloop.yaml") -> Project:
    """``root/file_name`` holding ``config``, loaded (the folder is made if needed)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / file_name
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return Project.load(path)


def write_project(
    root: Path,
    frame: pd.DataFrame,
    name: str,
    task: str = "regression",
    target: str = TARGET,
    **sections: Any,
) -> Project:
    """``root/train.csv`` and a config tuned for fast tests: the temporal split on Year_Sold, the registry
    polled every 0.5 s, at most ``MAX_BATCH`` records a request."""
    config = {
        "name": name,
        "task": task,
        "data": {"source": "train.csv", "target": target, "time_column": TIME_COLUMN},
        "serve": {"reload_interval_seconds": RELOAD_SECONDS, "max_batch_size": MAX_BATCH},
    }
    root.mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "train.csv", index=False)
    return write_config(root, merge_sections(config, sections))


def example_config() -> dict[str, Any]:
    """The bundled house-prices example (``mloop.examples/house_prices.yaml``), as a dict."""
    text = files("mloop.examples").joinpath("house_prices.yaml").read_text(encoding="utf-8")
    config: dict[str, Any] = yaml.safe_load(text)
    return config


def example_project(root: Path, frame: pd.DataFrame, **sections: Any) -> Project:
    """The bundled house-prices example on ``root/train.csv`` (a small boosted model, no search), with the
    registry polled every 0.5 s."""
    config = example_config()
    config["data"]["source"] = "train.csv"
    config["serve"] = {"reload_interval_seconds": RELOAD_SECONDS}
    root.mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "train.csv", index=False)
    return write_config(root, merge_sections(config, sections))


def init_project_on(
    folder: Path,
    frame: pd.DataFrame,
    target: str = TARGET,
    *,
    data_file: str = "data/train.csv",
    project: str = "project",
    task: str | None = None,
    time_column: str | None = None,
    name: str | None = None,
    dvc: bool | None = None,
    no_scm: bool = False,
    **sections: Any,
) -> Project:
    """What ``mloop init`` makes: ``frame`` written to ``folder/data_file``, then ``init_project`` into
    ``folder/project`` (``dvc`` None: DVC when it is installed). ``sections``, if any, are then set in its
    ``mloop.yaml``."""
    source = folder / data_file
    source.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(source, index=False)
    path = init_project(
        folder / project,
        str(source),
        target,
        task=task,  # type: ignore[arg-type]
        time_column=time_column,
        name=name,
        dvc=dvc,
        no_scm=no_scm,
    )
    loaded = Project.load(path)
    return configure(loaded, **sections) if sections else loaded


def configure(project: Project, file_name: str | None = None, **sections: Any) -> Project:
    """``project``'s config with ``sections`` set, written back to its file, or to ``file_name`` beside it
    (a sibling config: the same workspace and store, as ``mloop -c FILE`` uses them)."""
    config = yaml.safe_load(project.config_file.read_text(encoding="utf-8"))
    return write_config(project.root, merge_sections(config, sections), file_name or project.config_file.name)


def train_champion(project: Project) -> Project:
    """``project`` after the whole loop (ingest → validate → train → register → gate) promoted its model."""
    result = stages.run(project)
    assert result.decision.promote, result.decision
    return project


def train_version(project: Project, csv: Path) -> VersionInfo:
    """A new version of ``project`` trained on ``csv`` (ingest → validate → train → register), not promoted."""
    ingested = stages.ingest(project, source=str(csv))
    snapshot, report = stages.validate(project, ingested.snapshot.hash)
    assert report.passed, report.summary()
    trained = stages.train_stage(project, snapshot.hash)
    return versions.register(project, trained.run_id)


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its SHA-256: compare two to show nothing stored was changed."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }

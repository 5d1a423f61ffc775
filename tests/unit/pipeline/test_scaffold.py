"""`mloop init` on a small CSV: the files it writes, what it guesses, and what a failed init leaves behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mloop.config import load_config
from mloop.data import versioning
from mloop.errors import ConfigError, MloopError, SourceError
from mloop.pipeline.scaffold import dvc_pipeline, guess_task, init_project


@pytest.fixture
def houses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path/data/houses.csv``: 30 sales with a price (many values), a year and a district (text)."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # never inside a git work tree
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "area": rng.integers(40, 200, 30),
            "year": np.repeat([2006, 2007, 2008], 10),
            "district": ["north", "south", "east"] * 10,
            "price": rng.uniform(50_000, 400_000, 30).round(2),
        }
    )
    path = tmp_path / "data" / "houses.csv"
    path.parent.mkdir()
    frame.to_csv(path, index=False)
    return path


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ---------------------------------------------------------------------------------- guess_task


def test_the_task_is_regression_only_for_a_numeric_target_with_many_values() -> None:
    cases = [
        (np.linspace(0.0, 1.0, 21), "regression"),  # 21 distinct numbers: more than 20
        (np.arange(20) % 20, "classification"),  # exactly 20 distinct: a class label
        (np.arange(4000) % 80, "classification"),  # 80 values in 4,000 rows: the bar is n // 50 = 80
        (np.arange(4000) % 81, "regression"),
        (np.array(["yes", "no"] * 30), "classification"),
        (np.array([True, False] * 30), "classification"),  # booleans are numbers to pandas, labels to mloop
        # 21 distinct prices among 2,021 rows: missing values do not raise the bar to 2021 // 50
        (np.array([*np.linspace(0.0, 1.0, 21), *[np.nan] * 2000]), "regression"),
    ]
    assert [guess_task(pd.Series(values)) for values, _ in cases] == [task for _, task in cases]


# --------------------------------------------------------------------------------- init_project


def test_init_writes_a_config_that_loads_with_the_task_guessed(houses: Path, tmp_path: Path) -> None:
    folder = tmp_path / "Houses 2025!"
    written = init_project(folder, str(houses), "price", dvc=False)
    assert written == folder / "mloop.yaml"
    assert listing(folder) == [".gitignore", "dvc.yaml", "mloop.yaml"]
    config = load_config(written)
    assert config.name == "Houses-2025"  # from the folder name, made valid
    assert config.task == "regression"
    assert config.data.target == "price"
    assert config.data.source == "../data/houses.csv"  # relative to the project, so the pair can move
    assert (folder / config.data.source).resolve() == houses.resolve()
    assert config.split.strategy == "random"  # no time column to split on
    assert config.data.versioning == "off"
    assert written.read_text(encoding="utf-8").startswith("# mloop project config")
    assert (folder / ".gitignore").read_text(encoding="utf-8") == ".mloop/\n"
    assert (folder / "dvc.yaml").read_text(encoding="utf-8") == dvc_pipeline("../data/houses.csv")


def test_init_with_a_time_column_a_text_target_and_a_name_keeps_the_users_gitignore(
    houses: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / ".gitignore").write_text("*.tmp\n", encoding="utf-8")
    written = init_project(folder, str(houses), "district", time_column="year", name="regions", dvc=False)
    config = load_config(written)
    assert (config.name, config.task) == ("regions", "classification")
    assert config.data.time_column == "year"
    assert config.split.strategy == "temporal"
    assert (folder / ".gitignore").read_text(encoding="utf-8") == "*.tmp\n"


def test_init_refuses_to_overwrite_a_project(houses: Path, tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "mloop.yaml").write_text("name: mine\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="already exists"):
        init_project(folder, str(houses), "price", dvc=False)
    assert listing(folder) == ["mloop.yaml"]
    assert (folder / "mloop.yaml").read_text(encoding="utf-8") == "name: mine\n"


@pytest.mark.parametrize(
    ("target", "time_column", "error", "message"),
    [
        ("Price", None, ConfigError, "--target 'Price' is not a column of"),
        ("price", "sold", ConfigError, "--time-column 'sold' is not a column of"),
        ("price", None, SourceError, ""),  # the source itself cannot be read
    ],
)
def test_a_failed_init_leaves_no_folder_behind(
    houses: Path, tmp_path: Path, target: str, time_column: str | None, error: type[MloopError], message: str
) -> None:
    source = str(houses) if error is ConfigError else str(tmp_path / "missing.csv")
    folder = tmp_path / "new" / "project"
    with pytest.raises(error) as caught:
        init_project(folder, source, target, time_column=time_column, dvc=False)
    assert message in caught.value.message
    if error is ConfigError:
        assert "columns are: area, year, district, price" in caught.value.message
    assert not (tmp_path / "new").exists()


def test_a_failed_dvc_init_removes_the_files_init_wrote(
    houses: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(root: Path, remote: str | None = None, no_scm: bool = False) -> str:
        raise SourceError(f"DVC could not initialise a repository in {root}: disk full")

    monkeypatch.setattr(versioning, "init_repo", broken)
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / ".gitignore").write_text("*.tmp\n", encoding="utf-8")  # the user's, not init's
    with pytest.raises(SourceError, match="disk full"):
        init_project(folder, str(houses), "price", dvc=True)
    assert listing(folder) == [".gitignore"]
    assert (folder / ".gitignore").read_text(encoding="utf-8") == "*.tmp\n"


def test_a_folder_name_that_starts_with_a_symbol_still_gives_a_valid_project_name(houses: Path, tmp_path: Path) -> None:
    folder = tmp_path / "_houses"
    init_project(folder, str(houses), "price", dvc=False)
    assert load_config(folder / "mloop.yaml").name == "houses"


def test_an_invalid_name_is_a_config_error_naming_it_and_leaves_no_folder(houses: Path, tmp_path: Path) -> None:
    folder = tmp_path / "houses"
    with pytest.raises(ConfigError, match=r"--name.*name:.*Pass a valid --name"):
        init_project(folder, str(houses), "price", name="_bad name", dvc=False)
    assert not folder.exists()


# ---------------------------------------------------------------------------------- dvc.yaml


def test_dvc_yaml_runs_the_stages_in_order_and_hashes_only_a_local_source() -> None:
    stages = yaml.safe_load(dvc_pipeline("../data/houses.csv"))["stages"]
    assert list(stages) == ["ingest", "validate", "train", "register"]
    assert stages["ingest"]["deps"] == ["../data/houses.csv", "mloop.yaml"]
    assert "always_changed" not in stages["ingest"]
    assert stages["register"]["cmd"].endswith("mloop promote --json > .mloop/stages/promote.json")
    for name, stage in stages.items():
        assert stage["cmd"].startswith("mkdir -p .mloop/stages && mloop ")
        assert all(next(iter(out.values())) == {"cache": False} for out in stage["outs"]), name
    # each stage depends on the result of the one before it
    assert stages["validate"]["deps"][0] == ".mloop/stages/ingest.json"
    assert stages["train"]["deps"][0] == ".mloop/stages/validate.json"
    assert stages["register"]["deps"] == [".mloop/stages/train.json"]
    # a database or URL source cannot be hashed by DVC: ingest always runs
    remote = yaml.safe_load(dvc_pipeline(None))["stages"]["ingest"]
    assert remote["deps"] == ["mloop.yaml"] and remote["always_changed"] is True

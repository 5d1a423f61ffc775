from __future__ import annotations

import os
from pathlib import Path

import pytest

from mloop.cli.main import exit_code
from mloop.config import MloopConfig, dump_config, load_config, parse_config
from mloop.errors import ConfigError

VALID = """\
name: house-prices
task: regression
data:
  source: data/ames.csv
  target: Sale_Price
  time_column: Year_Sold
  exclude: [Longitude, Latitude]
split:
  strategy: temporal
  test_fraction: 0.25
train:
  estimator: random_forest
  params: {n_estimators: 50}
  seed: 7
gate:
  metric: mae
  min_improvement: 0.01
serve:
  host: 10.1.2.3
  port: 8100
"""

MINIMAL = """\
name: churn
data:
  source: churn.csv
  target: churned
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's MLOOP_* variables must not leak into these tests."""
    for key in list(os.environ):
        if key.upper().startswith("MLOOP_"):
            monkeypatch.delenv(key)


def write(tmp_path: Path, text: str, name: str = "mloop.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert exit_code(info.value) == 2
    return info.value.message


# --------------------------------------------------------------------------------------- valid


def test_valid_config_loads_every_section(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    assert config.name == "house-prices"
    assert config.data.target == "Sale_Price"
    assert config.data.time_column == "Year_Sold"
    assert config.data.exclude == ["Longitude", "Latitude"]
    assert config.data.contract == "contract.yaml"  # default kept
    assert config.split.test_fraction == 0.25
    assert config.train.estimator == "random_forest"
    assert config.train.params == {"n_estimators": 50}
    assert config.train.seed == 7
    assert config.gate.min_improvement == 0.01
    assert (config.serve.host, config.serve.port) == ("10.1.2.3", 8100)
    assert config.serve.workers == 1  # default of a section that is only partly given


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.task == "regression"
    assert config.split.strategy == "temporal"
    assert config.train.estimator == "hist_gradient_boosting"
    assert config.serve.port == 8000
    assert config.tracking.uri is None


def test_dump_config_round_trips(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    again = load_config(write(tmp_path, dump_config(config), "again.yaml"))
    assert again == config


# ---------------------------------------------------------------------------------- unknown keys


def test_misspelt_top_level_key_names_key_file_and_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "trian:\n  seed: 3\n")
    message = config_error(path)
    assert str(path) in message
    assert "trian" in message
    assert "unknown key" in message
    assert "did you mean 'train'" in message


def test_misspelt_nested_key_names_dotted_key_and_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "name: churn\ndata:\n  source: churn.csv\n  targte: churned\n")
    message = config_error(path)
    assert str(path) in message
    assert "data.targte: unknown key" in message
    assert "did you mean 'data.target'" in message
    # the misspelling also leaves the real key missing; both are reported at once
    assert "data.target: required key is missing" in message


def test_misspelt_key_deeper_in_a_section(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, MINIMAL + "serve:\n  prot: 9000\n"))
    assert "serve.prot: unknown key" in message
    assert "did you mean 'serve.port'" in message


def test_unknown_key_without_a_close_match_has_no_suggestion(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, MINIMAL + "kubernetes: true\n"))
    assert "kubernetes: unknown key" in message
    assert "did you mean" not in message


# ------------------------------------------------------------------------- missing / wrong values


def test_missing_required_section(tmp_path: Path) -> None:
    path = write(tmp_path, "name: churn\n")
    message = config_error(path)
    assert str(path) in message
    assert "data: required key is missing" in message


def test_missing_required_name(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, "data: {source: a.csv, target: y}\n"))
    assert "name: required key is missing" in message


@pytest.mark.parametrize(
    ("extra", "key", "shown"),
    [
        ("serve:\n  port: eighty\n", "serve.port", "'eighty'"),
        ("serve:\n  port: 70000\n", "serve.port", "70000"),
        ("split:\n  test_fraction: 2\n", "split.test_fraction", "2"),
        ("task: clustering\n", "task", "'clustering'"),
        ("train:\n  estimator: catboost\n", "train.estimator", "'catboost'"),
        ("data2: 1\n", "data2", ""),
    ],
)
def test_wrong_value_names_key_and_value(tmp_path: Path, extra: str, key: str, shown: str) -> None:
    message = config_error(write(tmp_path, MINIMAL + extra))
    assert f"  {key}:" in message
    assert shown in message


def test_project_name_must_be_usable_as_a_model_name(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, MINIMAL.replace("name: churn", "name: 'my model!'")))
    assert "name:" in message
    assert "'my model!'" in message


def test_unknown_gate_metric_lists_the_known_ones(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, MINIMAL + "gate:\n  metric: rsme\n"))
    assert "'rsme'" in message
    assert "rmse" in message and "log_loss" in message


# ------------------------------------------------------------------------------- bad files


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "name: churn\ndata: [source: a.csv\n")
    message = config_error(path)
    assert str(path) in message
    assert "not valid YAML" in message


@pytest.mark.parametrize("text", ["- name: churn\n- data: {}\n", "just a sentence\n", "42\n", ""])
def test_non_mapping_document_is_refused(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    message = config_error(path)
    assert str(path) in message
    assert "mapping" in message


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "mloop.yaml"
    message = config_error(path)
    assert str(path) in message
    assert "mloop init" in message


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    folder = tmp_path / "mloop.yaml"
    folder.mkdir()
    assert str(folder) in config_error(folder)


def test_parse_config_reports_the_given_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"inline\.yaml is not a valid mloop config"):
        parse_config({"name": "x"}, "inline.yaml")


# ---------------------------------------------------------------------------------- environment


def test_environment_overrides_one_value_and_keeps_the_rest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, VALID)
    monkeypatch.setenv("MLOOP_SERVE__PORT", "9001")
    config = load_config(path)
    assert config.serve.port == 9001
    assert config.serve.host == "10.1.2.3"  # the rest of the file's section survives the override
    assert config.data.target == "Sale_Price"


def test_environment_overrides_top_level_and_nested_strings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOOP_TASK", "classification")
    monkeypatch.setenv("MLOOP_TRACKING__URI", "sqlite:////tmp/elsewhere.db")
    config = load_config(write(tmp_path, MINIMAL))
    assert config.task == "classification"
    assert config.tracking.uri == "sqlite:////tmp/elsewhere.db"


def test_the_cli_config_variable_is_not_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``MLOOP_CONFIG`` names the file for the CLI; it must not be read as an unknown setting."""
    path = write(tmp_path, MINIMAL)
    monkeypatch.setenv("MLOOP_CONFIG", str(path))
    assert load_config(path).name == "churn"


def test_bad_environment_value_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOOP_SERVE__PORT", "not-a-port")
    message = config_error(write(tmp_path, MINIMAL))
    assert "serve.port" in message
    assert "MLOOP_SERVE__PORT" in message  # the file is fine: say where the bad value came from


# ------------------------------------------------------------------------------ primary metric


@pytest.mark.parametrize(
    ("task", "metric", "expected"),
    [
        ("regression", None, "rmse"),
        ("classification", None, "log_loss"),
        ("regression", "mae", "mae"),
        ("classification", "roc_auc", "roc_auc"),
    ],
)
def test_primary_metric_defaults_by_task(task: str, metric: str | None, expected: str) -> None:
    config = MloopConfig(
        name="m",
        task=task,  # type: ignore[arg-type]
        data={"source": "a.csv", "target": "y"},  # type: ignore[arg-type]
        gate={"metric": metric},  # type: ignore[arg-type]
    )
    assert config.primary_metric == expected


def test_a_config_for_a_file_ignores_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOOP_TRACKING__URI", "postgresql://mloop:s3cret@db.internal/mlflow")
    values = {"name": "houses", "data": {"source": "a.csv", "target": "y"}}
    assert MloopConfig(**values).tracking.uri == "postgresql://mloop:s3cret@db.internal/mlflow"  # served config
    assert MloopConfig.from_file_values(**values).tracking.uri is None
    assert MloopConfig(**values).tracking.uri is not None  # the switch does not stick


def test_init_never_writes_environment_overrides_into_mloop_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mloop.pipeline.scaffold import init_project

    source = tmp_path / "houses.csv"
    source.write_text("area,price\n50,100\n60,120\n70,150\n80,170\n")
    monkeypatch.setenv("MLOOP_TRACKING__URI", "postgresql://mloop:s3cret@db.internal/mlflow")
    monkeypatch.setenv("MLOOP_MONITOR__PREDICTIONS_URL", "postgresql://mloop:s3cret@db.internal/log")
    written = init_project(tmp_path / "project", str(source), "price", dvc=False, no_scm=True)
    text = written.read_text()
    assert "s3cret" not in text and "postgresql" not in text
    assert "target: price" in text

"""Training, tracking and the registry gate against a real MLflow SQLite store in the project's .mloop/."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from sklearn.datasets import load_breast_cancer, load_iris
from tests.helpers.projects import configure, init_project_on

from mloop.data.contract import coerce_frame, load_contract
from mloop.errors import ContractError, RegistryError, TrainError
from mloop.pipeline import stages
from mloop.project import Project
from mloop.registry import audit, gate, versions
from mloop.registry.versions import CHALLENGER, CHAMPION, VersionInfo
from mloop.train.split import holdout_split
from mloop.train.trainer import TrainResult, labelled

pytestmark = pytest.mark.integration

METRICS = ("rmse", "mae", "mape", "r2")


def mlflow_client(project: Project) -> MlflowClient:
    return MlflowClient(project.tracking_uri, project.tracking_uri)


def events(project: Project) -> list[dict[str, object]]:
    return audit.read(project.audit_log)


# ------------------------------------------------------------------------ one Ames regression project


@pytest.fixture(scope="module")
def ames_project(tmp_path_factory: pytest.TempPathFactory, ames: pd.DataFrame) -> Project:
    sample = ames.sample(700, random_state=11)  # sales from all five years, shuffled
    return init_project_on(tmp_path_factory.mktemp("ames"), sample, "Sale_Price", time_column="Year_Sold")


@dataclass(frozen=True)
class FirstRun:
    result: stages.RunResult
    champion: VersionInfo | None
    versions: list[VersionInfo]
    audit: list[dict[str, object]]


@pytest.fixture(scope="module")
def first(ames_project: Project) -> FirstRun:
    result = stages.run(ames_project)
    return FirstRun(
        result,
        versions.alias_version(ames_project, CHAMPION),
        versions.list_versions(ames_project),
        events(ames_project),
    )


def test_store_is_the_projects_sqlite_file(ames_project: Project, first: FirstRun) -> None:
    db = ames_project.root / ".mloop" / "mlflow.db"
    assert ames_project.tracking_uri == f"sqlite:///{db}"
    assert db.is_file() and db.stat().st_size > 0
    assert (ames_project.root / ".mloop" / "artifacts").is_dir()
    assert ames_project.contract_path.is_file()  # inferred on the first ingest


def test_first_version_is_champion_with_lineage_tags(ames_project: Project, first: FirstRun) -> None:
    result = first.result
    assert [(v.version, v.aliases) for v in first.versions] == [("1", [CHAMPION])]
    assert first.champion is not None and first.champion.version == "1"
    assert result.decision.promote
    tags = first.champion.tags
    assert tags["mloop.data_hash"] == result.snapshot.hash
    assert tags["mloop.contract_hash"] == load_contract(ames_project.contract_path).hash()
    assert float(tags["mloop.metric.rmse"]) == pytest.approx(result.trained.metrics["rmse"])
    assert first.champion.metric("r2") == pytest.approx(result.trained.metrics["r2"])
    decision = json.loads(tags["mloop.gate"])
    assert decision["promote"] is True
    assert decision["metric"] == "rmse"
    assert decision["champion_version"] is None
    assert decision["challenger_value"] == pytest.approx(result.trained.metrics["rmse"])
    assert "no champion yet" in decision["reason"]


def test_the_model_learns_something(first: FirstRun) -> None:
    metrics, baseline = first.result.trained.metrics, first.result.trained.baseline
    assert set(METRICS) <= set(metrics)
    assert metrics["rmse"] < 0.7 * baseline["rmse"]  # far better than predicting the mean price
    assert metrics["r2"] > 0.6


def test_temporal_split_holds_out_the_latest_sales(ames_project: Project, first: FirstRun) -> None:
    trained = first.result.trained
    assert (trained.rows_train, trained.rows_test) == (560, 140)  # 20% of 700 held out
    snapshot = first.result.snapshot.read()
    train_part, test_part = holdout_split(snapshot, 0.2, "Year_Sold", seed=0)
    assert train_part["Year_Sold"].max() <= test_part["Year_Sold"].min()
    assert (test_part["Year_Sold"] == 2010).sum() == (snapshot["Year_Sold"] == 2010).sum()
    # the holdout logged with the model is exactly that most recent part
    holdout = pd.read_parquet(mlflow_client(ames_project).download_artifacts(trained.run_id, "holdout.parquet"))
    assert holdout["Sale_Price"].tolist() == test_part["Sale_Price"].tolist()
    assert "Year_Sold" not in holdout.columns  # the time column orders rows, it is not a feature


def test_run_logs_the_dataset_input(ames_project: Project, first: FirstRun) -> None:
    run = mlflow_client(ames_project).get_run(first.result.trained.run_id)
    inputs = run.inputs.dataset_inputs
    assert len(inputs) == 1
    dataset = inputs[0].dataset
    snapshot = first.result.snapshot
    assert dataset.digest == snapshot.hash[: len(dataset.digest)]
    assert len(dataset.digest) >= 12
    assert snapshot.hash[:12] in dataset.name
    assert snapshot.hash in dataset.source or snapshot.source in dataset.source
    tags = {t.key: t.value for t in inputs[0].tags}
    assert tags.get("mlflow.data.context") == "training"
    assert tags["mloop.contract_hash"] == run.data.tags["mloop.contract_hash"]
    assert json.loads(dataset.schema)["mlflow_colspec"]  # the schema comes with the dataset
    assert run.data.tags["mloop.data_hash"] == snapshot.hash


def test_run_logs_params_and_artifacts(ames_project: Project, first: FirstRun) -> None:
    client = mlflow_client(ames_project)
    run_id = first.result.trained.run_id
    run = client.get_run(run_id)
    assert run.data.params["estimator"] == "hist_gradient_boosting"
    assert run.data.params["time_column"] == "Year_Sold"
    assert run.data.metrics["rmse"] == pytest.approx(first.result.trained.metrics["rmse"])
    names = {a.path for a in client.list_artifacts(run_id)}
    assert {"holdout.parquet", "reference_profile.json", "contract.yaml"} <= names
    contract_text = Path(client.download_artifacts(run_id, "contract.yaml")).read_text()
    assert contract_text == ames_project.contract_path.read_text()
    profile = json.loads(Path(client.download_artifacts(run_id, "reference_profile.json")).read_text())
    assert "Gr_Liv_Area" in json.dumps(profile)


def test_registered_model_loads_and_predicts_prices(ames_project: Project, first: FirstRun) -> None:
    client = mlflow_client(ames_project)
    run = client.get_run(first.result.trained.run_id)
    model_outputs = run.outputs.model_outputs if run.outputs else []
    artifacts = {a.path for a in client.list_artifacts(first.result.trained.run_id)}
    assert model_outputs or "model" in artifacts  # MLflow 3 logs the model as the run's output
    model = versions.load_model(ames_project, "1")
    holdout = gate.holdout_of(ames_project, versions.get_version(ames_project, "1"))
    contract = gate.version_contract(ames_project, versions.get_version(ames_project, "1"))
    predictions = model.predict(coerce_frame(holdout.head(20), contract))
    assert len(predictions) == 20
    assert 20_000 < float(pd.Series(predictions).median()) < 600_000


def test_model_signature_follows_the_contract(ames_project: Project, first: FirstRun) -> None:
    """A text column that is mostly missing (Misc_Feature) must still be typed as text for MLflow's server."""
    info = mlflow.models.get_model_info(f"models:/{ames_project.name}/1")
    assert info.signature is not None
    types = {c.name: c.type.name for c in info.signature.inputs.inputs}
    contract = load_contract(ames_project.contract_path)
    assert set(types) == set(contract.features)
    assert {types[c] for c in contract.categorical_features} == {"string"}
    assert {types[c] for c in contract.numeric_features} <= {"double", "long"}
    assert types["Misc_Feature"] == "string"


def test_the_input_example_is_served_as_mlflow_serves_it(ames_project: Project, first: FirstRun) -> None:
    """What MLflow's log_model would check (mloop skips it there, to log faster): the saved serving example
    parsed by the scoring server's code against the signature, predicted by the pyfunc model."""
    from mlflow.models.utils import _validate_serving_input  # log_model's own check

    local = Path(mlflow.artifacts.download_artifacts(f"models:/{ames_project.name}/1"))
    served = _validate_serving_input(str(local), (local / "serving_input_example.json").read_text())
    example = pd.read_json(local / "input_example.json", orient="split")
    contract = load_contract(ames_project.contract_path)
    expected = versions.load_model(ames_project, "1").predict(coerce_frame(example, contract))
    assert np.allclose(np.asarray(served, dtype=float).ravel(), expected)


# --------------------------------------------------------------------------------- reproducibility


@pytest.fixture(scope="module")
def retrained(ames_project: Project, first: FirstRun) -> TrainResult:
    """The same snapshot, config and seed trained a second time (logged, not yet registered)."""
    return stages.train_stage(ames_project)


def test_same_data_config_and_seed_give_the_same_metrics(first: FirstRun, retrained: TrainResult) -> None:
    assert retrained.run_id != first.result.trained.run_id
    assert retrained.data_hash == first.result.snapshot.hash
    for name in METRICS:
        assert retrained.metrics[name] == first.result.trained.metrics[name], name
    assert retrained.baseline == first.result.trained.baseline


# ------------------------------------------------------------------------------- a worse challenger


@dataclass(frozen=True)
class Rejected:
    decision: object
    version: VersionInfo
    champion: VersionInfo | None
    versions: list[VersionInfo]
    audit: list[dict[str, object]]


@pytest.fixture(scope="module")
def rejected(ames_project: Project, first: FirstRun) -> Rejected:
    weak = configure(ames_project, "weak.yaml", train={"params": {"max_iter": 3}})
    trained = stages.train_stage(weak)
    registered = versions.register(weak, trained.run_id)
    decision = gate.promote(weak, registered.version)
    return Rejected(
        decision,
        versions.get_version(weak, registered.version),
        versions.alias_version(weak, CHAMPION),
        versions.list_versions(weak),
        events(weak),
    )


def test_worse_challenger_is_not_promoted(first: FirstRun, rejected: Rejected) -> None:
    assert rejected.version.version == "2"
    assert not rejected.decision.promote  # type: ignore[attr-defined]
    assert rejected.champion is not None and rejected.champion.version == "1"
    assert rejected.version.aliases == [CHALLENGER]
    # the listing `mloop models` shows carries the aliases too
    assert [(v.version, v.aliases) for v in rejected.versions] == [("1", [CHAMPION]), ("2", [CHALLENGER])]
    gate_tag = json.loads(rejected.version.tags["mloop.gate"])
    assert gate_tag["promote"] is False
    assert gate_tag["champion_version"] == "1"
    assert gate_tag["challenger_value"] > gate_tag["champion_value"]  # rmse: lower is better
    # both were scored on the challenger's holdout, which is the champion's: same snapshot, same split
    assert gate_tag["champion_value"] == pytest.approx(first.result.trained.metrics["rmse"])
    assert "does not beat champion v1" in gate_tag["reason"]


def test_rejection_is_audited(rejected: Rejected) -> None:
    last = rejected.audit[-1]
    assert last["event"] == "reject"
    assert last["version"] == "2"
    assert last["previous"] == "1"
    assert last["forced"] is False
    assert "does not beat" in str(last["reason"])
    assert [e["event"] for e in rejected.audit] == ["promote", "reject"]


def test_promoting_the_champion_again_is_refused(ames_project: Project, rejected: Rejected) -> None:
    champion = versions.alias_version(ames_project, CHAMPION)
    assert champion is not None
    with pytest.raises(RegistryError, match="already the champion"):
        gate.promote(ames_project, champion.version)


def test_unknown_version_is_a_registry_error(ames_project: Project, first: FirstRun) -> None:
    with pytest.raises(RegistryError, match="no version '99'"):
        gate.promote(ames_project, "99")


# ----------------------------------------------------------- forced promotion and rollback (mutates)


def test_forced_promotion_then_rollback_walks_back(
    ames_project: Project, rejected: Rejected, retrained: TrainResult
) -> None:
    assert versions.alias_version(ames_project, CHAMPION).version == "1"  # type: ignore[union-attr]

    forced = gate.promote(ames_project, "2", force=True, reason="hotfix: v1 misprices new builds")
    assert not forced.promote  # the gate still says no ...
    assert versions.alias_version(ames_project, CHAMPION).version == "2"  # type: ignore[union-attr]
    record = events(ames_project)[-1]
    assert (record["event"], record["version"], record["previous"]) == ("promote", "2", "1")
    assert record["forced"] is True
    assert record["reason"] == "hotfix: v1 misprices new builds"

    # the retrained model (as good as v1) beats the forced, weak v2 on its own
    v3 = versions.register(ames_project, retrained.run_id)
    assert v3.version == "3"
    assert gate.promote(ames_project, "3").promote
    assert versions.alias_version(ames_project, CHAMPION).version == "3"  # type: ignore[union-attr]
    assert events(ames_project)[-1]["forced"] is False

    assert gate.rollback(ames_project, reason="v3 alerts") == ("3", "2")
    assert versions.alias_version(ames_project, CHAMPION).version == "2"  # type: ignore[union-attr]
    assert gate.rollback(ames_project) == ("2", "1")
    assert versions.alias_version(ames_project, CHAMPION).version == "1"  # type: ignore[union-attr]
    with pytest.raises(RegistryError, match="no earlier champion"):
        gate.rollback(ames_project)
    assert versions.alias_version(ames_project, CHAMPION).version == "1"  # type: ignore[union-attr]

    log = events(ames_project)
    assert [e["event"] for e in log] == ["promote", "reject", "promote", "promote", "rollback", "rollback"]
    assert log[4] == {**log[4], "version": "2", "previous": "3", "reason": "v3 alerts"}
    assert all(e["model"] == ames_project.name and e["ts"] for e in log)
    # the audit log is append-only JSON lines: one line per decision
    assert len(ames_project.audit_log.read_text().splitlines()) == 6


def test_rollback_without_champion(tmp_path: Path) -> None:
    project = Project.load(_write_bare_config(tmp_path))
    with pytest.raises(RegistryError, match="no champion"):
        gate.rollback(project)
    with pytest.raises(RegistryError, match="No registered versions"):
        gate.promote(project)


def _write_bare_config(folder: Path) -> Path:
    path = folder / "mloop.yaml"
    path.write_text(yaml.safe_dump({"name": "empty", "data": {"source": "none.csv", "target": "y"}}))
    return path


# -------------------------------------------------------------------- contract rejection, no MLflow


@pytest.fixture
def small_project(tmp_path: Path, ames: pd.DataFrame) -> Project:
    project = init_project_on(tmp_path, ames.iloc[:400], "Sale_Price", time_column="Year_Sold")
    stages.ingest(project)
    return project


def broken_batch(ames: pd.DataFrame, folder: Path) -> Path:
    batch = ames.iloc[400:800].astype({"Gr_Liv_Area": object})
    batch.loc[batch.index[:7], "Gr_Liv_Area"] = "see listing"
    path = folder / "batch.csv"
    batch.to_csv(path, index=False)
    return path


def test_rejected_snapshot_is_quarantined_and_never_trained_on(
    small_project: Project, ames: pd.DataFrame, tmp_path: Path
) -> None:
    good = stages.validate(small_project)[0]
    bad = stages.ingest(small_project, str(broken_batch(ames, tmp_path))).snapshot
    assert bad.hash != good.hash

    snapshot, report = stages.validate(small_project)
    assert snapshot.hash == bad.hash
    assert not report.passed
    folder = small_project.root / ".mloop" / "quarantine" / bad.hash
    saved = json.loads((folder / "report.json").read_text())
    assert saved["passed"] is False
    assert saved["snapshot"] == bad.hash
    [violation] = [v for v in saved["violations"] if v["severity"] == "error"]
    assert (violation["column"], violation["check"], violation["count"]) == ("Gr_Liv_Area", "dtype", 7)
    assert pd.read_parquet(folder / "data.parquet").shape == (400, 74)

    with pytest.raises(ContractError) as info:
        stages.train_stage(small_project)
    assert bad.hash[:12] in info.value.message
    assert "quarantine" in info.value.message
    assert not (small_project.root / ".mloop" / "mlflow.db").exists()  # refused before touching MLflow
    assert not (small_project.quarantine_dir / good.hash).exists()


def test_unvalidated_bad_snapshot_is_checked_before_training(
    small_project: Project, ames: pd.DataFrame, tmp_path: Path
) -> None:
    bad = stages.ingest(small_project, str(broken_batch(ames, tmp_path))).snapshot
    with pytest.raises(ContractError, match="rejected by the data contract"):
        stages.train_stage(small_project, bad.hash[:10])
    assert (small_project.quarantine_dir / bad.hash / "report.json").is_file()


def test_run_stops_at_a_contract_violation_and_names_the_column(
    small_project: Project, ames: pd.DataFrame, tmp_path: Path
) -> None:
    with pytest.raises(ContractError) as info:
        stages.run(small_project, str(broken_batch(ames, tmp_path)))
    assert "'Gr_Liv_Area'" in info.value.message
    assert "7 values that are not integer" in info.value.message
    assert str(small_project.contract_path) in info.value.message


# ------------------------------------------------------------------------------ missing target column


def test_missing_target_column_is_a_clear_error(tmp_path: Path, ames: pd.DataFrame) -> None:
    project = configure(init_project_on(tmp_path, ames.iloc[:300], "Sale_Price"), data={"target": "SalePrice"})
    with pytest.raises(ContractError) as info:
        stages.run(project)
    assert "'SalePrice'" in info.value.message
    assert "Sale_Price" in info.value.message  # the columns there are, to spot the typo
    assert not project.contract_path.exists()  # no contract inferred around the wrong target


def test_training_frame_without_the_target(ames: pd.DataFrame) -> None:
    with pytest.raises(TrainError) as info:
        labelled(ames.iloc[:50].drop(columns=["Sale_Price"]), "Sale_Price")
    assert "'Sale_Price'" in info.value.message
    assert "data.target" in info.value.message
    with pytest.raises(TrainError, match="no values"):
        labelled(ames.iloc[:50].assign(Sale_Price=None), "Sale_Price")


# ----------------------------------------------------------------------------------- classification

CLASSIFICATION = ("accuracy", "f1", "roc_auc", "log_loss")


def test_binary_classification_end_to_end(tmp_path: Path) -> None:
    frame = load_breast_cancer(as_frame=True).frame  # 569 rows, 30 numeric features, target 0/1
    project = init_project_on(tmp_path, frame, "target")
    assert project.config.task == "classification"  # guessed from a 0/1 column
    assert project.config.split.strategy == "random"
    result = stages.run(project)
    metrics = result.trained.metrics
    assert set(CLASSIFICATION) <= set(metrics)
    assert metrics["accuracy"] > 0.9 and metrics["roc_auc"] > 0.95
    assert metrics["log_loss"] < 0.3
    assert metrics["accuracy"] > result.trained.baseline["accuracy"]
    champion = versions.alias_version(project, CHAMPION)
    assert champion is not None and champion.version == "1"
    assert json.loads(champion.tags["mloop.gate"])["metric"] == "log_loss"
    assert champion.tags["mloop.task"] == "classification"
    assert champion.metric("roc_auc") == pytest.approx(metrics["roc_auc"])
    # classification evaluation plots are run artifacts
    client = mlflow_client(project)
    plots = {a.path for a in client.list_artifacts(result.trained.run_id, "plots")}
    assert plots == {"plots/confusion_matrix.png", "plots/calibration.png"}


def test_multiclass_classification_end_to_end(tmp_path: Path) -> None:
    iris = load_iris(as_frame=True)
    frame = iris.frame.assign(species=[iris.target_names[i] for i in iris.target]).drop(columns=["target"])
    project = init_project_on(tmp_path, frame, "species")
    assert project.config.task == "classification"  # a text target
    result = stages.run(project)
    metrics = result.trained.metrics
    assert set(CLASSIFICATION) <= set(metrics)
    assert metrics["accuracy"] > 0.8
    assert 0.0 <= metrics["log_loss"] < 1.0
    model = versions.load_model(project, "1")
    assert sorted(str(c) for c in model.classes_) == ["setosa", "versicolor", "virginica"]
    assert versions.alias_version(project, CHAMPION).version == "1"  # type: ignore[union-attr]

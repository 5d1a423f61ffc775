"""Every check of the promotion gate against a real MLflow store, on Ames with slices and behaviour."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow import MlflowClient
from tests.helpers.projects import configure, init_project_on

from mloop.core.gate import GateDecision
from mloop.data.snapshot import latest_snapshot
from mloop.pipeline import stages
from mloop.project import Project
from mloop.registry import audit, gate, versions
from mloop.registry.versions import CHALLENGER, CHAMPION
from mloop.train.split import holdout_split
from mloop.train.trainer import train

pytestmark = pytest.mark.integration

GATE: dict[str, Any] = {
    "metric": "rmse",
    "floors": {"r2": 0.5},
    "ceilings": {"rmse": 80_000},
    "slices": ["Neighborhood", "Bldg_Type"],
    "max_slice_regression": 0.25,
    "min_slice_rows": 8,
    "max_latency_ms": 5000,  # generous: CI shares two cores; the strict test sets 1e-6
    "behaviour": [{"feature": "Gr_Liv_Area", "factor": 1.2, "expect": "not_lower", "name": "bigger_not_cheaper"}],
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, ames: pd.DataFrame) -> Project:
    return init_project_on(
        tmp_path_factory.mktemp("gate"), ames.sample(900, random_state=5), time_column="Year_Sold", gate=GATE
    )


@dataclass(frozen=True)
class Champion:
    project: Project
    run: stages.RunResult
    client: MlflowClient


@pytest.fixture(scope="module")
def champion(project: Project) -> Champion:
    return Champion(project, stages.run(project), MlflowClient(project.tracking_uri, project.tracking_uri))


def challenge(project: Project, frame: pd.DataFrame) -> tuple[str, GateDecision]:
    """Train on ``frame`` (a doctored copy of the snapshot), register and put it through the gate."""
    trained = train(project, latest_snapshot(project.snapshots_dir), frame=frame)
    version = versions.register(project, trained.run_id).version
    return version, gate.promote(project, version)


def doctor_training_part(project: Project, change: Callable[[pd.DataFrame], pd.DataFrame]) -> pd.DataFrame:
    """The snapshot with only its training part changed: the temporal holdout stays the true one."""
    frame = latest_snapshot(project.snapshots_dir).read()
    part, holdout = holdout_split(frame, project.config.split.test_fraction, "Year_Sold", seed=0)
    return pd.concat([change(part.copy()), holdout])  # a stable sort by year splits the same rows again


def check(decision: GateDecision | dict[str, Any], name: str) -> dict[str, Any]:
    data = decision.to_dict() if isinstance(decision, GateDecision) else decision
    [found] = [c for c in data["checks"] if c["name"] == name]
    return dict(found)


def test_first_version_passes_every_configured_check(champion: Champion) -> None:
    decision = champion.run.decision
    assert decision.promote
    names = [c.name for c in decision.checks]
    assert names == [
        "finite_metric",
        "beats_champion",
        "floor.r2",
        "ceiling.rmse",
        "slice.Neighborhood",
        "slice.Bldg_Type",
        "latency",
        "behaviour.bigger_not_cheaper",
    ]
    assert check(decision, "floor.r2")["values"]["value"] > 0.5
    behaviour = check(decision, "behaviour.bigger_not_cheaper")["values"]
    assert behaviour["mean_after"] > behaviour["mean_before"]  # bigger houses are priced higher
    assert 0 < check(decision, "latency")["values"]["latency_ms"] < 5000
    tag = json.loads(versions.get_version(champion.project, "1").tags["mloop.gate"])
    assert tag["failed"] == [] and [c["name"] for c in tag["checks"]] == names
    assert versions.get_version(champion.project, "1").tags["mloop.evaluation"] == "passed"


def test_training_logs_the_evaluation(champion: Champion) -> None:
    run_id = champion.run.trained.run_id
    run = champion.client.get_run(run_id)
    metrics = run.data.metrics
    assert metrics["latency_single_row_ms"] > 0 and metrics["latency_1000_rows_ms"] > 0
    assert any(k.startswith("slice.Neighborhood.") and k.endswith(".rmse") for k in metrics)
    assert any(k.startswith("slice.Bldg_Type.") for k in metrics)
    assert metrics["behaviour.bigger_not_cheaper.moved"] > 0
    importance = {k: v for k, v in metrics.items() if k.startswith("importance.")}
    assert 0 < len(importance) <= 10
    top = max(importance, key=importance.__getitem__)
    assert top.removeprefix("importance.") in {"Gr_Liv_Area", "Overall_Qual", "Total_Bsmt_SF", "Garage_Cars"}
    paths = {a.path for a in champion.client.list_artifacts(run_id)}
    assert "evaluation.json" in paths
    plots = {a.path for a in champion.client.list_artifacts(run_id, "plots")}
    assert plots == {"plots/residuals.png"}
    png = Path(champion.client.download_artifacts(run_id, "plots/residuals.png")).read_bytes()
    assert png.startswith(b"\x89PNG")
    evaluation = json.loads(Path(champion.client.download_artifacts(run_id, "evaluation.json")).read_text())
    assert set(evaluation) == {"slices", "behaviour", "permutation_importance", "permutation_importance_sample"}
    every = evaluation["permutation_importance"]  # every input, most important first; the top ten are metrics
    assert len(every) == int(run.data.params["n_features"]) and list(every)[0] == top.removeprefix("importance.")
    assert evaluation["permutation_importance_sample"]["metric"] == "rmse"
    assert all(s["rows"] >= 8 for s in evaluation["slices"]["Neighborhood"].values())
    # detail metrics stay on the run; the version carries the headline ones
    tags = versions.get_version(champion.project, "1").tags
    assert "mloop.metric.rmse" in tags and "mloop.metric.latency_1000_rows_ms" in tags
    assert not any(k.startswith(("mloop.metric.slice.", "mloop.metric.importance.")) for k in tags)


@pytest.fixture(scope="module")
def shuffled(champion: Champion) -> tuple[str, GateDecision]:
    def shuffle(part: pd.DataFrame) -> pd.DataFrame:
        return part.assign(Sale_Price=part["Sale_Price"].sample(frac=1.0, random_state=3).to_numpy())

    return challenge(champion.project, doctor_training_part(champion.project, shuffle))


def test_model_trained_on_shuffled_labels_is_refused_naming_the_checks(
    champion: Champion, shuffled: tuple[str, GateDecision]
) -> None:
    version, decision = shuffled
    assert not decision.promote
    assert {"beats_champion", "floor.r2"} <= set(decision.failed)
    assert check(decision, "floor.r2")["values"]["value"] < 0.5
    assert check(decision, "schema")["passed"]  # same inputs: only the quality is wrong
    assert versions.alias_version(champion.project, CHAMPION).version == "1"  # type: ignore[union-attr]
    info = versions.get_version(champion.project, version)
    assert info.aliases == [CHALLENGER]
    tag = json.loads(info.tags["mloop.gate"])
    assert "floor.r2" in tag["failed"] and "r2=" in tag["reason"]
    record = audit.read(champion.project.audit_log)[-1]
    assert (record["event"], record["version"], record["forced"]) == ("reject", version, False)
    assert "floor.r2" in record["gate"]["failed"]
    assert check(record["gate"], "floor.r2")["values"]["floor"] == 0.5


def test_slice_regression_is_refused_naming_the_slice(champion: Champion, shuffled: tuple[str, GateDecision]) -> None:
    holdout = gate.holdout_of(champion.project, versions.get_version(champion.project, "1"))
    target = str(holdout["Neighborhood"].value_counts().idxmax())  # the biggest slice of the holdout

    def overprice(part: pd.DataFrame) -> pd.DataFrame:
        inflated = part["Sale_Price"].where(part["Neighborhood"] != target, part["Sale_Price"] * 2.0)
        return part.assign(Sale_Price=inflated)

    version, decision = challenge(champion.project, doctor_training_part(champion.project, overprice))
    assert not decision.promote
    assert "slice.Neighborhood" in decision.failed
    slices = check(decision, "slice.Neighborhood")
    assert slices["values"]["worst"]["slice"] == target
    assert slices["values"]["worst"]["regression"] > 0.25
    assert target in slices["detail"]
    assert versions.alias_version(champion.project, CHAMPION).version == "1"  # type: ignore[union-attr]


def test_behaviour_and_latency_failures_are_named(champion: Champion, shuffled: tuple[str, GateDecision]) -> None:
    strict = configure(
        champion.project,
        "strict.yaml",
        gate={
            "max_latency_ms": 1e-6,
            "behaviour": [{"feature": "Gr_Liv_Area", "factor": 1.2, "expect": "not_higher", "name": "bigger_cheaper"}],
        },
    )
    trained = train(strict, latest_snapshot(strict.snapshots_dir))
    assert trained.extra["behaviour_failed"] == ["bigger_cheaper"]
    run = champion.client.get_run(trained.run_id)
    assert run.data.tags["mloop.evaluation"] == "failed: bigger_cheaper"  # the evaluation itself failed
    version = versions.register(strict, trained.run_id).version
    decision = gate.promote(strict, version)
    assert not decision.promote
    assert {"latency", "behaviour.bigger_cheaper"} <= set(decision.failed)
    assert "violated" in check(decision, "behaviour.bigger_cheaper")["detail"]
    assert check(decision, "latency")["values"]["budget_ms"] == 1e-6


def test_force_promotion_and_rollback_are_audited(champion: Champion, shuffled: tuple[str, GateDecision]) -> None:
    version, _ = shuffled
    decision = gate.promote(champion.project, version, force=True, reason="load test of the override")
    assert not decision.promote and "floor.r2" in decision.failed
    assert versions.alias_version(champion.project, CHAMPION).version == version  # type: ignore[union-attr]
    forced = audit.read(champion.project.audit_log)[-1]
    assert forced["event"] == "promote" and forced["forced"] is True
    assert forced["reason"] == "load test of the override" and forced["previous"] == "1"
    assert gate.rollback(champion.project, reason="forced model misprices") == (version, "1")
    rolled = audit.read(champion.project.audit_log)[-1]
    assert (rolled["event"], rolled["version"], rolled["previous"]) == ("rollback", "1", version)
    assert versions.alias_version(champion.project, CHAMPION).version == "1"  # type: ignore[union-attr]

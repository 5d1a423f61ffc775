"""Registry logic that needs no MLflow store: version tags, the gate's decision flow, rollback from the audit log.

The MLflow client and the alias reads and writes are replaced by small fakes; what is tested is what mloop
decides and writes through them (the store itself is integration).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.entities.model_registry import ModelVersion, ModelVersionTag
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LinearRegression, LogisticRegression

from mloop.config import GateConfig, MloopConfig
from mloop.core.gate import GateCheck, GateDecision
from mloop.errors import RegistryError
from mloop.project import Project
from mloop.registry import audit, gate, versions
from mloop.registry.versions import ARTIFACT_HASH_TAG, VersionInfo


@pytest.fixture
def project(tmp_path: Path) -> Project:
    config = MloopConfig.from_file_values(name="houses", data={"source": "houses.csv", "target": "price"})
    return Project(root=tmp_path, config=config)


def info(version: str, **tags: str) -> VersionInfo:
    return VersionInfo(version=version, run_id=f"run-{version}", aliases=[], tags=tags, created_ms=0)


# ------------------------------------------------------------------------------------ versions


def test_a_version_metric_is_read_back_exactly_from_its_tag() -> None:
    value = 0.1 + 0.2  # register writes repr(value): no digit may be lost on the way back
    version = info("3", **{"mloop.metric.rmse": repr(value)})
    assert version.metric("rmse") == value
    assert version.metric("r2") is None


def test_a_registry_model_version_becomes_plain_strings_and_lists() -> None:
    mv = ModelVersion(
        "houses",
        "4",
        1_700_000_000_123,
        run_id="abc",
        tags=[ModelVersionTag("mloop.task", "regression")],
        aliases=["champion"],
    )
    got = versions._info(mv)
    assert got == VersionInfo("4", "abc", ["champion"], {"mloop.task": "regression"}, 1_700_000_000_123)
    bare = versions._info(ModelVersion("houses", "5", None, run_id="def"))  # type: ignore[arg-type]
    assert (bare.aliases, bare.tags, bare.created_ms) == ([], {}, 0)


class FakeRegistryClient:
    """Just the MlflowClient calls ``versions.register`` makes, over one run."""

    def __init__(self, run: Any, existing: list[ModelVersion] | None = None) -> None:
        self.run = run
        self.existing = existing or []
        self.registered: list[str] = []
        self.sources: list[tuple[str, str | None]] = []
        self.tags: dict[str, str] = {}
        self.marked: dict[tuple[str, str], str] = {}  # tags set on existing versions afterwards

    def get_run(self, run_id: str) -> Any:
        if run_id != self.run.info.run_id:
            raise MlflowException(f"no run {run_id}")
        return self.run

    def search_model_versions(self, filter_string: str) -> list[ModelVersion]:
        return self.existing

    def get_registered_model(self, name: str) -> Any:
        if name not in self.registered:
            raise MlflowException(f"no model {name}")
        return SimpleNamespace(name=name)

    def create_registered_model(self, name: str, description: str) -> None:
        self.registered.append(name)

    def create_model_version(
        self, name: str, source: str, run_id: str, tags: dict[str, str], model_id: str | None
    ) -> ModelVersion:
        self.sources.append((source, model_id))
        self.tags.update(tags)  # with the version, in one write
        return ModelVersion(name, "1", 0, run_id=run_id)

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.marked[(version, key)] = value

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        tags = [ModelVersionTag(k, v) for k, v in self.tags.items()]
        return ModelVersion(name, version, 0, run_id=self.run.info.run_id, tags=tags)


def training_run(outputs: Any = None) -> Any:
    tags = {
        "mloop.stage": "train",
        "mloop.data_hash": "d" * 64,
        "mloop.task": "regression",
        "mlflow.user": "someone",
    }
    metrics = {
        "rmse": 1234.5,
        "r2": 0.875,
        "baseline_rmse": 9999.0,
        "slice.Neighborhood.rmse": 1.0,
        "importance.Gr_Liv_Area": 0.4,
        "behaviour.area_not_lower": 1.0,
    }
    return SimpleNamespace(
        info=SimpleNamespace(run_id="r1"), outputs=outputs, data=SimpleNamespace(tags=tags, metrics=metrics)
    )


def test_register_copies_lineage_tags_headline_metrics_and_the_artifact_hash(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = FakeRegistryClient(training_run())
    monkeypatch.setattr(versions, "connect", lambda _project: client)
    monkeypatch.setattr(versions, "_model_sha256", lambda _source: "ab" * 32)
    registered = versions.register(project, "r1")
    assert client.registered == ["houses"]
    assert client.sources == [("runs:/r1/model", None)]  # no logged model: the run's model folder
    assert registered.tags == {
        "mloop.data_hash": "d" * 64,  # mloop.* run tags, not mloop.stage and not mlflow.*
        "mloop.task": "regression",
        "mloop.metric.rmse": "1234.5",  # headline metrics only: no baseline, slice, importance, behaviour
        "mloop.metric.r2": "0.875",
        ARTIFACT_HASH_TAG: "ab" * 32,
    }
    assert registered.metric("rmse") == 1234.5


def test_register_points_at_the_logged_model_when_the_run_has_one(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = SimpleNamespace(model_outputs=[SimpleNamespace(model_id="m-42")])
    client = FakeRegistryClient(training_run(outputs))
    monkeypatch.setattr(versions, "connect", lambda _project: client)
    monkeypatch.setattr(versions, "_model_sha256", lambda _source: "0" * 64)
    versions.register(project, "r1")
    assert client.sources == [("models:/m-42", "m-42")]


def test_a_version_a_crash_left_without_its_hash_is_marked_failed_and_registered_again(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    half = ModelVersion("houses", "7", 0, run_id="r1", tags=[ModelVersionTag("mloop.task", "regression")])
    client = FakeRegistryClient(training_run(), existing=[half])
    monkeypatch.setattr(versions, "connect", lambda _project: client)
    monkeypatch.setattr(versions, "_model_sha256", lambda _source: "cd" * 32)
    registered = versions.register(project, "r1")
    assert client.marked == {("7", versions.STATUS_TAG): versions.FAILED}
    assert client.sources == [("runs:/r1/model", None)] and registered.tags[ARTIFACT_HASH_TAG] == "cd" * 32


def test_registering_a_run_twice_returns_its_version_and_an_unknown_run_is_refused(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    tags = [ModelVersionTag("mloop.task", "regression"), ModelVersionTag(ARTIFACT_HASH_TAG, "ab" * 32)]
    existing = ModelVersion("houses", "7", 0, run_id="r1", tags=tags)
    client = FakeRegistryClient(training_run(), existing=[existing])
    monkeypatch.setattr(versions, "connect", lambda _project: client)
    assert versions.register(project, "r1").version == "7"
    assert client.sources == [] and client.tags == {} and client.marked == {}  # no second version of the run
    with pytest.raises(RegistryError, match="No MLflow run 'nope'"):
        versions.register(project, "nope")


# ---------------------------------------------------------------------------- gate: scoring


@pytest.fixture(scope="module")
def holdout() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 10, 40)
    return pd.DataFrame({"x": x, "district": ["north", "south"] * 20, "price": 2.0 * x + 5.0})


def test_evaluation_scores_each_slice_column_read_from_the_holdout(holdout: pd.DataFrame) -> None:
    X = holdout[["x"]]  # the slice column is not a model input
    model = LinearRegression().fit(X, holdout["price"])
    result = gate.evaluate_model(model, X, holdout["price"], holdout, "regression", ["district", "gone"], 5)
    assert result.metrics["rmse"] == pytest.approx(0.0, abs=1e-9)
    assert set(result.slices) == {"district"}  # a slice column the holdout lacks is left to the gate's check
    assert {k: v["rows"] for k, v in result.slices["district"].items()} == {"north": 20.0, "south": 20.0}
    assert gate.evaluate_model(model, X, holdout["price"], holdout, "regression", ["district"], 21).slices == {
        "district": {}
    }  # no value reaches min_rows


def test_behaviour_checks_pass_or_fail_by_the_direction_the_mean_moves(holdout: pd.DataFrame) -> None:
    X = holdout[["x"]]
    model = LinearRegression().fit(X, holdout["price"])  # price rises with x
    specs = [
        GateConfig.Behaviour(feature="x", factor=1.2, expect="not_lower"),
        GateConfig.Behaviour(feature="x", delta=1.0, expect="not_higher", name="cheaper_when_bigger"),
    ]
    up, down = gate.behaviour_results(model, X, "regression", specs)
    assert (up.name, up.passed) == ("x_not_lower", True)
    assert (down.name, down.passed) == ("cheaper_when_bigger", False)
    assert down.after == pytest.approx(down.before + 2.0)


def test_a_behaviour_check_on_an_unknown_class_fails_instead_of_raising(holdout: pd.DataFrame) -> None:
    X = holdout[["x"]]
    model = LogisticRegression().fit(X, (holdout["x"] > 5).astype(int))
    (result,) = gate.behaviour_results(
        model, X, "classification", [GateConfig.Behaviour(feature="x", factor=2.0, target_class="maybe")]
    )
    assert not result.passed
    assert result.error is not None and "'maybe' is not one of the model's classes" in result.error
    assert math.isnan(result.before) and not result.check().passed


# --------------------------------------------------------------------- gate: promote, rollback


class FakeAliases:
    """Aliases and tags of one registered model, in memory; the gate module's registry calls go here."""

    def __init__(self, versions_: list[str], champion: str | None = None) -> None:
        self.versions = versions_
        self.aliases: dict[str, str] = {} if champion is None else {"champion": champion}
        self.tags: dict[tuple[str, str], str] = {}

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(gate, "list_versions", lambda _p: [info(v) for v in self.versions])
        monkeypatch.setattr(gate, "get_version", lambda _p, v: info(v))
        monkeypatch.setattr(gate, "alias_version", self.alias_version)
        monkeypatch.setattr(gate, "set_alias", self.set_alias)
        monkeypatch.setattr(gate, "set_tag", self.set_tag)

    def alias_version(self, _project: Project, alias: str = "champion") -> VersionInfo | None:
        version = self.aliases.get(alias)
        return info(version) if version is not None else None

    def set_alias(self, _project: Project, version: str, alias: str = "champion") -> None:
        self.aliases[alias] = version

    def set_tag(self, _project: Project, version: str, key: str, value: str) -> None:
        self.tags[(version, key)] = value


def losing_decision() -> GateDecision:
    return GateDecision(
        promote=False,
        metric="rmse",
        challenger_value=120.0,
        champion_value=100.0,
        champion_version="1",
        min_improvement=0.0,
        checks=[GateCheck("finite_metric", True, "ok"), GateCheck("beats_champion", False, "120 is not below 100")],
    )


def test_a_rejected_version_becomes_challenger_and_the_decision_is_tagged_and_audited(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = FakeAliases(["1", "2"], champion="1")
    registry.install(monkeypatch)
    decision = losing_decision()
    monkeypatch.setattr(gate, "evaluate_gate", lambda _p, _v: decision)
    assert gate.promote(project) is decision  # the newest version by default
    assert registry.aliases == {"champion": "1", "challenger": "2"}
    assert json.loads(registry.tags[("2", "mloop.gate")]) == decision.to_dict()
    (entry,) = audit.read(project.audit_log)
    assert (entry["event"], entry["version"], entry["previous"], entry["forced"]) == ("reject", "2", "1", False)
    assert entry["reason"] == decision.reason and entry["gate"]["failed"] == decision.failed


def test_an_incomparable_version_is_refused_unless_forced(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = FakeAliases(["1", "2"], champion="1")
    registry.install(monkeypatch)

    def incomparable(_project: Project, version: str) -> GateDecision:
        raise RegistryError(f"version {version} needs columns the holdout lacks (Garage_Area)")

    monkeypatch.setattr(gate, "evaluate_gate", incomparable)
    with pytest.raises(RegistryError, match="needs columns the holdout lacks"):
        gate.promote(project, "2")
    assert registry.aliases == {"champion": "1"} and registry.tags == {}
    assert audit.read(project.audit_log) == []  # nothing decided, nothing recorded

    decision = gate.promote(project, "2", force=True, reason="new schema, checked by hand")
    assert not decision.promote
    assert [(c.name, c.passed) for c in decision.checks] == [("comparable", False)]
    assert "Garage_Area" in decision.checks[0].detail
    assert registry.aliases["champion"] == "2"
    (entry,) = audit.read(project.audit_log)
    assert (entry["event"], entry["forced"], entry["reason"]) == ("promote", True, "new schema, checked by hand")


def test_promote_and_rollback_refuse_when_there_is_nothing_to_decide(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeAliases(["1"], champion="1").install(monkeypatch)
    with pytest.raises(RegistryError, match="version 1 is already the champion"):
        gate.promote(project, "1")
    FakeAliases([]).install(monkeypatch)
    with pytest.raises(RegistryError, match="No registered versions"):
        gate.promote(project)
    with pytest.raises(RegistryError, match="no champion to roll back"):
        gate.rollback(project)
    assert audit.read(project.audit_log) == []


def test_rollback_returns_the_champion_alias_to_the_version_it_was_taken_from(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = FakeAliases(["1", "2", "3"], champion="3")
    registry.install(monkeypatch)
    log = project.audit_log
    audit.append(log, "promote", model="houses", version="1", previous=None)
    audit.append(log, "promote", model="houses", version="2", previous="1")
    audit.append(log, "promote", model="other-project", version="3", previous="9")  # another model's log entry
    audit.append(log, "reject", model="houses", version="3", previous="2")
    audit.append(log, "promote", model="houses", version="3", previous="2")
    assert gate.rollback(project, reason="drift") == ("3", "2")
    assert registry.aliases["champion"] == "2"
    assert audit.read(log)[-1] | {"ts": "", "user": "", "prev": "", "hash": ""} == {  # chain fields: test_audit_chain
        "ts": "",
        "user": "",
        "prev": "",
        "hash": "",
        "event": "rollback",
        "model": "houses",
        "version": "2",
        "previous": "3",
        "reason": "drift",
    }
    assert gate.rollback(project) == ("2", "1")
    with pytest.raises(RegistryError, match="version 1 has no earlier champion"):
        gate.rollback(project)  # v1 was the first champion
    assert registry.aliases["champion"] == "1"

"""The trusted-holdout guard on a real MLflow store: a model trained on corrupted labels fails it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from tests.helpers.projects import early_sales, train_champion, write_project

from mloop.pipeline import stages
from mloop.registry import audit
from mloop.registry.versions import CHAMPION, alias_version, get_version, register
from mloop.retrain.guard import reject, trusted_holdout_check
from mloop.train.trainer import train

pytestmark = pytest.mark.integration


def test_a_model_trained_on_corrupted_labels_fails_the_guard_and_is_rejected(
    ames: pd.DataFrame, tmp_path: Path
) -> None:
    frame = early_sales(ames, 600)
    project = train_champion(write_project(tmp_path / "guard", frame, "guard-test"))
    champion = alias_version(project, CHAMPION)
    assert champion is not None

    same = register(project, train(project, stages.ingest(project, "again", frame).snapshot).run_id)
    assert trusted_holdout_check(project, champion, same).passed  # the same data: no regression

    corrupted = frame.assign(Sale_Price=frame["Sale_Price"] * 3)  # prices in the wrong unit
    bad = register(project, train(project, stages.ingest(project, "corrupted", corrupted).snapshot).run_id)
    check = trusted_holdout_check(project, champion, bad)
    assert not check.passed and check.values["worse"] > 1.0 and "holdout" in check.detail

    decision = reject(project, champion, bad, check, "retrain: test")
    assert not decision.promote
    still = alias_version(project, CHAMPION)
    assert still is not None and still.version == champion.version
    assert "challenger" in get_version(project, bad.version).aliases
    assert json.loads(get_version(project, bad.version).tags["mloop.gate"])["checks"][0]["name"] == "trusted_holdout"
    event = audit.read(project.audit_log)[-1]
    assert event["event"] == "reject" and event["version"] == bad.version

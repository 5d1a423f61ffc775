"""The fault matrix, column (d): each registry-changing command killed with SIGKILL at each of its step
boundaries (``mloop.failpoints``), then the same command run again.

After every kill: the champion alias points at a complete version whose files hash to its recorded
``mloop.artifact_sha256``; no version is left half-registered unless marked failed; the audit log's
chain verifies and its entries say what happened; the next run of the same command succeeds and leaves
the state one run of it would have. docs/reliability.md lists these cells.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from tests.helpers.cli import clean_env, mloop, ok
from tests.helpers.projects import early_sales, train_champion, write_project

from mloop.failpoints import ENV
from mloop.project import Project
from mloop.registry import audit
from mloop.registry.versions import (
    ARTIFACT_HASH_TAG,
    CHAMPION,
    STATUS_TAG,
    alias_version,
    artifact_sha256,
    list_versions,
)

pytestmark = pytest.mark.integration

KILLED = -signal.SIGKILL


@pytest.fixture
def project(tmp_path: Path, ames: pd.DataFrame) -> Project:
    """A fresh project whose version 1 is champion (a kill must not leak into the next test)."""
    return train_champion(write_project(tmp_path / "ames", early_sales(ames, 700), "ames-faults"))


def _killed_at(point: str, *args: str, project: Project) -> None:
    done = mloop(*args, project=project, env=clean_env(**{ENV: point}))
    assert done.returncode == KILLED, f"expected SIGKILL at {point}, got {done.returncode}:\n{done.stderr[-2000:]}"


def _entries(project: Project) -> list[dict[str, Any]]:
    return [e for e in audit.read(project.audit_log) if e.get("model") == project.name]


def assert_invariants(project: Project) -> str:
    """The promises after any crash; returns the champion's version."""
    champion = alias_version(project, CHAMPION)
    assert champion is not None, "the champion alias is gone"
    assert champion.tags.get(STATUS_TAG) != "failed", f"version {champion.version} is failed but champion"
    recorded = champion.tags.get(ARTIFACT_HASH_TAG)
    assert recorded, f"champion {champion.version} has no artifact hash: half-registered"
    mlflow.set_tracking_uri(project.tracking_uri)
    local = mlflow.artifacts.download_artifacts(f"models:/{project.name}@{CHAMPION}", dst_path=str(project.root / "dl"))
    assert artifact_sha256(local) == recorded, "the champion's files do not hash to the recorded hash"
    for version in list_versions(project):
        complete = ARTIFACT_HASH_TAG in version.tags
        assert complete or version.tags.get(STATUS_TAG) == "failed", f"version {version.version} is half-registered"
    result = audit.verify(project.audit_log)
    assert result.ok, result.problems
    return champion.version


@pytest.fixture
def trained_twice(project: Project) -> Iterator[Project]:
    """``project`` with a second training run (not registered): what `mloop register` takes next."""
    ok(mloop("train", project=project))
    yield project


def test_train_killed_after_logging_its_run(project: Project) -> None:
    _killed_at("train:after-run-logged", "train", project=project)
    assert assert_invariants(project) == "1"
    ok(mloop("train", project=project))  # the next run trains normally
    assert assert_invariants(project) == "1" and len(list_versions(project)) == 1


@pytest.mark.parametrize("point", ["register:before-create", "register:after-create"])
def test_register_killed_before_and_after_creating_the_version(trained_twice: Project, point: str) -> None:
    project = trained_twice
    _killed_at(point, "register", project=project)
    versions = list_versions(project)
    assert len(versions) == (1 if point.endswith("before-create") else 2)
    assert assert_invariants(project) == "1"
    again = json.loads(ok(mloop("register", "--json", project=project)).stdout)
    versions = list_versions(project)
    assert [v.version for v in versions] == ["1", "2"] and str(again["version"]) == "2"  # one version, not two
    assert ARTIFACT_HASH_TAG in versions[1].tags
    assert_invariants(project)


@pytest.mark.parametrize("point", ["promote:after-gate", "promote:after-alias"])
def test_promote_killed_after_the_gate_and_after_moving_the_alias(trained_twice: Project, point: str) -> None:
    project = trained_twice
    ok(mloop("register", project=project))
    args = ("promote", "2", "--force", "--reason", "fault test")
    _killed_at(point, *args, project=project)
    moved = point.endswith("after-alias")
    assert assert_invariants(project) == ("2" if moved else "1")
    assert [e["event"] for e in _entries(project)].count("promote") == 1  # v1's only: the kill wrote none

    ok(mloop(*args, project=project))  # the same command again
    assert assert_invariants(project) == "2"
    promotions = [e for e in _entries(project) if e["event"] == "promote"]
    assert [p["version"] for p in promotions] == ["1", "2"]  # exactly one promotion of v2 is recorded
    assert promotions[-1].get("recovered", False) is moved  # and it says when it finished a killed one
    assert promotions[-1]["previous"] == "1"


def test_rollback_killed_after_moving_the_alias(trained_twice: Project) -> None:
    project = trained_twice
    ok(mloop("register", project=project))
    ok(mloop("promote", "2", "--force", "--reason", "fault test", project=project))
    _killed_at("rollback:after-alias", "rollback", "--reason", "fault test", project=project)
    assert assert_invariants(project) == "1"

    ok(mloop("rollback", "--reason", "fault test", project=project))  # finishes it; does not roll back twice
    assert assert_invariants(project) == "1"
    rollbacks = [e for e in _entries(project) if e["event"] == "rollback"]
    assert len(rollbacks) == 1 and rollbacks[0]["recovered"] is True
    assert (rollbacks[0]["version"], rollbacks[0]["previous"]) == ("1", "2")

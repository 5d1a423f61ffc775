"""What the real `mloop` prints: its own lines by default, the libraries' too with -v, JSON with --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.datasets import load_diabetes
from tests.helpers.cli import mloop, ok, user_env

pytestmark = pytest.mark.integration

LIBRARY_NOISE = ("Downloading artifacts", "it/s]", "Warning", "INFO ")

# As from a user's shell: no MLOOP_* overrides, no COLUMNS to hint a width, no inherited quiet settings.
USER_ENV = user_env()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("output")
    load_diabetes(as_frame=True).frame.to_csv(root / "diabetes.csv", index=False)
    args = ("init", "diabetes", "--source", "diabetes.csv", "--target", "target", "--no-dvc", "--json")
    made = json.loads(ok(mloop(*args, cwd=root, env=USER_ENV)).stdout)
    assert Path(made["config"]) == root / "diabetes" / "mloop.yaml" and Path(made["config"]).is_file()
    return Path(made["folder"])


def test_a_run_prints_mloops_lines_only_and_verbose_lets_the_libraries_speak(project: Path) -> None:
    quiet = ok(mloop("run", cwd=project, env=USER_ENV))
    both = quiet.stdout + quiet.stderr
    assert "promoted to champion" in quiet.stdout
    assert not [n for n in LIBRARY_NOISE if n in both], both
    # The same work again with -v: MLflow's artifact bars (loading the model for the gate) come back.
    loud = ok(mloop("-v", "run", cwd=project, env=USER_ENV))
    assert "version 2" in loud.stdout
    assert "Downloading artifacts" in loud.stderr


def test_report_and_watch_answer_in_json(project: Path) -> None:
    report = json.loads(ok(mloop("report", "--json", cwd=project, env=USER_ENV)).stdout)
    assert "<title>mloop report: diabetes</title>" in Path(report["path"]).read_text(encoding="utf-8")
    # No traffic yet: one check, reported as one JSON line that says what it waits for.
    lines = ok(
        mloop("watch", "--cycles", "1", "--interval", "0", "--json", cwd=project, env=USER_ENV)
    ).stdout.splitlines()
    assert len(lines) == 1
    check = json.loads(lines[0])
    assert check["check"] == 1 and ("waiting" in check or "retrained" in check)

"""What the real `mloop` prints: its own lines by default, the libraries' too with -v, JSON with --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.datasets import load_diabetes

pytestmark = pytest.mark.integration

# No MLOOP_* overrides from the caller's shell, no COLUMNS to hint a width, no inherited quiet settings.
ENV = {
    k: v
    for k, v in os.environ.items()
    if not k.startswith("MLOOP_") and k not in ("COLUMNS", "PYTHONWARNINGS", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
}
LIBRARY_NOISE = ("Downloading artifacts", "it/s]", "Warning", "INFO ")


def mloop(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "mloop", *args], cwd=cwd, capture_output=True, text=True, env=ENV, timeout=300
    )
    assert done.returncode == 0, f"mloop {' '.join(args)} failed:\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("output")
    load_diabetes(as_frame=True).frame.to_csv(root / "diabetes.csv", index=False)
    args = ("init", "diabetes", "--source", "diabetes.csv", "--target", "target", "--no-dvc", "--json")
    made = json.loads(mloop(*args, cwd=root).stdout)
    assert Path(made["config"]) == root / "diabetes" / "mloop.yaml" and Path(made["config"]).is_file()
    return Path(made["folder"])


def test_a_run_prints_mloops_lines_only_and_verbose_lets_the_libraries_speak(project: Path) -> None:
    quiet = mloop("run", cwd=project)
    both = quiet.stdout + quiet.stderr
    assert "promoted to champion" in quiet.stdout
    assert not [n for n in LIBRARY_NOISE if n in both], both
    # The same work again with -v: MLflow's artifact bars (loading the model for the gate) come back.
    loud = mloop("-v", "run", cwd=project)
    assert "version 2" in loud.stdout
    assert "Downloading artifacts" in loud.stderr


def test_report_and_watch_answer_in_json(project: Path) -> None:
    report = json.loads(mloop("report", "--json", cwd=project).stdout)
    assert "<title>mloop report: diabetes</title>" in Path(report["path"]).read_text(encoding="utf-8")
    # No traffic yet: one check, reported as one JSON line that says what it waits for.
    lines = mloop("watch", "--cycles", "1", "--interval", "0", "--json", cwd=project).stdout.splitlines()
    assert len(lines) == 1
    check = json.loads(lines[0])
    assert check["check"] == 1 and ("waiting" in check or "retrained" in check)

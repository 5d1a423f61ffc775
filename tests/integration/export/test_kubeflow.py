"""`mloop export kubeflow`: the compiled pipeline YAML, and a real run of it with kfp's local runner.

kfp's SubprocessRunner runs each step's Python component in a subprocess of this environment instead
of a pod of the mloop image (no container engine here), so the stages really execute on the project.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from tests.helpers.cli import MLOOP_SCRIPT, mloop, ok, run_command

from mloop.export.kubeflow_pipeline import KubeflowSpec, compile_pipeline
from mloop.project import Project
from mloop.registry.versions import CHAMPION, alias_version, list_versions

from .conftest import TRAIN_ROWS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("kfp") is None,
        reason="kfp is not installed: pip install 'mloop[kubeflow]' (the dev extra has it)",
    ),
]

TRAINING = ["ingest", "validate", "train", "register", "promote"]
IMAGE = "registry.example.com/ml/mloop:0.1.0"

RUN_LOCALLY = textwrap.dedent(
    """
    import json, sys, warnings
    import kfp.local
    from kfp import components

    # The steps name the mloop image; here they run as subprocesses of this Python, which has mloop.
    warnings.filterwarnings("ignore", message=".*non-Python base image", category=RuntimeWarning)
    pipeline_file, root, project_dir, mloop = sys.argv[1:]
    kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False), pipeline_root=root)
    pipeline = components.load_component_from_file(pipeline_file)
    pipeline(project_dir=project_dir, mloop=mloop)
    print(json.dumps({"done": True}))
    """
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, export_project: Callable[[Path, str], Project]) -> Project:
    return export_project(tmp_path_factory.mktemp("kubeflow-project"), "houses")


def compiled(project: Project, output: Path, *args: str) -> list[dict[str, Any]]:
    """`mloop export kubeflow -o OUTPUT ARGS`, as the YAML documents it wrote."""
    ok(mloop("export", "kubeflow", "-o", str(output), *args, cwd=project.root))
    return list(yaml.safe_load_all(output.read_text(encoding="utf-8")))


def run_locally(pipeline_file: Path, project: Project, root: Path) -> subprocess.CompletedProcess[str]:
    """The compiled pipeline, run step by step by kfp's local SubprocessRunner (its own process: kfp's
    local mode is global state)."""
    command = [sys.executable, "-c", RUN_LOCALLY, str(pipeline_file), str(root), str(project.root), MLOOP_SCRIPT]
    return run_command(command, timeout=900)


def test_the_pipeline_has_one_component_per_stage_in_order(project: Project, tmp_path: Path) -> None:
    docs = compiled(
        project, tmp_path / "p.yaml", "--image", IMAGE, "--pvc", "houses-data", "--configmap", "houses-config"
    )
    spec, platform = docs
    assert spec["pipelineInfo"]["name"] == "mloop-houses-train"
    assert sorted(spec["components"]) == sorted(f"comp-{s}" for s in TRAINING)
    tasks = spec["root"]["dag"]["tasks"]
    assert sorted(tasks) == sorted(TRAINING)
    for before, after in zip(TRAINING, TRAINING[1:], strict=False):
        assert tasks[after]["dependentTasks"] == [before]  # each stage takes the one before's result
    assert "dependentTasks" not in tasks["ingest"]
    handoff = {"validate": "snapshot", "train": "snapshot", "register": "run_id", "promote": "version"}
    for stage, name in handoff.items():
        source = tasks[stage]["inputs"]["parameters"][name]["taskOutputParameter"]
        assert source["producerTask"] == TRAINING[TRAINING.index(stage) - 1]
    assert all(t["cachingOptions"].get("enableCache", False) is False for t in tasks.values())
    executors = spec["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {IMAGE}
    defaults = spec["root"]["inputDefinitions"]["parameters"]
    assert defaults["project_dir"]["defaultValue"] == "/project"
    assert defaults["config_from"]["defaultValue"] == "/etc/mloop/mloop.yaml"
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert sorted(k8s) == sorted(f"exec-{s}" for s in TRAINING)
    for executor in k8s.values():
        assert executor["pvcMount"][0]["mountPath"] == "/project"
        assert executor["configMapAsVolume"][0]["configMapName"] == "houses-config"


def test_an_image_with_kfp_needs_no_install_at_start(tmp_path: Path) -> None:
    commands = {}
    for install in (True, False):
        path = compile_pipeline(KubeflowSpec(project="p", install_kfp=install), tmp_path / f"{install}.yaml")
        spec = next(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        commands[install] = " ".join(spec["deploymentSpec"]["executors"]["exec-train"]["container"]["command"])
    assert "pip install" in commands[True]
    assert "pip install" not in commands[False]
    assert "kfp.dsl.executor_main" in commands[False]


def test_the_pipeline_runs_with_the_local_runner_and_leaves_a_champion(project: Project, tmp_path: Path) -> None:
    compiled(project, tmp_path / "pipeline.yaml")
    done = ok(run_locally(tmp_path / "pipeline.yaml", project, tmp_path / "kfp-root"))
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"done": True}
    for stage in TRAINING:
        assert f"Task '{stage}' finished with status SUCCESS" in _plain(done.stdout + done.stderr)
    champion = alias_version(project, CHAMPION)
    assert champion is not None and champion.version == "1"
    assert [v.version for v in list_versions(project)] == ["1"]


def test_the_monitoring_pipeline_runs_without_traffic(project: Project, tmp_path: Path) -> None:
    docs = compiled(project, tmp_path / "monitor.yaml", "--pipeline", "monitor")
    assert sorted(docs[0]["root"]["dag"]["tasks"]) == ["monitor", "retrain"]
    done = ok(run_locally(tmp_path / "monitor.yaml", project, tmp_path / "kfp-root"))
    log = _plain(done.stdout + done.stderr)
    assert "Task 'monitor' finished with status SUCCESS" in log
    assert "Task 'retrain' finished with status SUCCESS" in log
    assert "no traffic" in log


def test_the_batch_pipeline_scores_then_hands_the_scores_to_drift(project: Project, tmp_path: Path) -> None:
    docs = compiled(
        project, tmp_path / "batch.yaml", "--pipeline", "batch", "--batch-input", "data/incoming",
        "--batch-output", "s3a://ml-scores/houses", "--image", IMAGE, "--pvc", "houses-data",
    )  # fmt: skip
    spec, platform = docs
    assert spec["pipelineInfo"]["name"] == "mloop-houses-batch"
    assert sorted(spec["components"]) == ["comp-drift", "comp-score"]
    tasks = spec["root"]["dag"]["tasks"]
    assert sorted(tasks) == ["drift", "score"]
    assert "dependentTasks" not in tasks["score"] and tasks["drift"]["dependentTasks"] == ["score"]
    window = tasks["drift"]["inputs"]["parameters"]["window"]["taskOutputParameter"]
    assert window["producerTask"] == "score"  # the drift step judges what the score step wrote
    for name, task in tasks.items():
        assert task["inputs"]["parameters"]["engine"]["componentInputParameter"] == "engine"
        assert task["cachingOptions"].get("enableCache", False) is False, name
    assert tasks["score"]["inputs"]["parameters"]["source"]["componentInputParameter"] == "batch_input"
    defaults = spec["root"]["inputDefinitions"]["parameters"]
    assert defaults["batch_input"]["defaultValue"] == "data/incoming"  # relative: in project_dir, where steps run
    assert defaults["batch_output"]["defaultValue"] == "s3a://ml-scores/houses"
    assert defaults["engine"]["defaultValue"] == "spark"
    executors = spec["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {IMAGE}
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert sorted(k8s) == ["exec-drift", "exec-score"]
    assert all(e["pvcMount"][0]["mountPath"] == "/project" for e in k8s.values())


def test_the_batch_pipeline_runs_with_the_local_runner(project: Project, tmp_path: Path) -> None:
    """After the training run above (a champion to score with), on the data file beside the project (a relative
    path with ..: taken in the project folder); ``--batch-engine local``: no Spark session here."""
    compiled(
        project, tmp_path / "batch.yaml", "--pipeline", "batch", "--batch-input", "../data/ames-train.csv",
        "--batch-output", "scores/kfp.parquet", "--batch-engine", "local",
    )  # fmt: skip
    done = ok(run_locally(tmp_path / "batch.yaml", project, tmp_path / "kfp-root"))
    log = _plain(done.stdout + done.stderr)
    assert "Task 'score' finished with status SUCCESS" in log
    assert "Task 'drift' finished with status SUCCESS" in log
    scores = pd.read_parquet(project.root / "scores" / "kfp.parquet")
    assert len(scores) == TRAIN_ROWS and scores["prediction"].notna().all()
    assert '"engine": "local"' in log and '"dataset_drift"' in log  # the drift step's JSON report, in its log


def _plain(text: str) -> str:
    """kfp's log without its terminal colours."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)

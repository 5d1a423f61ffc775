"""The Kubeflow export without kfp: the spec's checks and name, the install hint, and the component functions
themselves (run here against a stand-in mloop command, as a step's container would run them)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mloop.errors import ExportError
from mloop.export import kfp_components
from mloop.export.kubeflow_pipeline import INSTALL_HINT, KubeflowSpec, import_kfp
from mloop.export.stages import NO_TRAFFIC_EXIT_CODE


def test_the_pipeline_name_is_lowercase_letters_digits_and_dashes() -> None:
    assert KubeflowSpec(project="houses").name == "mloop-houses-train"
    assert KubeflowSpec(project="House Prices (v2)", pipeline="monitor").name == "mloop-house-prices-v2-monitor"
    assert KubeflowSpec(project="__").name == "mloop-model-train"  # nothing usable left: a fixed word
    assert KubeflowSpec(project="houses", pipeline="batch").name == "mloop-houses-batch"
    long = KubeflowSpec(project="a" * 94 + " b" * 20).name
    assert long.endswith("-train") and "--" not in long  # cut without a dangling dash
    assert len(long) <= 100 + len("-train")


def test_the_default_spec_passes_its_checks() -> None:
    spec = KubeflowSpec(project="houses", pvc="mloop-project", configmap="mloop-config", retries=3)
    assert spec.check() is spec
    batch = KubeflowSpec(project="houses", pipeline="batch", batch_input="data/new", batch_output="s3a://b/scores")
    assert batch.check() is batch


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pipeline": "nightly"}, "--pipeline 'nightly' is not one of train, monitor"),
        ({"pipeline": "batch"}, "--pipeline batch needs --batch-input and --batch-output"),
        ({"pipeline": "batch", "batch_input": "in.csv"}, "--batch-input needs --batch-output too"),
        (
            {"batch_input": "in.csv", "batch_output": "out"},
            "--batch-input and --batch-output only apply to --pipeline batch",
        ),
        ({"pipeline": "monitor", "batch_output": "out"}, "only apply to --pipeline batch"),
        (
            {"pipeline": "batch", "batch_input": "in", "batch_output": "in", "batch_engine": "local"},
            "overwrite its own",
        ),
        (
            {"pipeline": "batch", "batch_input": "in", "batch_output": "out", "batch_engine": "ray"},
            "'ray' is not one of",
        ),
        ({"image": "Not An Image"}, "is not a container image reference"),
        ({"project_dir": "project"}, "--project-dir 'project' must be an absolute path"),
        ({"config": "conf/mloop.yaml"}, "must be a file name in the project"),
        ({"pvc": "Bad_Name"}, "--pvc 'Bad_Name' is not a Kubernetes object name"),
        ({"configmap": "-cm"}, "--configmap '-cm' is not a Kubernetes object name"),
        ({"config_key": "a/b"}, "is not a ConfigMap key"),
        ({"retries": 11}, "--retries 11 is out of range"),
    ],
)
def test_each_bad_value_is_refused_by_name(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ExportError) as caught:
        KubeflowSpec(**({"project": "houses"} | change)).check()
    assert message in caught.value.message


def test_a_missing_kfp_kubernetes_names_its_package_and_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "kfp", None)  # as if kfp were not installed
    monkeypatch.setitem(sys.modules, "kfp.kubernetes", None)
    with pytest.raises(ExportError) as caught:
        import_kfp("kfp.kubernetes")
    assert "(kfp-kubernetes)" in caught.value.message
    assert caught.value.message.endswith(f"install it with: {INSTALL_HINT}")


# -------------------------------------------------------------- the component functions themselves


@pytest.fixture
def fake_mloop(tmp_path: Path) -> Any:
    """``fake_mloop(exit_code, stdout)``: an executable that records its arguments and answers so."""

    def make(exit_code: int = 0, stdout: str = "") -> Path:
        path = tmp_path / "bin" / "mloop"
        path.parent.mkdir(exist_ok=True)
        (tmp_path / "out.txt").write_text(stdout, encoding="utf-8")
        path.write_text(
            f'#!/bin/sh\necho "$PWD $*" >> "{tmp_path}/calls.txt"\ncat "{tmp_path}/out.txt"\nexit {exit_code}\n',
            encoding="utf-8",
        )
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
        return path

    return make


def calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "calls.txt").read_text(encoding="utf-8").splitlines()


def test_ingest_copies_the_configmap_config_in_and_returns_the_snapshot_hash(tmp_path: Path, fake_mloop: Any) -> None:
    mloop = fake_mloop(0, json.dumps({"hash": "abc123", "rows": 10}))
    project = tmp_path / "project"
    project.mkdir()
    mounted = tmp_path / "etc" / "mloop.yaml"
    mounted.parent.mkdir()
    mounted.write_text("name: from-configmap\n", encoding="utf-8")
    assert kfp_components.ingest(str(mloop), str(project), "prod.yaml", str(mounted)) == "abc123"
    assert (project / "prod.yaml").read_text(encoding="utf-8") == "name: from-configmap\n"
    assert calls(tmp_path) == [f"{project} -c prod.yaml ingest --json"]


def test_each_training_step_hands_its_result_to_the_next_or_fails_the_task(tmp_path: Path, fake_mloop: Any) -> None:
    project = str(tmp_path)
    mloop = str(fake_mloop(0, json.dumps({"run_id": "r-9", "version": "4", "promote": True})))
    assert kfp_components.validate(mloop, project, "mloop.yaml", "abc123") == "abc123"
    assert kfp_components.train(mloop, project, "mloop.yaml", "abc123") == "r-9"
    assert kfp_components.register(mloop, project, "mloop.yaml", "r-9") == "4"
    assert json.loads(kfp_components.promote(mloop, project, "mloop.yaml", "4"))["promote"] is True
    assert [c.split(" ", 1)[1] for c in calls(tmp_path)] == [
        "-c mloop.yaml validate abc123 --json",
        "-c mloop.yaml train --snapshot abc123 --json",
        "-c mloop.yaml register --run-id r-9 --json",
        "-c mloop.yaml promote 4 --json",
    ]
    failing = str(fake_mloop(4, ""))  # ContractError's exit code: the task fails
    with pytest.raises(subprocess.CalledProcessError, match="returned non-zero exit status 4"):
        kfp_components.validate(failing, project, "mloop.yaml", "abc123")


def test_no_traffic_skips_monitoring_and_retraining_instead_of_failing(tmp_path: Path, fake_mloop: Any) -> None:
    mloop = str(fake_mloop(NO_TRAFFIC_EXIT_CODE, ""))
    assert kfp_components.monitor(mloop, str(tmp_path), "mloop.yaml", "") == "no traffic"
    assert kfp_components.retrain(mloop, str(tmp_path), "mloop.yaml", "no traffic") == "no traffic"
    assert len(calls(tmp_path)) == 1  # retrain did not even run mloop


def test_monitoring_passes_its_window_on_and_fails_on_any_other_error(tmp_path: Path, fake_mloop: Any) -> None:
    window = json.dumps({"window": 3, "drift_detected": False})
    mloop = str(fake_mloop(0, window))
    assert json.loads(kfp_components.monitor(mloop, str(tmp_path), "mloop.yaml", "")) == json.loads(window)
    assert json.loads(kfp_components.retrain(mloop, str(tmp_path), "mloop.yaml", window)) == json.loads(window)
    assert calls(tmp_path)[-1].endswith("-c mloop.yaml retrain --if-needed --json")
    broken = str(fake_mloop(1, ""))
    with pytest.raises(RuntimeError, match="mloop monitor failed with exit code 1"):
        kfp_components.monitor(broken, str(tmp_path), "mloop.yaml", "")
    with pytest.raises(RuntimeError, match="mloop retrain --if-needed failed with exit code 1"):
        kfp_components.retrain(broken, str(tmp_path), "mloop.yaml", window)


def test_batch_scoring_hands_its_output_to_the_drift_step(tmp_path: Path, fake_mloop: Any) -> None:
    project = tmp_path / "project"
    project.mkdir()
    mounted = tmp_path / "mloop.yaml"
    mounted.write_text("name: from-configmap\n", encoding="utf-8")
    mloop = str(fake_mloop(0, json.dumps({"rows": 10, "dataset_drift": True})))
    scored = kfp_components.score(mloop, str(project), "mloop.yaml", str(mounted), "data/new.csv", "s.parquet", "local")
    assert scored == "s.parquet"
    assert (project / "mloop.yaml").read_text(encoding="utf-8") == "name: from-configmap\n"
    report = kfp_components.drift(mloop, str(project), "mloop.yaml", scored, "local")
    assert json.loads(report)["dataset_drift"] is True  # drift is in the report: the step succeeds
    assert calls(tmp_path) == [
        f"{project} -c mloop.yaml score data/new.csv -o s.parquet --engine local --json",
        f"{project} -c mloop.yaml monitor --window s.parquet --engine local --json",
    ]


def test_a_batch_step_fails_on_any_error_even_monitors_no_traffic_code(tmp_path: Path, fake_mloop: Any) -> None:
    failing = str(fake_mloop(NO_TRAFFIC_EXIT_CODE, ""))  # an empty scored table: no window to judge, a failure here
    with pytest.raises(subprocess.CalledProcessError, match=f"exit status {NO_TRAFFIC_EXIT_CODE}"):
        kfp_components.drift(failing, str(tmp_path), "mloop.yaml", "scores", "spark")
    with pytest.raises(subprocess.CalledProcessError, match=f"exit status {NO_TRAFFIC_EXIT_CODE}"):
        kfp_components.score(failing, str(tmp_path), "mloop.yaml", "", "in", "scores", "spark")

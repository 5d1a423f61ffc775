"""What `mloop export` refuses, and how: every value lands in the generated file as a literal, never as code."""

from __future__ import annotations

import ast
import inspect
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.helpers.cli import mloop

from mloop.cli.main import exit_code
from mloop.errors import ExportError, MonitorError
from mloop.export import kfp_components, options
from mloop.export.airflow_dag import AirflowSpec, render
from mloop.export.kubeflow_pipeline import KubeflowSpec, compile_pipeline
from mloop.export.stages import MONITORING, NO_TRAFFIC_EXIT_CODE, TRAINING, batch
from mloop.project import Project

pytestmark = pytest.mark.integration


def constants(source: str) -> dict[str, object]:
    """The module-level NAME = literal assignments of a generated file."""
    tree = ast.parse(source)
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
        and not isinstance(node.value, (ast.Dict, ast.List, ast.ListComp, ast.Call))
    }  # fmt: skip


@pytest.mark.parametrize(
    "hostile",
    [
        '/srv/it\'s "quoted"',
        "/srv/$(touch /tmp/pwned)/`id`",
        "/srv/@@CONFIG@@/@@MLOOP@@",  # a placeholder inside a value is not substituted again
        "/srv/''' + __import__('os').system('id') + '''",
        '/srv/"""; import os; """',
        "/srv/back\\slash/ünïcödé",
    ],
)
def test_values_are_literals_in_the_dag_file(hostile: str) -> None:
    spec = AirflowSpec(project="p", dag_id="mloop_p", mloop=hostile + "/mloop", project_dir=hostile)
    found = constants(render(spec))
    assert found["MLOOP"] == hostile + "/mloop"
    assert found["PROJECT_DIR"] == hostile
    assert found["CONFIG"] == "mloop.yaml"


def test_stage_lists_are_written_as_they_are() -> None:
    local = constants(render(AirflowSpec(project="p", dag_id="p", mloop="/bin/mloop", project_dir="/p")))
    assert local["TRAINING"] == tuple(s.as_literal() for s in TRAINING)
    assert local["MONITORING"] == tuple(s.as_literal() for s in MONITORING)
    k8s = constants(render(AirflowSpec(project="p", dag_id="p", mode="kubernetes", secrets=("a", "b.c"))))
    assert k8s["SECRETS"] == ("a", "b.c")
    assert k8s["SERVICE_ACCOUNT"] is None
    assert NO_TRAFFIC_EXIT_CODE == exit_code(MonitorError)  # the skip code is mloop's "no traffic yet"
    # The Kubeflow components are self-contained functions: the same stages, the same code written out.
    for stage in (*TRAINING, *MONITORING):
        assert callable(getattr(kfp_components, stage.name))
    for stage in MONITORING:
        assert f"returncode == {NO_TRAFFIC_EXIT_CODE}:" in inspect.getsource(getattr(kfp_components, stage.name))
    # The batch DAG's stages, and no skip code in them: `monitor --window` exits 0 on a drifted table.
    spec = AirflowSpec(project="p", dag_id="p", mode="kubernetes", batch_input="in", batch_output="out")
    assert constants(render(spec))["BATCH"] == tuple(
        s.as_literal() for s in batch("{{ params.batch_input }}", "{{ params.batch_output }}", "spark")
    )
    assert all(not s.skip_exit_codes for s in batch("in", "out", "spark"))
    for name in ("score", "drift"):
        assert "returncode" not in inspect.getsource(getattr(kfp_components, name))  # check=True: any error fails


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schedule": "every day"}, "is not a cron expression"),
        ({"schedule": "61 * * * *"}, "is not a cron expression"),
        ({"monitor_schedule": "@sometimes"}, "is not a schedule preset"),
        ({"dag_id": "my dag"}, "is not a valid Airflow DAG id"),
        ({"retries": 99}, "out of range"),
        ({"mloop": "bin/mloop"}, "must be an absolute path"),
        ({"project_dir": "/a\nb"}, "control character"),
        ({"config": "../mloop.yaml"}, "must be a file name"),
        ({"mode": "kubernetes", "image": "Not An Image"}, "is not a container image reference"),
        ({"mode": "kubernetes", "namespace": "Team_A"}, "is not a Kubernetes namespace"),
        ({"mode": "kubernetes", "pvc": "UPPER"}, "is not a Kubernetes object name"),
        ({"mode": "kubernetes", "secrets": ("ok", "-bad")}, "--secret '-bad'"),
        ({"mode": "kubernetes", "config_key": "a/b"}, "is not a ConfigMap key"),
    ],
)
def test_bad_values_get_clear_errors(change: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"project": "p", "dag_id": "p", "mloop": "/bin/mloop", "project_dir": "/p"}
    with pytest.raises(ExportError) as caught:
        render(AirflowSpec(**(base | change)))  # type: ignore[arg-type]
    assert message in caught.value.message
    assert exit_code(caught.value) == 2


def test_schedules_that_are_accepted() -> None:
    assert options.schedule("none") is None
    assert options.schedule("") is None
    assert options.schedule("@daily") == "@daily"
    assert options.schedule(" 0  3 * * 0 ") == "0 3 * * 0"
    assert options.image("localhost:5000/team/mloop@sha256:" + "a" * 64)
    assert options.image("mloop")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, export_project: Callable[[Path, str], Project]) -> Project:
    return export_project(tmp_path_factory.mktemp("export-cli"), "cli")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["airflow", "--image", "mloop:1"], "--image only applies to --mode kubernetes"),
        (["airflow", "--mode", "kubernetes", "--mloop", "/usr/bin/mloop"], "--mloop only applies to --mode local"),
        (["airflow", "--schedule", "every monday"], "is not a cron expression"),
        (["kubeflow", "--pvc", "Bad_Name"], "is not a Kubernetes object name"),
        (["airflow", "--batch-input", "data/new.csv"], "--batch-input needs --batch-output too"),
        (["airflow", "--batch-engine", "local"], "--batch-engine only applies with --batch-input and --batch-output"),
        (["airflow", "--batch-schedule", "@daily"], "--batch-schedule only applies with --batch-input"),
        (["airflow", "--batch-input", "a.csv", "--batch-output", "a.csv"], "scoring would overwrite its own input"),
        (["kubeflow", "--pipeline", "batch"], "--pipeline batch needs --batch-input and --batch-output"),
        (["kubeflow", "--batch-input", "a", "--batch-output", "b"], "only apply to --pipeline batch"),
        (
            ["kubeflow", "--pipeline", "batch", "--batch-input", "a.csv", "--batch-output", "b"]
            + ["--batch-engine", "local"],
            "with --batch-engine local the scores are one file",
        ),
    ],
)
def test_the_cli_says_what_is_wrong(project: Project, tmp_path: Path, args: list[str], message: str) -> None:
    done = mloop("export", *args, "-o", str(tmp_path / "out"), cwd=project.root)
    assert done.returncode == 2, done.stderr
    assert message in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_kubeflow_without_kfp_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [m for m in sys.modules if m == "kfp" or m.startswith("kfp.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "kfp", None)  # as if it were not installed
    with pytest.raises(ExportError) as caught:
        compile_pipeline(KubeflowSpec(project="p"), tmp_path / "pipeline.yaml")
    assert "pip install 'mloop[kubeflow]'" in caught.value.message
    assert not (tmp_path / "pipeline.yaml").exists()

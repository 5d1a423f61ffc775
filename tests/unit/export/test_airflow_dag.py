"""The generated Airflow DAG file, run against stand-ins for the Airflow (and kubernetes) modules it imports:
it compiles, chains the stages in order, and carries every value as a literal."""

from __future__ import annotations

import ast
import sys
import types
from typing import Any

import pytest

from mloop.errors import ExportError
from mloop.export import options
from mloop.export.airflow_dag import AirflowSpec, render
from mloop.export.stages import MONITORING, NO_TRAFFIC_EXIT_CODE, TRAINING

LOCAL = AirflowSpec(project="houses", dag_id="mloop_houses", mloop="/opt/mloop/bin/mloop", project_dir="/srv/houses")
KUBERNETES = AirflowSpec(project="houses", dag_id="mloop_houses", mode="kubernetes")


class FakeDAG:
    """Records its arguments and the tasks made inside its ``with`` block."""

    current: FakeDAG | None = None

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.tasks: list[FakeOperator] = []

    def __enter__(self) -> FakeDAG:
        FakeDAG.current = self
        return self

    def __exit__(self, *exc: object) -> None:
        FakeDAG.current = None


class FakeOperator:
    def __init__(self, **kwargs: Any) -> None:
        assert FakeDAG.current is not None, "a task made outside its DAG"
        self.kwargs = kwargs
        self.downstream: list[FakeOperator] = []
        FakeDAG.current.tasks.append(self)

    def __rshift__(self, other: FakeOperator) -> FakeOperator:
        self.downstream.append(other)
        return other


def fake_param(default: Any, **kwargs: Any) -> dict[str, Any]:
    return {"default": default, **kwargs}


class FakeK8sModels:
    """``k8s.V1Anything(**kwargs)`` → ``("V1Anything", kwargs)``."""

    def __getattr__(self, name: str) -> Any:
        return lambda **kwargs: (name, kwargs)


def module(name: str, **attributes: Any) -> types.ModuleType:
    made = types.ModuleType(name)
    made.__dict__.update(attributes)
    return made


@pytest.fixture
def fake_airflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Airflow 3's modules (and the kubernetes client), as the generated file imports them."""
    fakes = {
        "airflow": module("airflow"),
        "airflow.sdk": module("airflow.sdk", DAG=FakeDAG, Param=fake_param),
        "airflow.providers": module("airflow.providers"),
        "airflow.providers.standard": module("airflow.providers.standard"),
        "airflow.providers.standard.operators": module("airflow.providers.standard.operators"),
        "airflow.providers.standard.operators.bash": module("bash", BashOperator=FakeOperator),
        "airflow.providers.cncf": module("airflow.providers.cncf"),
        "airflow.providers.cncf.kubernetes": module("airflow.providers.cncf.kubernetes"),
        "airflow.providers.cncf.kubernetes.operators": module("airflow.providers.cncf.kubernetes.operators"),
        "airflow.providers.cncf.kubernetes.operators.pod": module("pod", KubernetesPodOperator=FakeOperator),
        "kubernetes": module("kubernetes"),
        "kubernetes.client": module("kubernetes.client", models=FakeK8sModels()),
    }
    for name, fake in fakes.items():
        monkeypatch.setitem(sys.modules, name, fake)


def load(text: str) -> dict[str, Any]:
    """Run the DAG file as Airflow's parser would; its module namespace."""
    namespace: dict[str, Any] = {"__name__": "mloop_dag"}
    exec(compile(text, "mloop_dag.py", "exec"), namespace)  # noqa: S102 - the file under test
    return namespace


def chain(dag: FakeDAG) -> list[str]:
    """The task ids from the first task along its downstream links; each task has at most one."""
    ids = [t.kwargs["task_id"] for t in dag.tasks]
    assert all(len(t.downstream) == (i < len(dag.tasks) - 1) for i, t in enumerate(dag.tasks)), ids
    order, task = [], dag.tasks[0]
    while True:
        order.append(task.kwargs["task_id"])
        if not task.downstream:
            return order
        task = task.downstream[0]


def constants(text: str) -> dict[str, Any]:
    """The module-level ``NAME = literal`` assignments of the file."""
    out = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue  # a call or a comprehension, not a literal
    return out


@pytest.mark.parametrize("spec", [LOCAL, KUBERNETES], ids=["local", "kubernetes"])
def test_the_file_compiles_and_imports_only_airflow(spec: AirflowSpec) -> None:
    text = render(spec)
    compile(text, "dag.py", "exec")
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported == (
        {"__future__", "datetime", "airflow"} | ({"kubernetes"} if spec.mode == "kubernetes" else set())
    )
    assert f"(mode: {spec.mode})" in text and f"(mloop {options.mloop_version()})" in text


def test_local_dags_chain_the_stages_in_order_through_bash(fake_airflow: None) -> None:
    namespace = load(render(LOCAL))
    train, monitor = namespace["train_dag"], namespace["monitor_dag"]
    assert chain(train) == ["ingest", "validate", "train", "register", "promote"] == [s.name for s in TRAINING]
    assert chain(monitor) == ["monitor", "retrain"] == [s.name for s in MONITORING]
    assert train.kwargs["dag_id"] == "mloop_houses" and monitor.kwargs["dag_id"] == "mloop_houses_monitor"
    assert (train.kwargs["schedule"], monitor.kwargs["schedule"]) == (None, "@hourly")
    assert train.kwargs["max_active_runs"] == 1 and not train.kwargs["catchup"]
    assert train.kwargs["default_args"]["retries"] == 0
    assert train.kwargs["params"]["project_dir"]["default"] == "/srv/houses"
    assert train.kwargs["params"]["mloop"]["default"] == "/opt/mloop/bin/mloop"
    commands = [t.kwargs["bash_command"] for t in train.tasks + monitor.tasks]
    prefix = 'cd "$PIPELINE_PROJECT_DIR" && exec "$PIPELINE_MLOOP" -c "$PIPELINE_CONFIG" '
    assert commands == [prefix + a for a in ("ingest", "validate", "train", "register", "promote")] + [
        prefix + "monitor",
        prefix + "retrain --if-needed",
    ]
    assert [t.kwargs["skip_on_exit_code"] for t in train.tasks] == [None] * 5
    assert [t.kwargs["skip_on_exit_code"] for t in monitor.tasks] == [[NO_TRAFFIC_EXIT_CODE]] * 2
    assert train.tasks[0].kwargs["env"]["PIPELINE_PROJECT_DIR"] == "{{ params.project_dir }}"


def test_kubernetes_dags_run_each_stage_in_a_pod_of_the_image(fake_airflow: None) -> None:
    spec = AirflowSpec(
        project="houses",
        dag_id="mloop_houses",
        mode="kubernetes",
        schedule="0 3 * * 0",
        retries=2,
        image="registry.example.com/mloop:1.2",
        namespace="ml",
        secrets=("aws", "tracking.db"),
        service_account="mloop-runner",
    )
    namespace = load(render(spec))
    train, monitor = namespace["train_dag"], namespace["monitor_dag"]
    assert chain(train) == [s.name for s in TRAINING] and chain(monitor) == [s.name for s in MONITORING]
    assert train.kwargs["schedule"] == "0 3 * * 0" and train.kwargs["default_args"]["retries"] == 2
    assert train.kwargs["params"]["image"]["default"] == "registry.example.com/mloop:1.2"
    retrain = monitor.tasks[1].kwargs
    assert retrain["cmds"] == ["mloop"]
    assert retrain["arguments"] == ["-c", "/project/mloop.yaml", "retrain", "--if-needed"]
    assert retrain["image"] == "{{ params.image }}" and retrain["namespace"] == "ml"
    assert retrain["service_account_name"] == "mloop-runner"
    assert retrain["skip_on_exit_code"] == [NO_TRAFFIC_EXIT_CODE]
    assert [ref[1]["secret_ref"][1]["name"] for ref in retrain["env_from"]] == ["aws", "tracking.db"]
    assert train.tasks[0].kwargs["name"] == "mloop-ingest"
    assert load(render(KUBERNETES))["train_dag"].tasks[0].kwargs["env_from"] is None  # no secrets: none


@pytest.mark.parametrize(
    "hostile",
    [
        'it\'s "quoted"',
        "line\nbreak",
        "@@PROJECT_DIR@@ @@MLOOP@@",  # a placeholder inside a value is not substituted again
        "''' + __import__('os').system('id') + '''",
        '"""; import os; """',
    ],
)
def test_any_project_name_is_written_as_a_literal(hostile: str, fake_airflow: None) -> None:
    text = render(AirflowSpec(project=hostile, dag_id="mloop_x", mloop="/bin/mloop", project_dir="/p"))
    assert constants(text)["PROJECT"] == hostile
    namespace = load(text)
    assert namespace["train_dag"].kwargs["tags"] == ["mloop", hostile]
    assert namespace["PROJECT_DIR"] == "/p" and namespace["MLOOP"] == "/bin/mloop"


def test_schedules_are_tidied_and_the_monitor_dag_id_must_fit_too() -> None:
    spec = AirflowSpec(project="p", dag_id="p", mode="kubernetes", schedule=" 0  3 * * 0 ", monitor_schedule="none")
    found = constants(render(spec))
    assert (found["TRAIN_SCHEDULE"], found["MONITOR_SCHEDULE"]) == ("0 3 * * 0", None)
    assert render(AirflowSpec(project="p", dag_id="d" * 242, mode="kubernetes"))  # 242 + "_monitor" = 250
    with pytest.raises(ExportError, match="_monitor' is not a valid Airflow DAG id"):
        render(AirflowSpec(project="p", dag_id="d" * 243, mode="kubernetes"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mode": "docker"}, "--mode 'docker' is not one of local, kubernetes"),
        ({"config": "conf/mloop.yaml"}, "must be a file name in the project"),
        ({"config": ".."}, "must be a file name in the project"),
        ({"mloop": "mloop"}, "--mloop 'mloop' must be an absolute path"),
        ({"mode": "kubernetes", "configmap": "Config"}, "--configmap 'Config' is not a Kubernetes object name"),
        ({"mode": "kubernetes", "service_account": "svc_1"}, "--service-account 'svc_1'"),
    ],
)
def test_a_spec_is_checked_before_anything_is_rendered(change: dict[str, Any], message: str) -> None:
    spec = AirflowSpec(**({"project": "p", "dag_id": "p", "mloop": "/bin/mloop", "project_dir": "/p"} | change))
    with pytest.raises(ExportError, match=message.replace(".", r"\.")):
        render(spec)


def test_kubernetes_mode_ignores_the_local_only_values() -> None:
    # mloop and project_dir are not written in kubernetes mode, so they are not checked there either
    spec = AirflowSpec(project="p", dag_id="p", mode="kubernetes", mloop="relative", project_dir="also relative")
    text = render(spec)
    assert "relative" not in text and 'PROJECT_DIR = "/project"' in text

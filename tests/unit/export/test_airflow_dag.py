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


# ------------------------------------------------------------------ the batch DAG (score -> drift)

BATCH = {"batch_input": "data/new.parquet", "batch_output": "/srv/scores"}
PREFIX = 'cd "$PIPELINE_PROJECT_DIR" && exec "$PIPELINE_MLOOP" -c "$PIPELINE_CONFIG" '


def batch_spec(base: AirflowSpec, **change: Any) -> AirflowSpec:
    return AirflowSpec(**(base.__dict__ | BATCH | change))


@pytest.mark.parametrize("spec", [LOCAL, KUBERNETES], ids=["local", "kubernetes"])
def test_without_the_batch_options_there_is_no_batch_dag(spec: AirflowSpec, fake_airflow: None) -> None:
    text = render(spec)
    assert "BATCH" not in text and "batch" not in text
    assert spec.batch_paths is None
    assert set(load(text)) >= {"train_dag", "monitor_dag"} and "batch_dag" not in load(text)


def test_local_batch_dag_scores_then_judges_the_scores_through_bash(fake_airflow: None) -> None:
    text = render(batch_spec(LOCAL, batch_schedule="@daily"))
    namespace = load(text)
    batch, train = namespace["batch_dag"], namespace["train_dag"]
    assert chain(batch) == ["score", "drift"]
    assert batch.kwargs["dag_id"] == "mloop_houses_batch" and batch.kwargs["schedule"] == "@daily"
    assert batch.kwargs["max_active_runs"] == 1 and batch.kwargs["tags"] == ["mloop", "houses"]
    assert [t.kwargs["bash_command"] for t in batch.tasks] == [
        PREFIX + 'score "$PIPELINE_BATCH_INPUT" -o "$PIPELINE_BATCH_OUTPUT" --engine spark',
        PREFIX + 'monitor --window "$PIPELINE_BATCH_OUTPUT" --engine spark',
    ]
    assert [t.kwargs["skip_on_exit_code"] for t in batch.tasks] == [None, None]  # drift exits 0; anything else fails
    params = batch.kwargs["params"]
    assert params["batch_input"]["default"] == "data/new.parquet"  # relative: the task runs in the project folder
    assert params["batch_output"]["default"] == "/srv/scores"
    assert params["project_dir"]["default"] == "/srv/houses" and params["mloop"]["default"] == "/opt/mloop/bin/mloop"
    env = batch.tasks[0].kwargs["env"]
    assert env["PIPELINE_BATCH_INPUT"] == "{{ params.batch_input }}"
    assert env["PIPELINE_BATCH_OUTPUT"] == "{{ params.batch_output }}"
    assert env["PIPELINE_PROJECT_DIR"] == "{{ params.project_dir }}"
    # the other two DAGs are as they were: no batch params, no batch variables in their tasks' environment
    assert chain(train) == [s.name for s in TRAINING] and chain(namespace["monitor_dag"]) == [
        s.name for s in MONITORING
    ]
    assert "batch_input" not in train.kwargs["params"] and "PIPELINE_BATCH_INPUT" not in train.tasks[0].kwargs["env"]
    assert "* the batch DAG: score -> drift" in text and "MLOOP_SPARK__MASTER in the worker's environment" in text


def test_kubernetes_batch_dag_runs_both_steps_in_pods_with_paths_under_the_claim(fake_airflow: None) -> None:
    spec = batch_spec(KUBERNETES, batch_output="s3a://bucket/houses/scores")
    text = render(spec)
    batch = load(text)["batch_dag"]
    assert chain(batch) == ["score", "drift"] and batch.kwargs["schedule"] is None  # default: triggered
    assert [t.kwargs["arguments"] for t in batch.tasks] == [
        ["-c", "/project/mloop.yaml", "score", "{{ params.batch_input }}", "-o", "{{ params.batch_output }}"]
        + ["--engine", "spark"],
        ["-c", "/project/mloop.yaml", "monitor", "--window", "{{ params.batch_output }}", "--engine", "spark"],
    ]
    assert [t.kwargs["cmds"] for t in batch.tasks] == [["mloop"]] * 2
    assert [t.kwargs["name"] for t in batch.tasks] == ["mloop-score", "mloop-drift"]
    assert [t.kwargs["skip_on_exit_code"] for t in batch.tasks] == [None, None]
    params = batch.kwargs["params"]
    assert params["batch_input"]["default"] == "/project/data/new.parquet"  # relative: on the project's claim
    assert params["batch_output"]["default"] == "s3a://bucket/houses/scores"  # a URI: as it is
    assert params["image"]["default"] == options.DEFAULT_IMAGE
    assert "MLOOP_SPARK__MASTER from a Secret" in text and "k8s://https://kubernetes.default.svc" in text
    assert "mloop[spark] and Java" in text


def test_a_local_engine_batch_dag_names_no_spark() -> None:
    text = render(batch_spec(LOCAL, batch_output="scores/batch.csv", batch_engine="local"))
    batch = constants(text)["BATCH"]
    assert [stage[1] for stage in batch] == [
        ("score", '"$PIPELINE_BATCH_INPUT"', "-o", '"$PIPELINE_BATCH_OUTPUT"', "--engine", "local"),
        ("monitor", "--window", '"$PIPELINE_BATCH_OUTPUT"', "--engine", "local"),
    ]
    assert "MLOOP_SPARK__MASTER" not in text and "--engine local`" in text


@pytest.mark.parametrize(
    "hostile",
    ['it\'s "quoted" $(id) `id`', "@@PROJECT_DIR@@", "''' + __import__('os').system('id') + '''", '"""; import os'],
)
def test_batch_paths_are_literals_that_never_reach_the_shell(hostile: str, fake_airflow: None) -> None:
    text = render(batch_spec(LOCAL, batch_input=hostile))
    assert constants(text)["BATCH_INPUT"] == hostile
    batch = load(text)["batch_dag"]
    assert batch.kwargs["params"]["batch_input"]["default"] == hostile
    assert all(hostile not in t.kwargs["bash_command"] for t in batch.tasks)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"batch_output": None}, "--batch-input needs --batch-output too"),
        ({"batch_input": None}, "--batch-output needs --batch-input too"),
        ({"batch_input": None, "batch_output": None, "batch_schedule": "@daily"}, "--batch-schedule only applies"),
        ({"batch_schedule": "@sometimes"}, "--batch-schedule '@sometimes' is not a schedule preset"),
        ({"batch_schedule": "every day"}, "--batch-schedule 'every day' is not a cron expression"),
        ({"batch_engine": "dask"}, "--batch-engine 'dask' is not one of local, spark"),
        ({"batch_output": "data/new.parquet/"}, "scoring would overwrite its own input"),
        ({"batch_engine": "local"}, "with --batch-engine local the scores are one file"),
        ({"batch_input": "-x.csv"}, "starts with '-'"),
        ({"batch_input": "/a\nb"}, "contains a control character"),
        ({"batch_input": "/data/{{ ds }}"}, "contains a Jinja template"),
        ({"batch_output": " "}, "--batch-output is empty"),
    ],
)
def test_the_batch_options_are_checked(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ExportError, match=message.replace(".", r"\.").replace("[", r"\[")):
        render(batch_spec(LOCAL, **change))


def test_the_batch_dag_id_adds_batch_to_the_training_one() -> None:
    text = render(batch_spec(LOCAL, dag_id="d" * 242))  # 242 + "_monitor" = 250: the longer suffix still fits
    assert constants(text)["BATCH_DAG_ID"] == "d" * 242 + "_batch"

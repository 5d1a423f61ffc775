"""`mloop export airflow`: a DAG file whose tasks are the pipeline's stages.

The file is generated from a template in which every value is a Python literal written with
``repr``, so nothing a user passes can change the code around it. It imports only Airflow (and, in
kubernetes mode, the ``kubernetes`` client the cncf provider brings): mloop runs as a command, on
the same machine (``local``: BashOperator) or in the mloop image (``kubernetes``: KubernetesPodOperator).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from mloop.errors import ExportError
from mloop.export import options
from mloop.export.stages import MONITORING, TRAINING, Stage, batch

Mode = Literal["local", "kubernetes"]
MODES: tuple[Mode, ...] = ("local", "kubernetes")
POD_PROJECT_DIR = "/project"  # kubernetes mode: where the project's claim is mounted in every pod


@dataclass(frozen=True)
class AirflowSpec:
    """What the DAG file needs; ``check()`` validates it before anything is written."""

    project: str
    dag_id: str
    mode: Mode = "local"
    schedule: str | None = None  # the training DAG: none = triggered by hand, the API or a dataset change
    monitor_schedule: str | None = "@hourly"
    retries: int = 0
    # local mode
    mloop: str = "mloop"
    project_dir: str = "/project"
    config: str = "mloop.yaml"
    # kubernetes mode
    image: str = options.DEFAULT_IMAGE
    namespace: str = "default"
    pvc: str = "mloop-project"
    configmap: str = "mloop-config"
    config_key: str = "mloop.yaml"
    secrets: tuple[str, ...] = field(default_factory=tuple)
    service_account: str | None = None
    # the batch DAG (<dag_id>_batch: score -> drift), written only when both paths are given
    batch_input: str | None = None
    batch_output: str | None = None
    batch_engine: str = "spark"
    batch_schedule: str | None = None

    @property
    def batch_paths(self) -> tuple[str, str] | None:
        """The batch DAG's input and output as its tasks see them (kubernetes: relative ones under /project)."""
        paths = options.batch_paths(self.batch_input, self.batch_output, self.batch_engine)
        if paths is None or self.mode == "local":
            return paths  # a local task runs in the project folder
        return options.in_folder(paths[0], POD_PROJECT_DIR), options.in_folder(paths[1], POD_PROJECT_DIR)

    def check(self) -> AirflowSpec:
        if self.mode not in MODES:
            raise ExportError(f"--mode {self.mode!r} is not one of {', '.join(MODES)}.")
        options.dag_id(self.dag_id)
        options.dag_id(self.dag_id + "_monitor")  # the longer of the two ids must still be valid
        options.schedule(self.schedule)
        options.schedule(self.monitor_schedule, "--monitor-schedule")
        options.retries(self.retries)
        if self.batch_paths is not None:
            options.dag_id(self.dag_id + "_batch")
            options.schedule(self.batch_schedule, "--batch-schedule")
        elif self.batch_schedule is not None:
            raise ExportError("--batch-schedule only applies with --batch-input and --batch-output (the batch DAG).")
        if self.mode == "local":
            options.absolute_path(self.mloop, "--mloop")
            options.absolute_path(self.project_dir, "--project-dir")
            if "/" in self.config or self.config in ("", ".", ".."):
                raise ExportError(f"the config file name {self.config!r} must be a file name in the project.")
        else:
            options.image(self.image)
            options.namespace(self.namespace)
            options.k8s_name(self.pvc, "--pvc")
            options.k8s_name(self.configmap, "--configmap")
            options.config_key(self.config_key)
            for name in self.secrets:
                options.k8s_name(name, "--secret")
            if self.service_account is not None:
                options.k8s_name(self.service_account, "--service-account")
        return self


_HEADER = '''\
"""mloop's pipelines for one project as Airflow DAGs (mode: @@MODE@@).

* the training DAG: ingest -> validate -> train -> register -> promote (what `mloop run` does);
* the monitoring DAG: monitor -> retrain --if-needed (a task with no traffic to look at is skipped).@@BATCH_DOC@@

Written by `mloop export airflow` (mloop @@VERSION@@); export again rather than editing, or change the
values below. This file imports only Airflow and what its providers bring: mloop runs as a command.
"""

from __future__ import annotations

import datetime
'''

_LOCAL = """
try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG, Param
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.models.param import Param
    from airflow.operators.bash import BashOperator

PROJECT = @@PROJECT@@
TRAIN_DAG_ID = @@TRAIN_DAG_ID@@
MONITOR_DAG_ID = @@MONITOR_DAG_ID@@
TRAIN_SCHEDULE = @@SCHEDULE@@
MONITOR_SCHEDULE = @@MONITOR_SCHEDULE@@
RETRIES = @@RETRIES@@
# Defaults of the DAG params (a run can override them in its conf):
MLOOP = @@MLOOP@@  # the mloop executable
PROJECT_DIR = @@PROJECT_DIR@@  # the project folder: mloop.yaml and its .mloop/ workspace
CONFIG = @@CONFIG@@  # the config file in that folder
# (task id, mloop arguments, what it does, exit codes that mark the task skipped)
TRAINING = @@TRAINING@@
MONITORING = @@MONITORING@@

PARAMS = {
    "mloop": Param(MLOOP, type="string", description="Path of the mloop executable."),
    "project_dir": Param(PROJECT_DIR, type="string", description="The project folder."),
    "config": Param(CONFIG, type="string", description="The project config file, in the project folder."),
}
# The params reach the command as environment variables, so no value is ever parsed by the shell.
ENV = {
    "PIPELINE_MLOOP": "{{ params.mloop }}",
    "PIPELINE_PROJECT_DIR": "{{ params.project_dir }}",
    "PIPELINE_CONFIG": "{{ params.config }}",
}


def stage_task(task_id, args, doc, skip_exit_codes, env=ENV):
    command = 'cd "$PIPELINE_PROJECT_DIR" && exec "$PIPELINE_MLOOP" -c "$PIPELINE_CONFIG" ' + " ".join(args)
    return BashOperator(
        task_id=task_id,
        bash_command=command,
        env=env,
        append_env=True,
        skip_on_exit_code=list(skip_exit_codes) or None,
        do_xcom_push=False,
        doc_md=doc,
    )
"""

_KUBERNETES = """
from kubernetes.client import models as k8s

try:  # Airflow 3
    from airflow.sdk import DAG, Param
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.models.param import Param
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

PROJECT = @@PROJECT@@
TRAIN_DAG_ID = @@TRAIN_DAG_ID@@
MONITOR_DAG_ID = @@MONITOR_DAG_ID@@
TRAIN_SCHEDULE = @@SCHEDULE@@
MONITOR_SCHEDULE = @@MONITOR_SCHEDULE@@
RETRIES = @@RETRIES@@
IMAGE = @@IMAGE@@  # the mloop image (deploy/docker/Dockerfile); a run can override it in its conf
NAMESPACE = @@NAMESPACE@@
PROJECT_PVC = @@PVC@@  # the project folder (snapshots, contract, MLflow store if local) lives on this claim
CONFIG_MAP = @@CONFIGMAP@@  # holds mloop.yaml
CONFIG_KEY = @@CONFIG_KEY@@  # its key in the ConfigMap
SECRETS = @@SECRETS@@  # Secrets whose keys become environment variables (AWS_*, MLOOP_TRACKING__URI, ...)
SERVICE_ACCOUNT = @@SERVICE_ACCOUNT@@
PROJECT_DIR = "/project"  # where the claim is mounted; mloop.yaml is mounted into it from the ConfigMap
FS_GROUP = 10001  # the image's user and group (deploy/docker/Dockerfile): the claim is made writable for it
# (task id, mloop arguments, what it does, exit codes that mark the task skipped)
TRAINING = @@TRAINING@@
MONITORING = @@MONITORING@@

PARAMS = {"image": Param(IMAGE, type="string", description="The mloop image the stages run in.")}
VOLUMES = [
    k8s.V1Volume(
        name="project",
        persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(claim_name=PROJECT_PVC),
    ),
    k8s.V1Volume(
        name="config",
        config_map=k8s.V1ConfigMapVolumeSource(
            name=CONFIG_MAP, items=[k8s.V1KeyToPath(key=CONFIG_KEY, path="mloop.yaml")]
        ),
    ),
]
VOLUME_MOUNTS = [
    k8s.V1VolumeMount(name="project", mount_path=PROJECT_DIR),
    k8s.V1VolumeMount(name="config", mount_path=PROJECT_DIR + "/mloop.yaml", sub_path="mloop.yaml", read_only=True),
]
ENV_FROM = [k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=name)) for name in SECRETS]
SECURITY_CONTEXT = k8s.V1PodSecurityContext(run_as_non_root=True, fs_group=FS_GROUP)


def stage_task(task_id, args, doc, skip_exit_codes):
    return KubernetesPodOperator(
        task_id=task_id,
        name="mloop-" + task_id,
        namespace=NAMESPACE,
        image="{{ params.image }}",
        cmds=["mloop"],
        arguments=["-c", PROJECT_DIR + "/mloop.yaml", *args],
        volumes=VOLUMES,
        volume_mounts=VOLUME_MOUNTS,
        env_from=ENV_FROM or None,
        service_account_name=SERVICE_ACCOUNT,
        security_context=SECURITY_CONTEXT,
        labels={"app.kubernetes.io/name": "mloop", "app.kubernetes.io/component": task_id},
        skip_on_exit_code=list(skip_exit_codes) or None,
        get_logs=True,
        on_finish_action="delete_pod",
        do_xcom_push=False,
        doc_md=doc,
    )
"""

_DAGS = '''

def pipeline(dag_id, schedule, stages, description, params=PARAMS, **task_options):
    """One DAG whose tasks run the stages in order; one run at a time, since they share the project."""
    with DAG(
        dag_id=dag_id,
        description=description,
        schedule=schedule,
        start_date=datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc),
        catchup=False,
        max_active_runs=1,
        params=params,
        default_args={"retries": RETRIES, "retry_delay": datetime.timedelta(minutes=5)},
        tags=["mloop", PROJECT],
    ) as dag:
        previous = None
        for stage in stages:
            task = stage_task(*stage, **task_options)
            if previous is not None:
                previous >> task
            previous = task
    return dag


train_dag = pipeline(
    TRAIN_DAG_ID, TRAIN_SCHEDULE, TRAINING, "mloop " + PROJECT + ": ingest, validate, train, register, promote"
)
monitor_dag = pipeline(
    MONITOR_DAG_ID, MONITOR_SCHEDULE, MONITORING, "mloop " + PROJECT + ": monitor, retrain if needed"
)
'''


_BATCH_PARAMS = """
BATCH_DAG_ID = @@BATCH_DAG_ID@@
BATCH_SCHEDULE = @@BATCH_SCHEDULE@@
BATCH_ENGINE = @@BATCH_ENGINE@@
# Defaults of the batch DAG's params (a run can override them in its conf); a relative path is in the project folder.
BATCH_INPUT = @@BATCH_INPUT@@  # the table to score: a Parquet or CSV file (with Spark also a folder, or a URI)
BATCH_OUTPUT = @@BATCH_OUTPUT@@  # where the scores go (Spark: a folder of Parquet; its bad rows beside it, _rejects)
BATCH = @@BATCH@@

BATCH_PARAMS = {
    **PARAMS,
    "batch_input": Param(BATCH_INPUT, type="string", description="The table to score."),
    "batch_output": Param(BATCH_OUTPUT, type="string", description="Where the scores go; the drift task reads it."),
}
"""

_BATCH_LOCAL = (
    _BATCH_PARAMS
    + """BATCH_ENV = {
    **ENV,
    "PIPELINE_BATCH_INPUT": "{{ params.batch_input }}",
    "PIPELINE_BATCH_OUTPUT": "{{ params.batch_output }}",
}
batch_dag = pipeline(
    BATCH_DAG_ID,
    BATCH_SCHEDULE,
    BATCH,
    "mloop " + PROJECT + ": score a table (" + BATCH_ENGINE + "), drift of the scores",
    params=BATCH_PARAMS,
    env=BATCH_ENV,
)
"""
)

_BATCH_KUBERNETES = (
    _BATCH_PARAMS
    + """batch_dag = pipeline(
    BATCH_DAG_ID,
    BATCH_SCHEDULE,
    BATCH,
    "mloop " + PROJECT + ": score a table (" + BATCH_ENGINE + "), drift of the scores",
    params=BATCH_PARAMS,
)
"""
)

# What each mode's batch tasks put in the command for the two paths: environment variables (local: the shell
# never parses a value) or the params themselves (kubernetes: pod arguments are rendered, never parsed).
_BATCH_REFERENCES = {
    "local": ('"$PIPELINE_BATCH_INPUT"', '"$PIPELINE_BATCH_OUTPUT"'),
    "kubernetes": ("{{ params.batch_input }}", "{{ params.batch_output }}"),
}


def _batch_doc(mode: Mode, engine: str) -> str:
    """The docstring's words on the batch DAG; fixed by mloop (no value a user passes goes into them)."""
    doc = (
        "\n* the batch DAG: score -> drift: `mloop score INPUT -o OUTPUT --engine " + engine + "`, then"
        "\n  `mloop monitor --window OUTPUT --engine " + engine + "` judges the scored table against the champion's"
        "\n  training reference. A drifted table is in the drift task's log, not a failure (exit code 0); a"
        "\n  task fails only when scoring or profiling does."
    )
    if engine != "spark":
        return doc
    if mode == "local":
        return doc + (
            "\n  Spark: the task's mloop is the driver; its session is spark.remote (or SPARK_REMOTE), else a new"
            "\n  one on spark.master, from mloop.yaml or MLOOP_SPARK__MASTER in the worker's environment"
            "\n  (default local[*]: Spark inside the Airflow worker); needs mloop[spark] and Java there."
        )
    return doc + (
        "\n  Spark: each pod's mloop is the driver; its session is spark.remote (or SPARK_REMOTE), else a new one"
        "\n  on spark.master, from the ConfigMap's mloop.yaml or MLOOP_SPARK__MASTER from a Secret (default"
        "\n  local[*]: Spark inside the pod, sized by its resources). k8s://https://kubernetes.default.svc starts"
        "\n  executors as pods: set spark.conf (spark.kubernetes.container.image, spark.kubernetes.namespace,"
        "\n  spark.driver.host) and give the pods a service account that may create pods. The image needs"
        "\n  mloop[spark] and Java."
    )


_PLACEHOLDER = re.compile(r"@@([A-Z_]+)@@")


def _stage_literal(stages: tuple[Stage, ...]) -> str:
    return "(\n" + "".join(f"    {s.as_literal()!r},\n" for s in stages) + ")"


def render(spec: AirflowSpec) -> str:
    """The DAG file's text for a checked spec; compiled here so a template mistake never reaches a user."""
    spec.check()
    values: dict[str, object] = {
        "PROJECT": spec.project,
        "TRAIN_DAG_ID": spec.dag_id,
        "MONITOR_DAG_ID": spec.dag_id + "_monitor",
        "SCHEDULE": options.schedule(spec.schedule),
        "MONITOR_SCHEDULE": options.schedule(spec.monitor_schedule, "--monitor-schedule"),
        "RETRIES": spec.retries,
    }
    if spec.mode == "local":
        body = _LOCAL
        values |= {"MLOOP": spec.mloop, "PROJECT_DIR": spec.project_dir, "CONFIG": spec.config}
    else:
        body = _KUBERNETES
        values |= {
            "IMAGE": spec.image,
            "NAMESPACE": spec.namespace,
            "PVC": spec.pvc,
            "CONFIGMAP": spec.configmap,
            "CONFIG_KEY": spec.config_key,
            "SECRETS": tuple(spec.secrets),
            "SERVICE_ACCOUNT": spec.service_account,
        }
    literals = {key: repr(value) for key, value in values.items()}
    literals |= {"TRAINING": _stage_literal(TRAINING), "MONITORING": _stage_literal(MONITORING)}
    literals |= {"MODE": spec.mode, "VERSION": options.mloop_version()}  # words in the docstring, both fixed by mloop
    template = _HEADER + body + _DAGS
    paths = spec.batch_paths
    if paths is None:
        literals["BATCH_DOC"] = ""
    else:
        template += _BATCH_LOCAL if spec.mode == "local" else _BATCH_KUBERNETES
        literals |= {
            "BATCH_DAG_ID": repr(spec.dag_id + "_batch"),
            "BATCH_SCHEDULE": repr(options.schedule(spec.batch_schedule, "--batch-schedule")),
            "BATCH_ENGINE": repr(spec.batch_engine),
            "BATCH_INPUT": repr(paths[0]),
            "BATCH_OUTPUT": repr(paths[1]),
            "BATCH": _stage_literal(batch(*_BATCH_REFERENCES[spec.mode], spec.batch_engine)),
            "BATCH_DOC": _batch_doc(spec.mode, spec.batch_engine),
        }
    # One pass: a value that happens to contain "@@NAME@@" is never substituted again.
    text = _PLACEHOLDER.sub(lambda m: literals[m.group(1)], template)
    compile(text, "<mloop airflow dag>", "exec")
    return text

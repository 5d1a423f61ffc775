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
from mloop.export.stages import MONITORING, TRAINING, Stage

Mode = Literal["local", "kubernetes"]
MODES: tuple[Mode, ...] = ("local", "kubernetes")


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

    def check(self) -> AirflowSpec:
        if self.mode not in MODES:
            raise ExportError(f"--mode {self.mode!r} is not one of {', '.join(MODES)}.")
        options.dag_id(self.dag_id)
        options.dag_id(self.dag_id + "_monitor")  # the longer of the two ids must still be valid
        options.schedule(self.schedule)
        options.schedule(self.monitor_schedule, "--monitor-schedule")
        options.retries(self.retries)
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
* the monitoring DAG: monitor -> retrain --if-needed (a task with no traffic to look at is skipped).

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


def stage_task(task_id, args, doc, skip_exit_codes):
    command = 'cd "$PIPELINE_PROJECT_DIR" && exec "$PIPELINE_MLOOP" -c "$PIPELINE_CONFIG" ' + " ".join(args)
    return BashOperator(
        task_id=task_id,
        bash_command=command,
        env=ENV,
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

def pipeline(dag_id, schedule, stages, description):
    """One DAG whose tasks run the stages in order; one run at a time, since they share the project."""
    with DAG(
        dag_id=dag_id,
        description=description,
        schedule=schedule,
        start_date=datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc),
        catchup=False,
        max_active_runs=1,
        params=PARAMS,
        default_args={"retries": RETRIES, "retry_delay": datetime.timedelta(minutes=5)},
        tags=["mloop", PROJECT],
    ) as dag:
        previous = None
        for stage in stages:
            task = stage_task(*stage)
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
    # One pass: a value that happens to contain "@@NAME@@" is never substituted again.
    text = _PLACEHOLDER.sub(lambda m: literals[m.group(1)], _HEADER + body + _DAGS)
    compile(text, "<mloop airflow dag>", "exec")
    return text

"""`mloop export airflow|kubeflow`: the pipeline as an orchestrator's DAG or pipeline."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import typer

from mloop.cli.app import JsonOption, command_group, console, emit_json, project
from mloop.errors import ExportError
from mloop.export import options
from mloop.export.airflow_dag import AirflowSpec, render
from mloop.export.kubeflow_pipeline import KubeflowSpec, compile_pipeline

export_app = command_group("export", "Run the pipeline on an orchestrator: an Airflow DAG file or a Kubeflow pipeline.")

ScheduleOption = Annotated[
    str | None, typer.Option(help="Training DAG: cron ('0 3 * * 0'), preset ('@daily') or 'none' (trigger by hand).")
]
BatchInputOption = Annotated[
    str | None,
    typer.Option(
        help="Also a batch pipeline (score → drift) scoring this table: Parquet or CSV, with Spark also a folder "
        "or a URI; relative to the project folder. Needs --batch-output."
    ),
]
BatchOutputOption = Annotated[
    str | None,
    typer.Option(
        help="The batch pipeline's scores (Spark: a folder of Parquet; local: a .parquet or .csv file), "
        "relative to the project folder; its drift step judges this table."
    ),
]
BatchEngineOption = Annotated[
    str | None, typer.Option(help="Where the batch pipeline scores and profiles: spark (default) or local.")
]


def _mloop_executable() -> str:
    """The mloop command that is running now, as an absolute path (the DAG runs the same one)."""
    beside = Path(sys.executable).parent / "mloop"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside.absolute())
    found = shutil.which("mloop")
    if found is None:
        raise ExportError("cannot find the mloop executable; pass its absolute path with --mloop.")
    return str(Path(found).absolute())


def _batch_engine(batch_input: str | None, batch_output: str | None, engine: str | None) -> str:
    if engine is not None and batch_input is None and batch_output is None:
        raise ExportError("--batch-engine only applies with --batch-input and --batch-output (the batch pipeline).")
    return engine or "spark"


def _only_for(mode: str, given: Mapping[str, object]) -> None:
    wrong = [name for name, value in given.items() if value not in (None, ())]
    if wrong:
        raise ExportError(f"{', '.join(wrong)} only applies to --mode {mode}.")


@export_app.command("airflow")
def export_airflow(
    ctx: typer.Context,
    mode: Annotated[
        Literal["local", "kubernetes"],
        typer.Option(help="local: BashOperator runs mloop on this machine; kubernetes: a pod per stage."),
    ] = "local",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="DAG file (default: mloop_<project>.py).")
    ] = None,
    schedule: ScheduleOption = None,
    monitor_schedule: Annotated[
        str, typer.Option(help="Monitoring DAG (monitor → retrain --if-needed): cron, preset or 'none'.")
    ] = "@hourly",
    dag_id: Annotated[
        str | None, typer.Option(help="Training DAG id; the monitoring one adds _monitor (default: mloop_<project>).")
    ] = None,
    retries: Annotated[int, typer.Option(help="Retries of a failed task.")] = 0,
    mloop: Annotated[
        str | None, typer.Option(help="local: the mloop executable (default: this one's absolute path).")
    ] = None,
    project_dir: Annotated[
        Path | None, typer.Option(help="local: the project folder (default: this project's absolute path).")
    ] = None,
    image: Annotated[
        str | None,
        typer.Option(help=f"kubernetes: the mloop image, deploy/docker/Dockerfile (default: {options.DEFAULT_IMAGE})."),
    ] = None,
    namespace: Annotated[str | None, typer.Option(help="kubernetes: namespace of the pods (default: default).")] = None,
    pvc: Annotated[
        str | None, typer.Option(help="kubernetes: PersistentVolumeClaim holding the project (default: mloop-project).")
    ] = None,
    configmap: Annotated[
        str | None, typer.Option(help="kubernetes: ConfigMap holding mloop.yaml (default: mloop-config).")
    ] = None,
    config_key: Annotated[str | None, typer.Option(help="kubernetes: key of mloop.yaml in the ConfigMap.")] = None,
    secret: Annotated[
        list[str] | None, typer.Option(help="kubernetes: a Secret whose keys become environment variables (repeat).")
    ] = None,
    service_account: Annotated[str | None, typer.Option(help="kubernetes: service account of the pods.")] = None,
    batch_input: BatchInputOption = None,
    batch_output: BatchOutputOption = None,
    batch_engine: BatchEngineOption = None,
    batch_schedule: Annotated[
        str | None, typer.Option(help="Batch DAG (<dag-id>_batch): cron, preset or 'none' (default: trigger by hand).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write an Airflow DAG file: the training DAG (ingest → validate → train → register → promote) and a
    monitoring DAG (monitor → retrain --if-needed); with --batch-input and --batch-output a batch DAG too
    (score → drift). The file imports only Airflow."""
    proj = project(ctx)
    engine = _batch_engine(batch_input, batch_output, batch_engine)
    k8s = {
        "--image": image,
        "--namespace": namespace,
        "--pvc": pvc,
        "--configmap": configmap,
        "--config-key": config_key,
        "--secret": tuple(secret or ()),
        "--service-account": service_account,
    }
    if mode == "local":
        _only_for("kubernetes", k8s)
        spec = AirflowSpec(
            project=proj.name,
            dag_id=dag_id or options.default_dag_id(proj.name),
            mode="local",
            schedule=schedule,
            monitor_schedule=monitor_schedule,
            retries=retries,
            mloop=mloop or _mloop_executable(),
            project_dir=str((project_dir or proj.root).absolute()),
            config=Path(ctx.obj["config"]).name,
            batch_input=batch_input,
            batch_output=batch_output,
            batch_engine=engine,
            batch_schedule=batch_schedule,
        )
    else:
        _only_for("local", {"--mloop": mloop, "--project-dir": project_dir})
        defaults = AirflowSpec(project=proj.name, dag_id="")
        spec = AirflowSpec(
            project=proj.name,
            dag_id=dag_id or options.default_dag_id(proj.name),
            mode="kubernetes",
            schedule=schedule,
            monitor_schedule=monitor_schedule,
            retries=retries,
            image=image or defaults.image,
            namespace=namespace or defaults.namespace,
            pvc=pvc or defaults.pvc,
            configmap=configmap or defaults.configmap,
            config_key=config_key or defaults.config_key,
            secrets=tuple(secret or ()),
            service_account=service_account,
            batch_input=batch_input,
            batch_output=batch_output,
            batch_engine=engine,
            batch_schedule=batch_schedule,
        )
    text = render(spec)
    path = output or Path(f"{spec.dag_id.replace('-', '_').replace('.', '_')}.py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    dags = [spec.dag_id, f"{spec.dag_id}_monitor"] + ([f"{spec.dag_id}_batch"] if spec.batch_paths else [])
    if as_json:
        emit_json({"path": str(path), "dags": dags, "mode": mode})
        return
    console.print(f"wrote {path}: DAGs {', '.join(dags[:-1])} and {dags[-1]} ({mode} mode)")
    console.print("next: copy it into Airflow's dags folder; try it with `airflow dags test " + spec.dag_id + "`")


@export_app.command("kubeflow")
def export_kubeflow(
    ctx: typer.Context,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Pipeline YAML (default: pipeline.yaml, monitor-pipeline.yaml, batch-pipeline.yaml).",
        ),
    ] = None,
    pipeline: Annotated[
        Literal["train", "monitor", "batch"],
        typer.Option(
            help="train: ingest → validate → train → register → promote; monitor: monitor → retrain; "
            "batch: score → drift (needs --batch-input and --batch-output)."
        ),
    ] = "train",
    image: Annotated[
        str | None, typer.Option(help=f"The mloop image the steps run in (default: {options.DEFAULT_IMAGE}).")
    ] = None,
    project_dir: Annotated[
        str, typer.Option(help="The project folder inside the steps' containers (the PVC's mount point).")
    ] = "/project",
    pvc: Annotated[
        str | None, typer.Option(help="PersistentVolumeClaim holding the project, mounted on every step.")
    ] = None,
    configmap: Annotated[
        str | None, typer.Option(help="ConfigMap holding mloop.yaml, copied into the project folder at the start.")
    ] = None,
    config_key: Annotated[str, typer.Option(help="Key of mloop.yaml in the ConfigMap.")] = "mloop.yaml",
    retries: Annotated[int, typer.Option(help="Retries of a failed step.")] = 0,
    install_kfp: Annotated[
        bool,
        typer.Option(
            "--install-kfp/--kfp-in-image",
            help="Each step pip-installs kfp's executor at start, or the image has kfp (mloop's kubeflow extra).",
        ),
    ] = True,
    batch_input: BatchInputOption = None,
    batch_output: BatchOutputOption = None,
    batch_engine: BatchEngineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compile a Kubeflow pipeline (kfp v2 YAML) with one component per stage, run in the mloop image."""
    proj = project(ctx)
    engine = _batch_engine(batch_input, batch_output, batch_engine)
    spec = KubeflowSpec(
        project=proj.name,
        pipeline=pipeline,
        image=image or options.DEFAULT_IMAGE,
        project_dir=project_dir,
        config=Path(ctx.obj["config"]).name,
        pvc=pvc,
        configmap=configmap,
        config_key=config_key,
        retries=retries,
        install_kfp=install_kfp,
        batch_input=batch_input,
        batch_output=batch_output,
        batch_engine=engine,
    )
    default = {"train": "pipeline.yaml", "monitor": "monitor-pipeline.yaml", "batch": "batch-pipeline.yaml"}[pipeline]
    path = compile_pipeline(spec, output or Path(default))
    if as_json:
        emit_json({"path": str(path), "pipeline": spec.name})
        return
    console.print(f"wrote {path}: pipeline {spec.name}")
    console.print("next: upload it in the Kubeflow Pipelines UI, or `kfp pipeline create -p " + spec.name + f" {path}`")

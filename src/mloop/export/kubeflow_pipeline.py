"""`mloop export kubeflow`: compile the pipeline with the kfp SDK (v2) into Kubeflow's pipeline YAML.

One component per stage, each a lightweight Python component on the mloop image that runs the mloop
command on a shared project folder (a PersistentVolumeClaim on Kubeflow). kfp is an optional extra
(``pip install 'mloop[kubeflow]'``): it is imported only here, when a pipeline is compiled.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from mloop.errors import ExportError
from mloop.export import kfp_components, options

Pipeline = Literal["train", "monitor", "batch"]
PIPELINE_NAMES: tuple[Pipeline, ...] = ("train", "monitor", "batch")  # stages.PIPELINES, and batch (its paths vary)
CONFIG_MOUNT = "/etc/mloop"  # where --configmap is mounted in each step's container
INSTALL_HINT = "pip install 'mloop[kubeflow]'"


@dataclass(frozen=True)
class KubeflowSpec:
    project: str
    pipeline: Pipeline = "train"
    image: str = options.DEFAULT_IMAGE
    project_dir: str = "/project"  # inside the step's container (the PVC's mount point)
    config: str = "mloop.yaml"  # the config file's name in the project folder
    mloop: str = "mloop"  # the command, on PATH in the image
    pvc: str | None = None
    configmap: str | None = None
    config_key: str = "mloop.yaml"
    retries: int = 0
    install_kfp: bool = True  # each step pip-installs kfp's executor at start, unless the image has it
    # --pipeline batch: score the table at batch_input into batch_output, then its drift (relative: in project_dir)
    batch_input: str | None = None
    batch_output: str | None = None
    batch_engine: str = "spark"

    @property
    def name(self) -> str:
        """The pipeline's name: lowercase letters, digits and '-', as Kubeflow wants it."""
        slug = re.sub(r"[^a-z0-9]+", "-", self.project.lower()).strip("-") or "model"
        return f"mloop-{slug}"[:100].rstrip("-") + f"-{self.pipeline}"

    def check(self) -> KubeflowSpec:
        if self.pipeline not in PIPELINE_NAMES:
            raise ExportError(f"--pipeline {self.pipeline!r} is not one of {', '.join(PIPELINE_NAMES)}.")
        if self.pipeline != "batch" and (self.batch_input is not None or self.batch_output is not None):
            raise ExportError("--batch-input and --batch-output only apply to --pipeline batch.")
        if self.pipeline == "batch" and self.batch_input is None and self.batch_output is None:
            raise ExportError(
                "--pipeline batch needs --batch-input and --batch-output: the table to score and where its scores go."
            )
        options.batch_paths(self.batch_input, self.batch_output, self.batch_engine)
        options.image(self.image)
        options.absolute_path(self.project_dir, "--project-dir")
        if "/" in self.config or self.config in ("", ".", ".."):
            raise ExportError(f"the config file name {self.config!r} must be a file name in the project.")
        if self.pvc is not None:
            options.k8s_name(self.pvc, "--pvc")
        if self.configmap is not None:
            options.k8s_name(self.configmap, "--configmap")
        options.config_key(self.config_key)
        options.retries(self.retries)
        return self


def import_kfp(module: str = "kfp") -> Any:
    """kfp (or one of its modules), or an error that says which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = "kfp-kubernetes" if module.startswith("kfp.kubernetes") else "kfp"
        raise ExportError(
            f"`mloop export kubeflow` needs the Kubeflow Pipelines SDK ({package}), which is not installed "
            f"({exc}); install it with: {INSTALL_HINT}"
        ) from None


def build(spec: KubeflowSpec) -> Any:
    """The kfp pipeline object for a checked spec (call it under ``kfp.local.init`` to run it here)."""
    spec.check()
    dsl = import_kfp("kfp.dsl")
    kubernetes = import_kfp("kfp.kubernetes") if spec.pvc or spec.configmap else None
    comps = kfp_components.components(dsl, spec.image, spec.install_kfp)
    config_from = str(PurePosixPath(CONFIG_MOUNT) / spec.config_key) if spec.configmap else ""
    defaults = {"project_dir": spec.project_dir, "config": spec.config, "mloop": spec.mloop, "config_from": config_from}

    def tune(task: Any, stage: str) -> Any:
        task.set_display_name(stage)
        task.set_caching_options(False)  # every stage reads or changes the project: never reuse a result
        if spec.retries:
            task.set_retry(spec.retries)
        if kubernetes is not None and spec.pvc:
            kubernetes.mount_pvc(task, pvc_name=spec.pvc, mount_path=spec.project_dir)
        if kubernetes is not None and spec.configmap:
            kubernetes.use_config_map_as_volume(task, config_map_name=spec.configmap, mount_path=CONFIG_MOUNT)
        return task

    makers: dict[str, Callable[..., Any]] = {
        "train": kfp_components.train_pipeline,
        "monitor": kfp_components.monitor_pipeline,
        "batch": kfp_components.batch_pipeline,
    }
    if spec.pipeline == "batch":  # checked: both paths are there
        defaults |= {"batch_input": spec.batch_input or "", "batch_output": spec.batch_output or ""}
        defaults["engine"] = spec.batch_engine
    return makers[spec.pipeline](dsl, comps, spec.name, defaults, tune)


def compile_pipeline(spec: KubeflowSpec, output: Path) -> Path:
    """Write the pipeline's YAML (Kubeflow Pipelines IR) to ``output``."""
    pipeline = build(spec)
    compiler = import_kfp("kfp.compiler")
    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline, str(output))
    return output

"""Write one training run to MLflow: params, metrics, lineage tags, dataset, model and artifacts."""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow
import mlflow.sklearn
import pandas as pd
from mlflow.entities import Dataset, DatasetInput, InputTag, Param, RunTag
from mlflow.models import Model, ModelSignature, infer_signature
from mlflow.types import ColSpec, Schema, TensorSpec

from mloop.data.contract import Contract
from mloop.data.snapshot import Snapshot
from mloop.project import Project
from mloop.tracking.store import connect, git_sha

MODEL_ARTIFACT = "model"
HOLDOUT_ARTIFACT = "holdout.parquet"
PROFILE_ARTIFACT = "reference_profile.json"
CONTRACT_ARTIFACT = "contract.yaml"


# Pickle is the format `mlflow models serve` and every peer reads; the registry is the trust boundary.
logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)


def input_schema(contract: Contract, columns: Sequence[str]) -> Schema:
    """The model's input schema from the contract, not from a few example rows.

    Inferring it from examples types a text column that happens to be empty in them as a number, and
    MLflow's scoring server then refuses its strings.
    """
    specs: list[ColSpec | TensorSpec] = []
    for name in columns:
        spec = contract.columns[name]
        kind = "string" if spec.dtype in ("string", "datetime") else "double"
        if spec.dtype == "integer" and not spec.nullable:
            kind = "long"  # MLflow will not widen int64 to double; a nullable integer arrives as a float
        specs.append(ColSpec(kind, name, required=not spec.nullable))
    return Schema(specs)


def _dataset_input(contract: Contract, snapshot: Snapshot, frame: pd.DataFrame) -> DatasetInput:
    """The training data as an MLflow dataset input, its schema taken from the contract.

    ``mlflow.data.from_pandas`` infers the schema from every row instead: 0.7 s of a 2.3 s Ames run.
    """
    columns = [c for c in frame.columns if c in contract.columns]
    dataset = Dataset(
        name=f"snapshot-{snapshot.hash[:12]}",
        digest=snapshot.hash[:36],
        source_type="local",
        source=json.dumps({"uri": str(snapshot.path)}),
        schema=json.dumps({"mlflow_colspec": input_schema(contract, columns).to_dict()}),
        profile=json.dumps({"num_rows": len(frame), "num_elements": int(frame.shape[0] * len(columns))}),
    )
    tags = [
        InputTag("mlflow.data.context", "training"),
        InputTag("mloop.contract_hash", contract.hash()),  # which contract this data passed
        InputTag("mloop.source", snapshot.source),
    ]
    return DatasetInput(dataset, tags=tags)


# What ``log_training_run(late=…)`` returns: metrics, text artifacts and images to log with the rest.
Late = tuple[dict[str, float], dict[str, str], dict[str, bytes]]


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    model_uri: str


def _requirements() -> list[str]:
    # Given explicitly: MLflow's inference of requirements loads the model in a subprocess (seconds).
    # Read from the imported modules: the same versions as the installed distributions, without a scan
    # of site-packages' metadata for each (~5 ms apiece).
    import numpy
    import scipy
    import sklearn

    modules = {"scikit-learn": sklearn, "pandas": pd, "numpy": numpy, "scipy": scipy}
    return [f"{name}=={module.__version__}" for name, module in modules.items()]


# mlflow.sklearn for ``Model.log``, minus one step: loading the just-saved model back in this process to
# predict its input example as a scoring server would (56 ms of CPU on Ames, a third of the logging; a
# failure there was only a logged warning). The example, signature and requirements are still saved, and
# tests serve logged models through MLflow's pyfunc.
_SKLEARN_FLAVOR = SimpleNamespace(
    __name__="mlflow.sklearn",
    save_model=lambda validate_serving_input=True, **kwargs: mlflow.sklearn.save_model(**kwargs),
)


def log_training_run(
    project: Project,
    *,
    model: Any,
    contract: Contract,
    snapshot: Snapshot,
    train_frame: pd.DataFrame,
    features: pd.DataFrame,
    holdout: pd.DataFrame,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    artifacts: dict[str, str],
    run_name: str | None = None,
    images: dict[str, bytes] | None = None,
    run_id: str | None = None,
    example_output: Any = None,
    late: Callable[[], Late] | None = None,
) -> LoggedRun:
    """Log everything about a trained model in one MLflow run and return where the model is.

    ``example_output``: the model's predictions on the first rows of ``features`` (the input example), when
    the caller has them; otherwise the model predicts them. ``late``: called once the model is logged, for
    more metrics, text artifacts and images (an evaluation that was still running meanwhile). Writes are
    batched: one call for params and tags, one for the metrics (linked to the logged model too), one upload
    of the artifact folder.
    """
    client = connect(project)
    sha = git_sha(project.root)
    all_tags = {
        "mloop.stage": "train",
        "mloop.data_hash": snapshot.hash,
        "mloop.data_source": snapshot.source,
        "mloop.version": version("mloop"),
        **({"mloop.git_sha": sha, "mlflow.source.git.commit": sha} if sha else {}),
        **tags,
    }
    # ``run_id``: a run created earlier (the parent of search trials) is completed, not a new one started.
    start = mlflow.start_run(run_id=run_id) if run_id else mlflow.start_run(run_name=run_name)
    with start as run, warnings.catch_warnings():
        # MLflow's schema inference warns about integer columns and ambiguous local sources, and
        # trips pandas 4 deprecations; none of it is actionable for the user.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer", category=UserWarning)
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        warnings.filterwarnings("ignore", category=FutureWarning, module="mlflow")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="mlflow")
        warnings.filterwarnings("ignore", message="Operation with range is deprecated")
        # Importing mlflow.pyfunc (first done by log_model) warns about its own Any type hints.
        warnings.filterwarnings("ignore", message=".*Any type hint is inferred as AnyType", category=UserWarning)
        current = run.info.run_id
        client.log_batch(
            current,
            params=[Param(k, str(v)[:500]) for k, v in params.items()],
            tags=[RunTag(k, str(v)) for k, v in all_tags.items()],
        )
        client.log_inputs(current, [_dataset_input(contract, snapshot, train_frame)])
        example = features.head(5)
        outputs = model.predict(example) if example_output is None else example_output[: len(example)]
        signature = ModelSignature(
            inputs=input_schema(contract, list(features.columns)),
            outputs=infer_signature(model_output=outputs).outputs,  # the inputs come from the contract
        )
        # Metrics are logged after the model so they are written once, already linked to it: logged
        # before, MLflow would read each metric's history back to link it (a query per metric).
        info = Model.log(
            None,  # artifact_path: deprecated for ``name``
            name=MODEL_ARTIFACT,
            flavor=_SKLEARN_FLAVOR,
            sk_model=model,
            signature=signature,
            input_example=example,
            pip_requirements=_requirements(),
            serialization_format="cloudpickle",
            validate_serving_input=False,
        )
        if late is not None:
            more_metrics, more_artifacts, more_images = late()
            metrics = {**metrics, **more_metrics}
            artifacts = {**artifacts, **more_artifacts}
            images = {**(images or {}), **more_images}
        mlflow.log_metrics(metrics, model_id=info.model_id)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            holdout.to_parquet(folder / HOLDOUT_ARTIFACT, index=False)
            for name, text in artifacts.items():
                (folder / name).write_text(text, encoding="utf-8")
            for name, data in (images or {}).items():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(data)
            (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
            mlflow.log_artifacts(tmp)
        return LoggedRun(run_id=current, model_uri=info.model_uri)

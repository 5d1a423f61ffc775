"""``mloop score --engine spark``: batch scoring of a file or folder on Spark with a registered version.

The input (a Parquet or CSV file, or a folder of them: a Delta-style folder of Parquet parts reads as Parquet)
goes through ``DataFrame.mapInArrow`` in Arrow batches. Each executor's Python worker loads the version once,
with the server's own loader (``load_version``: the artifact's hash checked, the compiled pipeline used when
it verified on the holdout), and keeps it in a module-level cache for every later task it runs; the job ships
the project's settings and the version's registry entry to the workers, never a pickled model.

Every batch is checked against the version's contract (``mloop.spark.batches``): rows that break a check whose
severity is ``error`` are set aside, the rest are scored. OUTPUT gets Parquet partitions of the input columns
plus ``prediction`` (and ``probability_<class>`` for a classifier), as ``mloop score`` writes in process; the
rejected rows go, with their input and a ``reason`` naming the column and what was wrong, to
``OUTPUT_rejects`` (or ``rejects``). A bad row never fails the job; the rejects pass runs only when rows are
missing from OUTPUT, so a clean input is read once.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mloop.errors import ConfigError, ServeError
from mloop.project import Project
from mloop.registry.versions import CHAMPION, VersionInfo, alias_version, get_version
from mloop.serve.batch import PREDICTION
from mloop.serve.model_holder import LoadedModel, limit_openmp_in_this_thread, load_version
from mloop.spark.batches import REASON, check_batch, model_frame, model_inputs

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark import Accumulator
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

REJECTS_SUFFIX = "_rejects"
SUCCESS_MARKER = "_SUCCESS"  # what Spark leaves in a folder it wrote
MAX_CACHED_MODELS = 4  # versions a worker keeps loaded (one per job, unless jobs of several versions share it)

# The models this Python worker loaded, by (project root, tracking URI, model, version): a worker runs
# task after task of a job (spark.python.worker.reuse), so each loads the version once.
_MODELS: dict[tuple[str, str, str, str], LoadedModel] = {}
_MODELS_LOCK = threading.Lock()


@dataclass(frozen=True)
class SparkScoreResult:
    """What a Spark scoring job did: rows scored and set aside, where they went, which model scored them."""

    rows: int
    rejected: int
    output: str
    rejects: str
    model_version: str
    fast_path: bool
    model_loads: dict[str, int] | None = None  # per executor Python worker (host:pid), None where unknown
    engine: str = "spark"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "rejected": self.rejected,
            "output": self.output,
            "rejects": self.rejects,
            "model_version": self.model_version,
            "fast_path": self.fast_path,
            "model_loads": self.model_loads,
            "engine": self.engine,
        }


@dataclass(frozen=True)
class _Job:
    """What a worker needs to score: the project (root and settings), the pinned version, the output layout."""

    project: Project
    info: VersionInfo
    columns: tuple[str, ...]  # the input columns passed through, in order
    classes: tuple[str, ...] | None
    loads: Accumulator[dict[str, int]] | None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (str(self.project.root), self.project.tracking_uri, self.project.name, self.info.version)


# ------------------------------------------------------------------------------------------- workers


def _worker_model(job: _Job) -> LoadedModel:
    """The job's version, loaded once per Python worker (and counted in the job's accumulator then)."""
    with _MODELS_LOCK:
        model = _MODELS.get(job.key)
        if model is None:
            model = load_version(job.project, job.info, alias=CHAMPION)
            while len(_MODELS) >= MAX_CACHED_MODELS:
                _MODELS.pop(next(iter(_MODELS)))
            _MODELS[job.key] = model
            if job.loads is not None:
                job.loads.add({f"{socket.gethostname()}:{os.getpid()}": 1})
    return model


def _predictions(model: LoadedModel, checked: Any, keep: np.ndarray) -> tuple[list[Any], np.ndarray | None]:
    """Predictions (and class probabilities) of the kept rows, through the compiled path when it verified."""
    limit_openmp_in_this_thread()
    classification = model.classes is not None
    if model.fast is not None:
        predictions, proba = model.fast.scores_matrix(model_inputs(checked, model.fast, keep), classification)
    else:
        frame = model_frame(checked, model.contract, keep)
        predictions = np.asarray(model.pipeline.predict(frame))
        proba = np.asarray(model.pipeline.predict_proba(frame), dtype=float) if classification else None
    if model.task == "classification":
        return [str(v) for v in predictions], proba
    return predictions.astype(float).tolist(), None


def score_batches(job: _Job, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow``'s function: each batch's rows that pass the contract, with their predictions."""
    import pyarrow as pa

    model = _worker_model(job)
    for batch in batches:
        checked = check_batch(batch, model.contract)
        keep = ~checked.rejected
        if not keep.any():
            continue
        predictions, proba = _predictions(model, checked, keep)
        kept = batch.filter(pa.array(keep)) if checked.rejected.any() else batch
        arrays = [kept.column(name) for name in job.columns]
        names = list(job.columns)
        arrays.append(pa.array(predictions, type=pa.string() if job.classes is not None else pa.float64()))
        names.append(PREDICTION)
        if job.classes is not None and proba is not None:
            for j, cls in enumerate(job.classes):
                arrays.append(pa.array(proba[:, j], type=pa.float64()))
                names.append(f"probability_{cls}")
        yield pa.RecordBatch.from_arrays(arrays, names=names)


def reject_batches(job: _Job, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow``'s function of the rejects pass: the rows that fail the contract, with the reason."""
    import pyarrow as pa

    contract = _worker_model(job).contract
    for batch in batches:
        checked = check_batch(batch, contract)
        if not checked.rejected.any():
            continue
        mask = pa.array(checked.rejected)
        arrays = [batch.column(name).filter(mask) for name in job.columns]
        reasons = [r for r, bad in zip(checked.reasons, checked.rejected.tolist(), strict=True) if bad]
        arrays.append(pa.array(reasons, type=pa.string()))
        yield pa.RecordBatch.from_arrays(arrays, names=[*job.columns, REASON])


# ------------------------------------------------------------------------------------------- driver


def _is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _local(path: str) -> Path:
    return Path(path.removeprefix("file://"))


def read_input(spark: SparkSession, source: str, contract_text: list[str] | None = None) -> DataFrame:
    """``source`` as a DataFrame: a Parquet or CSV file, or a folder of them (Parquet parts, Delta-style or not).

    CSV is read with a header and inferred types, except that the columns the contract holds as text stay
    text (``mloop score`` in process reads them so too).
    """
    fmt = _input_format(source)
    if fmt == "parquet":
        return spark.read.parquet(source)
    reader = spark.read.option("header", True).option("inferSchema", True)
    frame = reader.csv(source)
    text = set(contract_text or [])
    if any(field.name in text and field.dataType.typeName() != "string" for field in frame.schema.fields):
        from pyspark.sql.types import StringType, StructField, StructType

        schema = StructType(
            [StructField(f.name, StringType(), True) if f.name in text else f for f in frame.schema.fields]
        )
        frame = spark.read.option("header", True).schema(schema).csv(source)
    return frame


def _input_format(source: str) -> str:
    name = source.lower().rstrip("/")
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if _is_local(source):
        folder = _local(source)
        if not folder.exists():
            raise ServeError(f"input {source} does not exist")
        if folder.is_dir():
            names = [p.name.lower() for p in folder.rglob("*") if p.is_file() and not p.name.startswith(("_", "."))]
            if any(n.endswith((".csv", ".csv.gz")) for n in names) and not any(
                n.endswith((".parquet", ".pq")) for n in names
            ):
                return "csv"
            if not names:
                raise ServeError(f"input folder {source} holds no data files")
            return "parquet"
        raise ServeError(f"{source}: cannot tell the format; use a .csv, .csv.gz or .parquet file, or a folder")
    return "parquet"  # a folder on a remote store: Parquet parts (Delta tables are Parquet underneath)


def _check_writable(path: str, what: str) -> None:
    """Refuse to replace a local file or a folder that Spark did not write (``-o .`` must not wipe a project)."""
    if not _is_local(path):
        return
    local = _local(path)
    if local.is_file():
        raise ServeError(f"{what} {path} is a file; Spark writes a folder of Parquet parts: name a folder")
    if local.is_dir() and any(local.iterdir()) and not (local / SUCCESS_MARKER).exists():
        raise ServeError(
            f"{what} {path} is a folder Spark did not write (no {SUCCESS_MARKER} in it); "
            "name a new folder, or remove this one"
        )


def _version(project: Project, version: str | None) -> VersionInfo:
    info = get_version(project, version) if version else alias_version(project, CHAMPION)
    if info is None:
        raise ServeError(f"model {project.name!r} has no {CHAMPION!r} version to score with; promote one first")
    return info


def _output_schema(frame: DataFrame, columns: tuple[str, ...], classes: list[str] | None) -> StructType:
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    fields = [frame.schema[name] for name in columns]
    fields.append(StructField(PREDICTION, StringType() if classes is not None else DoubleType(), True))
    fields += [StructField(f"probability_{cls}", DoubleType(), True) for cls in classes or []]
    return StructType(fields)


def _loads_accumulator(spark: SparkSession) -> Accumulator[dict[str, int]] | None:
    """A counter of model loads per worker, where the session has a SparkContext (not over Spark Connect)."""
    from pyspark import AccumulatorParam

    class Counts(AccumulatorParam[dict[str, int]]):
        """Adds ``{worker: loads}`` dicts."""

        def zero(self, value: dict[str, int]) -> dict[str, int]:
            return {}

        def addInPlace(self, first: dict[str, int], second: dict[str, int]) -> dict[str, int]:  # noqa: N802
            for key, count in second.items():
                first[key] = first.get(key, 0) + count
            return first

    try:
        context = spark.sparkContext
    except Exception:  # Spark Connect raises its own error for sparkContext: no accumulators there
        return None
    return context.accumulator({}, Counts())


def score_table(
    project: Project,
    source: str | Path | DataFrame,
    output: str | Path,
    version: str | None = None,
    rejects: str | Path | None = None,
    spark: SparkSession | None = None,
) -> SparkScoreResult:
    """Score every row of ``source`` on Spark into Parquet at ``output``; bad rows go to ``rejects``.

    ``source`` is a file or folder (``read_input``) or a DataFrame (a table, a Delta table read through its log).
    ``spark`` is the session to run on (default: the DataFrame's, else ``spark_session(project.config.spark)``,
    which is the active session when there is one).
    """
    given = None if isinstance(source, str | Path) else source
    source = "the DataFrame" if given is not None else str(source)
    output = str(output).rstrip("/")
    rejects = str(rejects).rstrip("/") if rejects is not None else output + REJECTS_SUFFIX
    if given is None and _is_local(source) and not _local(source).exists():
        raise ServeError(f"input {source} does not exist")
    if rejects == output:
        raise ServeError(f"the rejects folder must differ from the output {output}")
    _check_writable(output, "output")
    _check_writable(rejects, "rejects folder")
    info = _version(project, version)
    model = load_version(project, info)  # on the driver too: fails here, before a job, if the version cannot serve
    if spark is None:
        from mloop.spark.session import spark_session

        spark = given.sparkSession if given is not None else spark_session(project.config.spark)
    from mloop.spark.session import quiet_pyspark

    quiet_pyspark()
    text = [name for name, spec in model.contract.columns.items() if spec.dtype in ("string", "datetime")]
    frame = given if given is not None else read_input(spark, source, text)
    missing = [c for c in model.contract.features if c not in frame.columns]
    if missing:
        raise ServeError(
            f"{source} lacks feature column(s) {', '.join(missing[:10])} that version {model.version} needs"
        )
    added = {PREDICTION, *(f"probability_{c}" for c in model.classes or [])}
    columns = tuple(c for c in frame.columns if c not in added)  # a stale prediction column is replaced
    loads = _loads_accumulator(spark)
    job = _Job(project, info, columns, tuple(model.classes) if model.classes else None, loads)
    scored = frame.mapInArrow(functools.partial(score_batches, job), _output_schema(frame, columns, model.classes))
    scored.write.mode("overwrite").parquet(output)
    done = spark.read.parquet(output).count()
    total = frame.count()
    from pyspark.sql.types import StringType, StructField, StructType

    reject_schema = StructType([*(frame.schema[name] for name in columns), StructField(REASON, StringType(), False)])
    if done < total:
        set_aside = frame.mapInArrow(functools.partial(reject_batches, job), reject_schema)
        set_aside.write.mode("overwrite").parquet(rejects)
        rejected = spark.read.parquet(rejects).count()
    else:  # an empty folder with the schema, so an earlier run's rejects never stand for this one's
        spark.createDataFrame([], reject_schema).write.mode("overwrite").parquet(rejects)
        rejected = 0
    return SparkScoreResult(
        rows=done,
        rejected=rejected,
        output=output,
        rejects=rejects,
        model_version=model.version,
        fast_path=model.fast_path.enabled,
        model_loads=dict(loads.value) if loads is not None else None,
    )


def check_engine_available() -> None:
    """Fail with the install hint when pyspark is missing (before any project or model work)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        from mloop.spark.session import INSTALL

        raise ConfigError(f"--engine spark needs pyspark; install it with {INSTALL}.") from None


__all__ = ["REJECTS_SUFFIX", "SparkScoreResult", "read_input", "reject_batches", "score_batches", "score_table"]

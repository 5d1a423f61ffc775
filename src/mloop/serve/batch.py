"""Batch scoring of a CSV or Parquet file with a registered version, chunk by chunk.

The same model the server loads (``load_version``: the compiled pipeline when it verified, else the
plain one) scores each chunk; the output holds the input columns plus ``prediction`` (and
``probability_<class>`` for classification), written as each chunk is scored so memory stays flat.
Input values are typed by ``coerce_frame``, as in training, so a row scores as it would offline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mloop.data.contract import coerce_frame
from mloop.errors import ServeError
from mloop.project import Project
from mloop.registry.versions import CHAMPION, alias_version, get_version
from mloop.serve.fastpath import records_of
from mloop.serve.model_holder import LoadedModel, load_version

DEFAULT_CHUNK_ROWS = 10_000
PREDICTION = "prediction"


@dataclass(frozen=True)
class ScoreResult:
    rows: int
    output: Path
    model_version: str
    fast_path: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "output": str(self.output),
            "model_version": self.model_version,
            "fast_path": self.fast_path,
        }


def _format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise ServeError(f"{path}: cannot tell the format; use a .csv, .csv.gz or .parquet file")


def count_rows(path: Path) -> int | None:
    """Rows in the input, for the progress bar (Parquet metadata; CSV lines minus the header)."""
    if _format(path) == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    if path.name.lower().endswith(".gz"):
        return None
    with open(path, "rb") as file:
        return max(0, sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b"")) - 1)


def _chunks(path: Path, model: LoadedModel, rows: int) -> Iterator[pd.DataFrame]:
    if _format(path) == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
            yield batch.to_pandas()
        return
    text = {c: str for c, s in model.contract.columns.items() if s.dtype in ("string", "datetime")}
    yield from pd.read_csv(path, chunksize=rows, dtype=text)


def _model(project: Project, version: str | None) -> LoadedModel:
    info = get_version(project, version) if version else alias_version(project, CHAMPION)
    if info is None:
        raise ServeError(f"model {project.name!r} has no {CHAMPION!r} version to score with; promote one first")
    return load_version(project, info)


def score_file(
    project: Project,
    source: Path,
    output: Path,
    version: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Callable[[int], None] | None = None,
) -> ScoreResult:
    """Score every row of ``source`` into ``output``; ``progress`` gets the rows done after each chunk."""
    if not source.is_file():
        raise ServeError(f"input file {source} does not exist")
    out_format = _format(output)
    model = _model(project, version)
    writer: Any = None
    done = 0
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        for chunk in _chunks(source, model, chunk_rows):
            missing = [c for c in model.contract.features if c not in chunk.columns]
            if missing:
                raise ServeError(
                    f"{source} lacks feature column(s) {', '.join(missing[:10])} that version {model.version} needs"
                )
            scored = model.score_records(records_of(coerce_frame(chunk, model.contract)))
            result = chunk.copy()
            result[PREDICTION] = scored.predictions
            if scored.probabilities is not None and model.classes is not None:
                for cls in model.classes:
                    result[f"probability_{cls}"] = [p[cls] for p in scored.probabilities]
            writer = _write(result, output, out_format, writer)
            done += len(chunk)
            if progress is not None:
                progress(done)
    finally:
        if writer is not None:
            writer.close()
    if done == 0:
        raise ServeError(f"{source} has no rows to score")
    return ScoreResult(done, output, model.version, model.fast_path.enabled)


def _write(frame: pd.DataFrame, output: Path, out_format: str, writer: Any) -> Any:
    if out_format == "csv":
        frame.to_csv(output, mode="w" if writer is None else "a", header=writer is None, index=False)
        return writer or _Closed()
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if writer is None:
        writer = pq.ParquetWriter(output, table.schema)
    writer.write_table(table.cast(writer.schema))
    return writer


class _Closed:
    """Stands for an open CSV output (each chunk is appended and closed at once)."""

    def close(self) -> None:
        return None


__all__ = ["DEFAULT_CHUNK_ROWS", "ScoreResult", "count_rows", "score_file"]

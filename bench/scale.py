"""Scale benchmark: mloop's stages on Spark, one part per stage (`--part scoring|drift|all`).

Part ``scoring`` (built): rows per second of batch scoring on Spark, mloop against MLflow's answer, with the
same model on the same session and the same data. Trains the Ames pipeline once, as bench/serving.py does
(a throwaway project in a temporary folder; `--project` reuses one), writes `--rows` rows (1,000,000; 200,000
with --quick: the Ames houses repeated) as Parquet in `--files` files, starts one Spark session (`--master`,
default local[*], as mloop starts it) and then, round after round, interleaved:

* ``mloop`` — `mloop.spark.scoring.score_table` (what `mloop score --engine spark` runs): the contract checked
  per Arrow batch, the compiled pipeline loaded once per Python worker, Parquet written with the input
  columns plus `prediction`, and the rejects pass (empty here);
* ``mlflow`` — `mlflow.pyfunc.spark_udf(spark, "models:/NAME@champion", env_manager="local")` on the same
  feature columns, `withColumn("prediction", …)`, Parquet written with the same columns.

The Python workers are started, both sides' libraries imported and the JVM warmed up (an untimed pass through
`mapInArrow` to Parquet) before timing. Each figure is wall time from the start of the call (the model is loaded
inside it, on both sides: mloop on the driver and, in the first round, once per Python worker, which keeps it for
later rounds; MLflow per task) to the last part written; the median of `--rounds` rounds (2; 1 quick) is
reported, with every round's figure, and both outputs are compared (largest relative difference of the
predictions). Every Python worker runs with OMP_NUM_THREADS=1, as the servers of bench/serving.py. The goal
(mloop >= 5x MLflow's rows/s) is reported as a boolean; it does not change the exit status.

Part ``drift``: the drift of a large window on Spark against the local engine, and the Spark driver's peak
memory at two sizes (1M and 10M rows; 200k and 1M with --quick), from bench/scale_drift.py (its docstring says
how). Its measurements run in processes of their own, each with its own session, so that each peak memory is
its own; the shared session above is not used for them.

    .venv/bin/python bench/scale.py --quick    # 200,000 rows: about three minutes on 2 cores
    .venv/bin/python bench/scale.py            # 1,000,000 rows: about twelve minutes on 2 cores

The figures go to ``docs/img/scale.json`` under their part (with ``--quick``, to ``dist/bench/scale-quick.json``;
``--out`` moves it); a part run alone replaces only its own entry. The last line printed is the JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from serving import _ames, _project

ROOT = Path(__file__).resolve().parents[1]
GOAL_VS_MLFLOW = 5.0
PARTS = ("scoring", "drift")
BUILT = ("scoring", "drift")
console = Console(stderr=True)


# ------------------------------------------------------------------------------------------ shared


def _session(master: str) -> Any:
    from mloop.config import SparkConfig
    from mloop.spark.session import spark_session

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before the JVM starts: its Python workers inherit it
    return spark_session(SparkConfig(master=master, app_name="mloop-bench-scale"))


def _write_rows(ames: pd.DataFrame, rows: int, files: int, folder: Path) -> Path:
    """``rows`` Ames houses (repeated in order) as ``files`` Parquet files; a ``house`` column names the row."""
    frame = ames.assign(house=np.arange(len(ames)))
    frame = frame.iloc[np.arange(rows) % len(frame)].reset_index(drop=True)
    folder.mkdir(parents=True)
    for i, part in enumerate(np.array_split(np.arange(rows), files)):
        frame.iloc[part].to_parquet(folder / f"part-{i:05d}.parquet", index=False)
    return folder


# ----------------------------------------------------------------------------------------- scoring


def _timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _compare(mloop_out: Path, mlflow_out: Path) -> float:
    """The largest relative difference between the two outputs' predictions, row matched by ``house``."""
    got = pd.read_parquet(mloop_out, columns=["house", "prediction"]).groupby("house")["prediction"].agg(["min", "max"])
    want = (
        pd.read_parquet(mlflow_out, columns=["house", "prediction"]).groupby("house")["prediction"].agg(["min", "max"])
    )
    got, want = got.align(want, join="outer")
    scale = np.maximum(np.abs(want.to_numpy()), 1e-12)
    return float(np.nanmax(np.abs(got.to_numpy() - want.to_numpy()) / scale))


def _warm(batches: Any) -> Any:
    import mlflow.pyfunc  # noqa: F401 - imported, as each side's first task would
    import pyarrow as pa

    import mloop.spark.scoring  # noqa: F401

    yield pa.RecordBatch.from_pylist([{"rows": sum(b.num_rows for b in batches)}])


def _identity(batches: Any) -> Any:
    yield from batches


def part_scoring(args: argparse.Namespace, project: Any, ames: pd.DataFrame, spark: Any, tmp: Path) -> dict[str, Any]:
    import mlflow

    from mloop.data.contract import load_contract
    from mloop.spark.scoring import score_table
    from mloop.tracking.store import connect

    rows = args.rows or (200_000 if args.quick else 1_000_000)
    rounds = args.rounds or (1 if args.quick else 2)
    source = _write_rows(ames, rows, args.files, tmp / "scoring-input")
    features = load_contract(project.contract_path).features
    connect(project)  # MLflow's registry: the champion spark_udf loads
    frame = spark.read.parquet(str(source))
    frame.count()  # the JVM warmed up and the files listed before either side is timed
    # Python workers started and the libraries of both sides imported (no model loaded) before timing, and the
    # JVM's read, Arrow and Parquet write paths compiled by one untimed pass over the input.
    frame.limit(10_000).repartition(spark.sparkContext.defaultParallelism).mapInArrow(_warm, "rows long").collect()
    frame.mapInArrow(_identity, frame.schema).write.parquet(str(tmp / "scoring-warm-up"))
    outputs = {"mloop": tmp / "scored-mloop", "mlflow": tmp / "scored-mlflow"}
    facts: dict[str, Any] = {}

    def run_mloop() -> None:
        shutil.rmtree(outputs["mloop"], ignore_errors=True)
        shutil.rmtree(str(outputs["mloop"]) + "_rejects", ignore_errors=True)
        result = score_table(project, source, outputs["mloop"], spark=spark)
        if result.rows != rows or result.rejected:
            raise SystemExit(f"mloop scored {result.rows} rows and rejected {result.rejected}, not {rows} and 0")
        facts.update(fast_path=result.fast_path, model_version=result.model_version)
        facts.setdefault("model_loads_per_round", []).append(result.model_loads)

    def run_mlflow() -> None:
        shutil.rmtree(outputs["mlflow"], ignore_errors=True)
        udf = mlflow.pyfunc.spark_udf(
            spark, f"models:/{project.name}@champion", result_type="double", env_manager="local"
        )
        spark.read.parquet(str(source)).withColumn("prediction", udf(*features)).write.parquet(str(outputs["mlflow"]))

    seconds: dict[str, list[float]] = {"mloop": [], "mlflow": []}
    runs = {"mloop": run_mloop, "mlflow": run_mlflow}
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )
    with progress:
        task = progress.add_task(f"scoring {rows:,} rows", total=rounds * len(runs))
        for round_ in range(rounds):
            for name, run in runs.items():
                progress.update(task, description=f"round {round_ + 1}: {name} scoring {rows:,} rows")
                seconds[name].append(_timed(run))
                console.print(f"round {round_ + 1} {name:6s} {rows / seconds[name][-1]:10,.0f} rows/s")
                progress.advance(task)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    rate = {name: rows / median[name] for name in median}
    ratio = rate["mloop"] / rate["mlflow"]
    return {
        "rows": rows,
        "files": args.files,
        "rounds": rounds,
        "seconds": {name: round(value, 2) for name, value in median.items()},
        "seconds_per_round": {name: [round(v, 2) for v in values] for name, values in seconds.items()},
        "rows_per_second": {name: round(value) for name, value in rate.items()},
        "mloop_vs_mlflow": round(ratio, 2),
        "goal_vs_mlflow": GOAL_VS_MLFLOW,
        "goal_met": ratio >= GOAL_VS_MLFLOW,
        "max_relative_difference": _compare(outputs["mloop"], outputs["mlflow"]),
        **facts,
    }


# ------------------------------------------------------------------------------------------ drift


def part_drift(args: argparse.Namespace, project: Any, ames: pd.DataFrame, spark: Any, tmp: Path) -> dict[str, Any]:
    """bench/scale_drift.py's measurements (the bench frames, not the project: drift needs no model)."""
    from scale_drift import run

    return run(args.quick)


RUNNERS: dict[str, Callable[[argparse.Namespace, Any, pd.DataFrame, Any, Path], dict[str, Any]]] = {
    "scoring": part_scoring,
    "drift": part_drift,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=[*PARTS, "all"], default="all", help="which part to run (default all)")
    parser.add_argument("--quick", action="store_true", help="200,000 rows, one round")
    parser.add_argument("--rows", type=int, default=None, help="rows to score (default 1,000,000; quick 200,000)")
    parser.add_argument("--files", type=int, default=8, help="Parquet files the input is written as")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds, median reported (2; quick 1)")
    parser.add_argument("--master", default="local[*]", help="Spark master of the session (default local[*])")
    parser.add_argument(
        "--project", type=Path, default=None, help="an existing Ames project (its mloop.yaml) with a champion"
    )
    parser.add_argument("--out", type=Path, help="folder for the JSON (default docs/img; with --quick, dist/bench)")
    args = parser.parse_args()
    wanted = list(PARTS) if args.part == "all" else [args.part]
    missing = [part for part in wanted if part not in BUILT]
    if args.part != "all" and missing:
        raise SystemExit(f"--part {args.part}: not built yet")

    ames = _ames()
    tmp = Path(tempfile.mkdtemp(prefix="mloop-bench-scale-"))
    started = time.monotonic()
    try:
        from mloop.quiet import quiet_libraries

        quiet_libraries()
        if args.project is not None:
            from mloop.project import Project

            project = Project.load(args.project)
        else:
            project = _project(tmp / "project", ames[ames["Year_Sold"] <= 2007])
        spark = _session(args.master)
        parts = {}
        for part in wanted:
            if part in missing:
                console.print(f"[yellow]{part}: not built yet[/]")
                continue
            parts[part] = RUNNERS[part](args, project, ames, spark, tmp)
        spark.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    out = args.out or (ROOT / "dist" / "bench" if args.quick else ROOT / "docs" / "img")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"scale{'-quick' if args.quick else ''}.json"
    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    result.update(benchmark="scale", mode="quick" if args.quick else "full", cpus=os.cpu_count(), master=args.master)
    result.setdefault("parts", {}).update(parts)
    result["python"] = sys.version.split()[0]
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result))  # noqa: T201 - the benchmark's JSON line, last, as every bench/*.py prints


if __name__ == "__main__":
    main()

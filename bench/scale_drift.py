"""Drift of a large window on Spark against the local engine, and the driver's memory as rows grow (issue 14).

The frames are bench/drift.py's (20 numeric, 5 categorical columns, 6 + 2 of them drifted): a reference of
200,000 rows is profiled once (``build_profile``, what registering a model stores), and the window is a
folder of Parquet parts of 1,000,000 rows each (each part a fresh draw of the drifted distribution), 1M and
10M rows in all (``--quick``: 200k and 1M). Each measurement runs in a process of its own:

* ``local`` — ``mloop.monitor.window_table.local_window_profile``: the parts read in batches of 65,536 rows,
  each profiled and merged, in one process (what ``mloop monitor --window PATH`` does);
* ``spark`` — ``mloop.spark.profiles.spark_window_profile`` on a ``local[2]`` session: each partition
  profiles its Arrow batches, the driver merges one profile per partition
  (``mloop monitor --window PATH --engine spark``).

Both end in ``window_drift_report``; the decisions of the two are compared (they must be identical). Time
is the profile and the report (the session's start is reported apart). Memory: the peak RSS (``VmHWM``) of
the Python driver process, where the merge happens, at each size: a flat figure from 1M to 10M rows is the
point of the sketches. In local mode the JVM runs the executors too, so its memory is the cluster's, not
the driver's, and is not reported as the driver's.

    .venv/bin/python bench/scale_drift.py --quick   # 200k and 1M rows
    .venv/bin/python bench/scale_drift.py           # 1M and 10M rows

The last line printed is one JSON object with every figure and the ratios.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_ROWS = 200_000
PART_ROWS = 1_000_000


def _bench_drift() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_drift", ROOT / "bench" / "drift.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _peak_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def prepare(folder: Path, sizes: list[int]) -> None:
    """The reference profile and contract, and one folder of Parquet parts per window size."""
    from mloop.data.contract import infer_contract, save_contract
    from mloop.data.profile import build_profile, infer_kinds

    drift = _bench_drift()
    reference, _, _ = drift.make_frames(REFERENCE_ROWS, seed=7)
    numeric, categorical = infer_kinds(reference)
    build_profile(reference, numeric, categorical).save(folder / "profile.json")
    save_contract(infer_contract(reference.assign(target=0.0), target="target"), folder / "contract.yaml")
    largest = max(sizes)
    parts = folder / "parts"
    parts.mkdir()
    for i in range(max(1, -(-largest // PART_ROWS))):
        rows = min(PART_ROWS, largest - i * PART_ROWS)
        _, current, _ = drift.make_frames(rows, seed=100 + i)
        current.to_parquet(parts / f"part-{i:05d}.parquet", index=False)
    for size in sizes:  # each window: the first parts (links, not copies), or the head of the first part
        window = folder / f"window-{size}"
        window.mkdir()
        if size < PART_ROWS:
            pd.read_parquet(parts / "part-00000.parquet").head(size).to_parquet(window / "part-00000.parquet")
            continue
        for i in range(size // PART_ROWS):
            (window / f"part-{i:05d}.parquet").symlink_to(parts / f"part-{i:05d}.parquet")


def worker(engine: str, folder: Path, size: int) -> dict[str, Any]:
    from mloop.config import MonitorConfig
    from mloop.data.contract import load_contract
    from mloop.data.profile import Profile
    from mloop.monitor.drift import thresholds_from_config
    from mloop.monitor.profiles import window_drift_report

    profile = Profile.load(folder / "profile.json")
    contract = load_contract(folder / "contract.yaml")
    window = folder / f"window-{size}"
    session_seconds = 0.0
    started = time.perf_counter()
    if engine == "spark":
        from mloop.config import SparkConfig
        from mloop.spark.profiles import read_window, spark_window_profile
        from mloop.spark.session import spark_session

        session = spark_session(SparkConfig(master="local[2]"))
        session_seconds = time.perf_counter() - started
        started = time.perf_counter()
        merged = spark_window_profile(profile, contract, read_window(session, window))
    else:
        from mloop.monitor.window_table import local_window_profile

        merged = local_window_profile(profile, contract, window)
    report = window_drift_report(profile, merged, thresholds_from_config(MonitorConfig()))
    seconds = time.perf_counter() - started
    return {
        "engine": engine,
        "rows": merged.n_rows,
        "seconds": seconds,
        "session_seconds": session_seconds,
        "rows_per_second": merged.n_rows / seconds,
        "driver_peak_mb": _peak_mb(),
        "decisions": {f.feature: f.drifted for f in report.features},
    }


def measure(engine: str, folder: Path, size: int) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--worker", engine, "--data", str(folder), "--rows", str(size)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"{engine} at {size} rows failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool, sizes: list[int] | None = None) -> dict[str, Any]:
    """Every measurement, each in its own process; the figures and ratios as one dict."""
    from rich.console import Console
    from rich.progress import Progress

    sizes = sizes or ([200_000, 1_000_000] if quick else [1_000_000, 10_000_000])
    console = Console(stderr=True)
    with tempfile.TemporaryDirectory(prefix="mloop-bench-scale-drift-") as tmp:
        folder = Path(tmp)
        console.print(f"writing the reference profile and {max(sizes):,} window rows as Parquet …")
        prepare(folder, sizes)
        results: list[dict[str, Any]] = []
        with Progress(console=console) as progress:
            task = progress.add_task("drift", total=2 * len(sizes))
            for size in sizes:
                for engine in ("local", "spark"):
                    results.append(measure(engine, folder, size))
                    progress.advance(task)
    by = {(r["engine"], r["rows"]): r for r in results}
    summary: dict[str, Any] = {
        "sizes": sizes,
        "results": [{k: v for k, v in r.items() if k != "decisions"} for r in results],
    }
    summary["identical_decisions"] = all(by[("local", s)]["decisions"] == by[("spark", s)]["decisions"] for s in sizes)
    summary["spark_vs_local"] = {str(s): by[("local", s)]["seconds"] / by[("spark", s)]["seconds"] for s in sizes}
    small, large = sizes
    summary["driver_peak_growth"] = by[("spark", large)]["driver_peak_mb"] / by[("spark", small)]["driver_peak_mb"]
    summary["load_average"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    for r in results:
        console.print(
            f"{r['engine']:6s} {r['rows']:>11,} rows  {r['seconds']:7.1f} s  {r['rows_per_second']:>10,.0f} rows/s  "
            f"driver peak {r['driver_peak_mb']:6.0f} MB"
            + (f"  (session start {r['session_seconds']:.1f} s)" if r["session_seconds"] else "")
        )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker", choices=["local", "spark"])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--rows", type=int)
    parser.add_argument("--sizes", type=int, nargs=2, help="the two window sizes (default 1M and 10M rows)")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.data, args.rows)))
        return
    print(json.dumps(run(args.quick, args.sizes)))


if __name__ == "__main__":
    main()

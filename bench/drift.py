"""Drift benchmark: mloop's drift engine vs Evidently's data-drift preset on the same frames.

A reference and a current frame of N rows (1,000,000 by default; 500,000 with --quick), 20 numeric
(float64) and 5 categorical columns, drift injected into 6 numeric and 2 categorical columns (the
others are fresh samples of the same distributions). Both frames are written to Parquet once; every
measurement then runs in a process of its own, so its time and peak memory are its own:

* ``mloop`` — ``mloop.compute_drift(reference, current)`` on the two frames in memory, exactly what
  Evidently is given (run ``--repeat`` times, the median time is reported).
* ``mloop-parquet`` — ``mloop.compute_drift("reference.parquet", "current.parquet")`` on the same data as
  written once to Parquet (how mloop keeps data at rest: snapshots are Parquet). It reads one column of
  each side at a time and drops it once summarised, so the frames are never in memory; its time
  includes reading and decoding the files (the other engines' does not). **The goal is judged on this
  one**, time and memory; the in-memory run's figures are reported beside it (``goal_met_frames``).
* ``evidently`` — ``Report([DataDriftPreset()]).run(current, reference)``, once (it takes minutes). It
  can only take DataFrames, so it is given the frames.
* ``profile`` / ``mloop-profile`` — the product's path, reported beside it but not judged: the
  reference profile is built once (``build_profile``, what ``mloop register`` stores with a model
  version), then ``drift_report(profile, current)`` compares a window against it; the reference frame
  is not in memory then.

Time is the engine call alone (frames already loaded). Peak memory is the process's peak RSS
(``VmHWM``), which includes the interpreter, the libraries and the loaded frames; the figures
split it into ``base`` (after imports), ``loaded`` (after reading the frames) and ``work`` (the peak
above ``loaded``: what the engine itself allocates). Every worker reads the Parquet files the same
way, column by column, so a frame costs its own size in memory and nothing more.

Evidently 0.7 does not import with pandas 3, so it needs its own interpreter:

    python3 -m venv /tmp/ev && /tmp/ev/bin/pip install evidently==0.7.23 'pandas<3' pyarrow
    .venv/bin/python bench/drift.py --quick --evidently-python /tmp/ev/bin/python   # 500k rows, about two minutes
    .venv/bin/python bench/drift.py --evidently-python /tmp/ev/bin/python           # 1M rows, minutes

The last line printed is one JSON object with every figure and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

NUMERIC = 20
CATEGORICAL = 5
DRIFTED_NUMERIC = 6
DRIFTED_CATEGORICAL = 2
CATEGORIES = [f"cat_{i}" for i in range(12)]
ENGINES = ("mloop", "mloop-parquet", "evidently", "profile", "mloop-profile")


def make_frames(rows: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Reference, current, and the columns drift was injected into."""
    rng = np.random.default_rng(seed)
    shares = rng.dirichlet(np.ones(len(CATEGORIES)) * 2, size=CATEGORICAL)

    def frame(shifted: bool) -> pd.DataFrame:
        data: dict[str, Any] = {}
        for i in range(NUMERIC):
            values = rng.gamma(2.0 + i % 4, 10.0 * (1 + i % 3), rows)
            if shifted and i < DRIFTED_NUMERIC:
                values = values * 1.15 if i % 2 else values + 4.0  # scale and location shifts
            data[f"num_{i:02d}"] = values
        for j in range(CATEGORICAL):
            p = shares[j]
            if shifted and j < DRIFTED_CATEGORICAL:
                p = np.roll(p, 1) * 0.5 + p * 0.5  # a new mix of the same categories
            data[f"cat_{j}"] = pd.Categorical(rng.choice(CATEGORIES, rows, p=p / p.sum()), categories=CATEGORIES)
        return pd.DataFrame(data)

    drifted = [f"num_{i:02d}" for i in range(DRIFTED_NUMERIC)] + [f"cat_{j}" for j in range(DRIFTED_CATEGORICAL)]
    return frame(False), frame(True), drifted


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def _peak_mb() -> float:
    """Peak RSS of this process (``VmHWM``).

    Not ``ru_maxrss``: Linux carries the parent's resident size at ``fork`` over ``exec`` into it, so a
    worker started by a parent holding the frames would report the parent's memory as its own peak.
    """
    return _status_mb("VmHWM")


def load_frame(path: Path) -> pd.DataFrame:
    """Read a Parquet file one column at a time, so reading costs no more than the frame itself.

    (``pd.read_parquet`` holds the whole Arrow table and the DataFrame at once, and Arrow's allocator
    keeps the freed pages: about twice the frame's size stays resident, for either engine.)
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    pa.set_memory_pool(pa.system_memory_pool())  # freed Arrow buffers go back to malloc, not a private pool
    handle = pq.ParquetFile(path)
    columns: dict[str, pd.Series] = {}
    for name in handle.schema_arrow.names:
        columns[name] = handle.read(columns=[name]).column(0).to_pandas()
    return pd.DataFrame(columns, copy=False)


# --- workers: one engine each, in its own process ------------------------------------------------------


def _import_engine(engine: str) -> None:
    """Import what the engine needs before the frames are read, so ``base`` holds every library."""
    if engine == "evidently":
        import evidently.presets  # noqa: F401
    else:
        # Libraries the drift statistics and the Parquet reader import on first use, so base holds them.
        import pyarrow.dataset  # noqa: F401
        import pyarrow.parquet  # noqa: F401
        import scipy.special  # noqa: F401
        import scipy.stats  # noqa: F401

        import mloop.data.profile
        import mloop.monitor.drift  # noqa: F401


def run_mloop(folder: Path) -> dict[str, Any]:
    from mloop import compute_drift

    reference, current = load_frame(folder / "reference.parquet"), load_frame(folder / "current.parquet")
    loaded = _rss_mb()
    started = time.perf_counter()
    result = compute_drift(reference, current)
    seconds = time.perf_counter() - started
    decisions = {str(r.feature): bool(r.drifted) for r in result.itertuples()}
    return {"seconds": seconds, "loaded_mb": loaded, "decisions": decisions}


def run_mloop_parquet(folder: Path) -> dict[str, Any]:
    """The same comparison from the Parquet files, streamed a column at a time: no frame is loaded."""
    from mloop import compute_drift

    loaded = _rss_mb()
    started = time.perf_counter()
    result = compute_drift(folder / "reference.parquet", folder / "current.parquet")
    seconds = time.perf_counter() - started
    decisions = {str(r.feature): bool(r.drifted) for r in result.itertuples()}
    return {"seconds": seconds, "loaded_mb": loaded, "decisions": decisions}


def run_evidently(folder: Path) -> dict[str, Any]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    reference, current = load_frame(folder / "reference.parquet"), load_frame(folder / "current.parquet")
    loaded = _rss_mb()
    started = time.perf_counter()
    definition = DataDefinition(
        numerical_columns=[c for c in reference.columns if c.startswith("num_")],
        categorical_columns=[c for c in reference.columns if c.startswith("cat_")],
    )
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    seconds = time.perf_counter() - started
    decisions: dict[str, bool] = {}
    methods: dict[str, str] = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        column = config.get("column")
        if config.get("type", "").endswith("ValueDrift") and column:
            threshold = config.get("threshold")
            value = metric["value"]
            method = str(config.get("method", ""))
            # p-value tests drift below the threshold, distances above it (Evidently's own rule).
            is_test = "p_value" in method or method in ("ks", "chisquare", "z", "fisher_exact", "g_test", "t_test")
            decisions[column] = bool(value < threshold) if is_test else bool(value >= threshold)
            methods[column] = method
    return {"seconds": seconds, "loaded_mb": loaded, "decisions": decisions, "methods": methods}


def run_profile(folder: Path) -> dict[str, Any]:
    """Build the reference profile once, as registering a model version does, and store it."""
    from mloop.data.profile import build_profile, infer_kinds

    reference = load_frame(folder / "reference.parquet")
    loaded = _rss_mb()
    started = time.perf_counter()
    numeric, categorical = infer_kinds(reference)
    profile = build_profile(reference, numeric, categorical)
    seconds = time.perf_counter() - started
    profile.save(folder / "profile.json")
    return {"seconds": seconds, "loaded_mb": loaded, "decisions": {}}


def run_mloop_profile(folder: Path) -> dict[str, Any]:
    """A window against the stored profile: what `mloop monitor` does; the reference frame is not read."""
    from mloop.core.drift import DriftThresholds
    from mloop.data.profile import Profile
    from mloop.monitor.drift import drift_report

    profile = Profile.load(folder / "profile.json")
    current = load_frame(folder / "current.parquet")
    loaded = _rss_mb()
    started = time.perf_counter()
    report = drift_report(profile, current, DriftThresholds())
    seconds = time.perf_counter() - started
    decisions = {f.feature: f.drifted for f in report.features}
    return {"seconds": seconds, "loaded_mb": loaded, "decisions": decisions}


def run_worker(engine: str, folder: Path) -> None:
    _import_engine(engine)
    base = _rss_mb()
    runner = {
        "mloop": run_mloop,
        "mloop-parquet": run_mloop_parquet,
        "evidently": run_evidently,
        "profile": run_profile,
    }.get(engine, run_mloop_profile)
    result = runner(folder)
    result.update(base_mb=base, peak_mb=_peak_mb())
    print(json.dumps(result))


def measure(python: str, engine: str, folder: Path) -> dict[str, Any]:
    argv = [python, __file__, "--worker", engine, "--data", str(folder)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False, env=env)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"{engine} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["work_mb"] = result["peak_mb"] - result["loaded_mb"]
    return result


def _line(name: str, result: dict[str, Any]) -> str:
    return (
        f"{name:14s} {result['seconds']:8.3f} s   peak {result['peak_mb']:6.0f} MB "
        f"(base {result['base_mb']:4.0f} + frames {result['loaded_mb'] - result['base_mb']:4.0f} "
        f"+ work {result['work_mb']:5.0f})"
    )


def _load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="500,000 rows (fewer: imports swamp the ratio)")
    parser.add_argument("--rows", type=int, default=None, help="rows per frame (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=3, help="mloop runs (the median is reported)")
    parser.add_argument("--evidently-python", default=sys.executable, help="interpreter with evidently installed")
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker, args.data)
        return
    rows = args.rows or (500_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory(prefix="mloop-bench-drift-") as tmp:
        folder = Path(tmp)
        reference, current, injected = make_frames(rows)
        reference.to_parquet(folder / "reference.parquet")
        current.to_parquet(folder / "current.parquet")
        del reference, current
        print(f"{rows:,} rows × {NUMERIC} numeric + {CATEGORICAL} categorical; drift injected into {injected}")
        print(f"load average before: {_load_average()}")
        # mloop before and after Evidently, so a load spike on the shared machine hits both sides alike.
        first, second = (args.repeat + 1) // 2, args.repeat // 2
        runs = [measure(sys.executable, "mloop", folder) for _ in range(first)]
        streamed = [measure(sys.executable, "mloop-parquet", folder) for _ in range(first)]
        evidently = measure(args.evidently_python, "evidently", folder)
        print(_line("evidently", evidently))
        runs += [measure(sys.executable, "mloop", folder) for _ in range(second)]
        streamed += [measure(sys.executable, "mloop-parquet", folder) for _ in range(second)]
        for run in runs:
            print(_line("mloop frames", run))
        for run in streamed:
            print(_line("mloop parquet", run))
        build = measure(sys.executable, "profile", folder)
        print(_line("profile build", build))
        stored = measure(sys.executable, "mloop-profile", folder)
        print(_line("vs profile", stored))
        print(f"load average after: {_load_average()}")
    mloop = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]  # the median run
    parquet = sorted(streamed, key=lambda r: r["seconds"])[len(streamed) // 2]
    columns = sorted(mloop["decisions"])
    agree = [c for c in columns if mloop["decisions"][c] == evidently["decisions"].get(c)]
    truth = set(injected)
    summary = {
        "benchmark": "drift",
        "rows": rows,
        "columns": len(columns),
        "mloop_seconds": round(mloop["seconds"], 3),
        "mloop_seconds_all": [round(r["seconds"], 3) for r in runs],
        "evidently_seconds": round(evidently["seconds"], 3),
        "speedup": round(evidently["seconds"] / mloop["seconds"], 1),
        "mloop_peak_mb": round(mloop["peak_mb"]),
        "evidently_peak_mb": round(evidently["peak_mb"]),
        "memory_ratio": round(mloop["peak_mb"] / evidently["peak_mb"], 3),
        "mloop_base_mb": round(mloop["base_mb"]),
        "evidently_base_mb": round(evidently["base_mb"]),
        "mloop_frames_mb": round(mloop["loaded_mb"] - mloop["base_mb"]),
        "evidently_frames_mb": round(evidently["loaded_mb"] - evidently["base_mb"]),
        "mloop_work_mb": round(mloop["work_mb"]),
        "evidently_work_mb": round(evidently["work_mb"]),
        "work_memory_ratio": round(mloop["work_mb"] / evidently["work_mb"], 3),
        "mloop_parquet_seconds": round(parquet["seconds"], 3),
        "mloop_parquet_seconds_all": [round(r["seconds"], 3) for r in streamed],
        "speedup_parquet": round(evidently["seconds"] / parquet["seconds"], 1),
        "mloop_parquet_peak_mb": round(parquet["peak_mb"]),
        "mloop_parquet_base_mb": round(parquet["base_mb"]),
        "mloop_parquet_work_mb": round(parquet["work_mb"]),
        "memory_ratio_parquet": round(parquet["peak_mb"] / evidently["peak_mb"], 3),
        "parquet_same_decisions": parquet["decisions"] == mloop["decisions"],
        "goal_judged_on": "mloop-parquet",
        "goal_met": evidently["seconds"] / parquet["seconds"] >= 20 and parquet["peak_mb"] <= evidently["peak_mb"] / 4,
        "goal_met_frames": evidently["seconds"] / mloop["seconds"] >= 20
        and mloop["peak_mb"] <= evidently["peak_mb"] / 4,
        "decision_agreement": round(len(agree) / len(columns), 3),
        "disagreements": {
            c: {"mloop": mloop["decisions"][c], "evidently": evidently["decisions"].get(c)}
            for c in columns
            if c not in agree
        },
        "evidently_methods": sorted(set(evidently.get("methods", {}).values())),
        "mloop_correct": sum(mloop["decisions"][c] == (c in truth) for c in columns),
        "evidently_correct": sum(evidently["decisions"].get(c) == (c in truth) for c in columns),
        "profile_build_seconds": round(build["seconds"], 3),
        "vs_profile_seconds": round(stored["seconds"], 3),
        "vs_profile_peak_mb": round(stored["peak_mb"]),
        "vs_profile_same_decisions": stored["decisions"] == mloop["decisions"],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

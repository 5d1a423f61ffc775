"""Drift benchmark: mloop's drift engine vs Evidently's data-drift preset on the same frames.

A reference and a current frame of N rows (1,000,000 by default; 200,000 with --quick), 20 numeric
and 5 categorical columns, drift injected into 6 numeric and 2 categorical columns (the others are
fresh samples of the same distributions). Each engine runs in its own process so its time and peak
memory (ru_maxrss, also reported above the memory of the loaded frames) are its own; both read the
same Parquet files. Decisions per column are compared.

Evidently 0.7 does not import with pandas 3, so it may need its own interpreter:

    python -m venv /tmp/ev && /tmp/ev/bin/pip install evidently==0.7.23 'pandas<3' pyarrow
    .venv/bin/python bench/drift.py --quick --evidently-python /tmp/ev/bin/python   # about a minute
    .venv/bin/python bench/drift.py --evidently-python /tmp/ev/bin/python           # 1M rows

The last line printed is one JSON object with every figure and the ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
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


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_mloop(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, bool]:
    from mloop import compute_drift

    result = compute_drift(reference, current)
    return {str(r.feature): bool(r.drifted) for r in result.itertuples()}


def worker_evidently(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, bool]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=[c for c in reference.columns if c.startswith("num_")],
        categorical_columns=[c for c in reference.columns if c.startswith("cat_")],
    )
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    decisions: dict[str, bool] = {}
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
    return decisions


def run_worker(engine: str, folder: Path) -> None:
    reference = pd.read_parquet(folder / "reference.parquet")
    current = pd.read_parquet(folder / "current.parquet")
    loaded = _rss_mb()
    started = time.perf_counter()
    decisions = (worker_mloop if engine == "mloop" else worker_evidently)(reference, current)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_mb": _peak_mb(), "loaded_mb": loaded, "decisions": decisions}))


def measure(python: str, engine: str, folder: Path) -> dict[str, Any]:
    argv = [python, __file__, "--worker", engine, "--data", str(folder)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{engine} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["above_frames_mb"] = result["peak_mb"] - result["loaded_mb"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200,000 rows (about a minute)")
    parser.add_argument("--rows", type=int, default=None, help="rows per frame (default 1,000,000)")
    parser.add_argument("--evidently-python", default=sys.executable, help="interpreter with evidently installed")
    parser.add_argument("--worker", choices=["mloop", "evidently"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker, args.data)
        return
    rows = args.rows or (200_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory(prefix="mloop-bench-drift-") as tmp:
        folder = Path(tmp)
        reference, current, injected = make_frames(rows)
        reference.to_parquet(folder / "reference.parquet")
        current.to_parquet(folder / "current.parquet")
        del reference, current
        print(f"{rows:,} rows × {NUMERIC} numeric + {CATEGORICAL} categorical; drift injected into {injected}")
        mloop = measure(sys.executable, "mloop", folder)
        print(f"mloop:     {mloop['seconds']:7.2f} s, peak {mloop['peak_mb']:7.0f} MB")
        evidently = measure(args.evidently_python, "evidently", folder)
        print(f"evidently: {evidently['seconds']:7.2f} s, peak {evidently['peak_mb']:7.0f} MB")
    columns = sorted(mloop["decisions"])
    agree = [c for c in columns if mloop["decisions"][c] == evidently["decisions"].get(c)]
    truth = set(injected)
    summary = {
        "benchmark": "drift",
        "rows": rows,
        "columns": len(columns),
        "mloop_seconds": round(mloop["seconds"], 3),
        "evidently_seconds": round(evidently["seconds"], 3),
        "speedup": round(evidently["seconds"] / mloop["seconds"], 2),
        "mloop_peak_mb": round(mloop["peak_mb"]),
        "evidently_peak_mb": round(evidently["peak_mb"]),
        "memory_ratio": round(mloop["peak_mb"] / evidently["peak_mb"], 3),
        "mloop_above_frames_mb": round(mloop["above_frames_mb"]),
        "evidently_above_frames_mb": round(evidently["above_frames_mb"]),
        "decision_agreement": round(len(agree) / len(columns), 3),
        "disagreements": {
            c: {"mloop": mloop["decisions"][c], "evidently": evidently["decisions"].get(c)}
            for c in columns
            if c not in agree
        },
        "mloop_correct": sum(mloop["decisions"][c] == (c in truth) for c in columns),
        "evidently_correct": sum(evidently["decisions"].get(c) == (c in truth) for c in columns),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

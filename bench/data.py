"""Data benchmark: mloop ingest + validate vs a plain pandas read + pandera validate of the same CSV.

The CSV has N rows × 80 columns: the Ames sales resampled with noise on the numeric columns, plus six
noise columns. Each side runs in its own process so its time and peak memory (ru_maxrss) are its own:

- mloop: ``stages.ingest`` (read, content hash, Parquet snapshot, contract inferred on first ingest)
  then ``stages.validate`` (every check of the contract, with severities and a report);
- plain: ``pd.read_csv`` then a pandera schema with the same checks (types, nulls, ranges, category
  sets) built from the contract mloop inferred;
- read: a bare ``pd.read_csv``, the floor for memory (the issue's bound: mloop within 2× of it).

    .venv/bin/python bench/data.py --quick     # 300,000 rows, about a minute
    .venv/bin/python bench/data.py             # 100,000 and 1,000,000 rows

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

AMES = Path(__file__).resolve().parents[1] / "src" / "mloop" / "examples" / "ames.csv.gz"
COLUMNS = 80


def make_csv(rows: int, path: Path, seed: int = 11) -> None:
    """Ames resampled to ``rows`` with noise, widened to 80 columns."""
    rng = np.random.default_rng(seed)
    ames = pd.read_csv(AMES)
    frame = ames.sample(rows, replace=True, random_state=seed).reset_index(drop=True)
    for name in frame.select_dtypes("number").columns:
        if name in ("Sale_Price", "Year_Sold", "Mo_Sold", "Year_Built"):
            continue
        spread = float(frame[name].std() or 0.0) * 0.05
        noisy = frame[name] + rng.normal(0.0, spread, rows)
        frame[name] = noisy.round().astype("int64") if frame[name].dtype.kind == "i" else noisy.round(4)
    for i in range(COLUMNS - frame.shape[1]):
        frame[f"noise_{i}"] = rng.normal(0, 1, rows).round(4)
    frame.to_csv(path, index=False)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_mloop(csv: Path, folder: Path) -> dict[str, Any]:
    import yaml

    from mloop.pipeline import stages
    from mloop.project import Project

    config = {"name": "bench", "data": {"source": str(csv), "target": "Sale_Price", "versioning": "off"}}
    (folder / "mloop.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    project = Project.load(folder / "mloop.yaml")
    start = time.perf_counter()
    snapshot = stages.ingest(project).snapshot
    ingested = time.perf_counter()
    _, report = stages.validate(project, snapshot.hash)
    done = time.perf_counter()
    return {
        "seconds": done - start,
        "ingest_seconds": ingested - start,
        "validate_seconds": done - ingested,
        "peak_mb": _peak_mb(),
        "passed": report.passed,
        "violations": len(report.violations),
    }


def worker_plain(csv: Path, folder: Path) -> dict[str, Any]:
    import pandera.pandas as pa

    from mloop.data.contract import load_contract

    contract = load_contract(folder / "contract.yaml")  # the same checks mloop ran, written as plain pandera
    start = time.perf_counter()
    frame = pd.read_csv(csv)
    read = time.perf_counter()
    columns = {}
    for name, spec in contract.columns.items():
        checks = []
        if spec.min is not None and spec.max is not None:
            checks.append(pa.Check.in_range(spec.min, spec.max))
        if spec.categories is not None:
            checks.append(pa.Check.isin(spec.categories))
        kind: Any = {"integer": int, "float": float, "string": object, "boolean": bool}.get(spec.dtype)
        if spec.dtype == "integer" and spec.nullable:
            kind = float  # pandas reads an integer column with gaps as float
        columns[name] = pa.Column(kind, checks=checks, nullable=spec.nullable, coerce=True)
    try:
        pa.DataFrameSchema(columns).validate(frame, lazy=True)
        failures = 0
    except pa.errors.SchemaErrors as exc:
        failures = len(exc.failure_cases)
    done = time.perf_counter()
    return {
        "seconds": done - start,
        "read_seconds": read - start,
        "validate_seconds": done - read,
        "peak_mb": _peak_mb(),
        "failure_cases": failures,
    }


def worker_read(csv: Path, folder: Path) -> dict[str, Any]:
    start = time.perf_counter()
    frame = pd.read_csv(csv)
    return {"seconds": time.perf_counter() - start, "peak_mb": _peak_mb(), "rows": len(frame)}


def run_worker(kind: str, csv: Path, folder: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", kind, "--csv", str(csv), "--folder", str(folder)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def bench(rows: int, root: Path) -> dict[str, Any]:
    csv = root / f"ames_{rows}.csv"
    start = time.perf_counter()
    make_csv(rows, csv)
    made = time.perf_counter() - start
    folder = root / f"project_{rows}"
    folder.mkdir()
    mloop = run_worker("mloop", csv, folder)  # first: it infers the contract the plain side checks with
    plain = run_worker("plain", csv, folder)
    read = run_worker("read", csv, folder)
    return {
        "rows": rows,
        "columns": COLUMNS,
        "csv_mb": round(csv.stat().st_size / 2**20, 1),
        "make_seconds": round(made, 1),
        "mloop": mloop,
        "plain": plain,
        "time_ratio": round(mloop["seconds"] / plain["seconds"], 2),
        "memory_ratio": round(mloop["peak_mb"] / plain["peak_mb"], 2),
        "read_only": read,
        "memory_vs_plain_read": round(mloop["peak_mb"] / read["peak_mb"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300,000 rows only (fewer: imports swamp the ratio)")
    parser.add_argument("--rows", type=int, nargs="*", help="row counts to run (default 100000 1000000)")
    parser.add_argument("--worker", choices=["mloop", "plain", "read"], help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        work = {"mloop": worker_mloop, "plain": worker_plain, "read": worker_read}[args.worker]
        print(json.dumps(work(args.csv, args.folder)))
        return
    sizes = args.rows or ([300_000] if args.quick else [100_000, 1_000_000])
    results = []
    with tempfile.TemporaryDirectory(prefix="mloop-bench-data-") as tmp:
        for rows in sizes:
            result = bench(rows, Path(tmp))
            results.append(result)
            m, p = result["mloop"], result["plain"]
            print(
                f"{rows:>9,} rows × {COLUMNS}: mloop {m['seconds']:.1f} s / {m['peak_mb']:.0f} MB, "
                f"pandas+pandera {p['seconds']:.1f} s / {p['peak_mb']:.0f} MB "
                f"(time ×{result['time_ratio']}, memory ×{result['memory_ratio']}); a bare pd.read_csv peaks at "
                f"{result['read_only']['peak_mb']:.0f} MB (mloop ×{result['memory_vs_plain_read']})"
            )
    print(json.dumps({"benchmark": "data", "results": results}))


if __name__ == "__main__":
    main()

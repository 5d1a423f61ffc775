"""mloop's training overhead: `mloop train` (search off) vs a plain scikit-learn fit of the same pipeline.

The project is the shipped Ames example (examples/house-prices/mloop.yaml: HistGradientBoosting with
max_iter 300, slices, a behavioural check) with mloop's default evaluation: permutation importance, plots,
latency, slices, behaviour, and the model, dataset, holdout, profile and artifacts logged to MLflow
(SQLite). Both sides fit the identical Pipeline (built from the data contract) with the same thread limit
(train.threads, 1) on the same rows.

Both sides run in this one process, already warm (imports done, MLflow's store created), so neither pays
interpreter start-up or imports; they alternate, so a shared machine's load hits them alike:

- plain: read the snapshot's Parquet file (the same bytes mloop reads), split it as mloop does, fit the
  pipeline, predict the holdout and score it: what a hand-written script does (its column types given);
- mloop: the `mloop train` command itself (CLI parsing, config, snapshot, fit, evaluation, logging).

Wall time is the goal's measure; CPU time (user + system of the process, all threads) is reported too,
because it does not move with the load of other processes. With ``--cli`` the same comparison is also
made between processes: `mloop train` against `python` running the plain script, imports included.

    python bench/training.py [--quick] [--repeats N] [--cli]

The last line printed is one JSON object with the figures and the ratios (goal: under 1.5x on Ames).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from threadpoolctl import threadpool_limits

from mloop.cli.main import app
from mloop.data.contract import Contract, load_contract
from mloop.data.snapshot import latest_snapshot
from mloop.pipeline import stages
from mloop.project import Project
from mloop.train.pipeline import pipeline_for
from mloop.train.split import prepare

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "house-prices" / "mloop.yaml"

PLAIN_SCRIPT = """
import pickle, sys
import numpy as np
from threadpoolctl import threadpool_limits
with open(sys.argv[1], "rb") as handle:
    pipeline, X_train, y_train, X_test, y_test, threads = pickle.load(handle)
with threadpool_limits(threads):
    pipeline.fit(X_train, y_train)
    print(float(np.sqrt(np.mean((pipeline.predict(X_test) - y_test) ** 2))))
"""


def project(folder: Path, evaluation: bool) -> Project:
    """The Ames example in ``folder``; ``evaluation=False`` turns importance and plots off."""
    config = yaml.safe_load(EXAMPLE.read_text())
    config["data"]["source"] = str(files("mloop.examples") / "ames.csv.gz")
    config["data"]["versioning"] = "off"  # ingest only, which is not timed; keeps the bench free of DVC
    if not evaluation:
        config["train"].update({"importance": False, "plots": False})
    folder.mkdir(parents=True)
    (folder / "mloop.yaml").write_text(yaml.safe_dump(config))
    proj = Project.load(folder / "mloop.yaml")
    stages.ingest(proj)
    stages.validate(proj)
    return proj


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(work: Callable[[], Any]) -> tuple[float, float]:
    gc.collect()
    wall, used = time.perf_counter(), cpu()
    work()
    return time.perf_counter() - wall, cpu() - used


def plain_fit(proj: Project, contract: Contract) -> None:
    """What a user would write by hand: read, split, fit the same pipeline, score the holdout.

    The column types (the contract) are given, not read: a hand-written script has them in its code.
    """
    frame = pd.read_parquet(latest_snapshot(proj.snapshots_dir).path)
    split = prepare(frame, contract, proj.config)
    with threadpool_limits(proj.config.train.threads or None):
        model = pipeline_for(contract, proj.config).fit(split.X_train, split.y_train)
        float(np.sqrt(np.mean((model.predict(split.X_test) - split.y_test.to_numpy()) ** 2)))


def mloop_train(proj: Project) -> None:
    """`mloop train`, run by its own CLI code in this process (its output discarded)."""
    with contextlib.redirect_stdout(io.StringIO()):
        app(["-c", str(proj.root / "mloop.yaml"), "train", "--json"], standalone_mode=False)


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_process(argv: list[str]) -> tuple[float, float]:
    wall, used = time.perf_counter(), child_cpu()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)  # noqa: S603 - fixed argv
    return time.perf_counter() - wall, child_cpu() - used


def process_sides(proj: Project, tmp: Path) -> tuple[list[str], list[str]]:
    """The two commands of the process-level comparison: a plain script on pickled inputs, and `mloop train`."""
    contract = load_contract(proj.contract_path)
    split = prepare(pd.read_parquet(latest_snapshot(proj.snapshots_dir).path), contract, proj.config)
    inputs = tmp / "plain-inputs.pkl"
    pipeline = pipeline_for(contract, proj.config)
    state = (pipeline, split.X_train, split.y_train, split.X_test, split.y_test.to_numpy(), proj.config.train.threads)
    inputs.write_bytes(pickle.dumps(state))
    script = tmp / "plain_fit.py"
    script.write_text(PLAIN_SCRIPT)
    mloop = str(Path(sys.executable).with_name("mloop"))
    return [sys.executable, str(script), str(inputs)], [mloop, "-c", str(proj.root / "mloop.yaml"), "train", "--json"]


def median_pair(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats (under a minute)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--cli", action="store_true", help="also compare whole processes, imports included")
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 7)
    warnings.simplefilter("ignore")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    results: dict[str, Any] = {"benchmark": "training", "rows": 2930, "repeats": repeats}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        full = project(Path(tmp) / "full", evaluation=True)
        lean = project(Path(tmp) / "lean", evaluation=False)
        contract = load_contract(full.contract_path)
        for warm in (lambda: plain_fit(full, contract), lambda: mloop_train(full), lambda: mloop_train(lean)):
            warm()  # imports, MLflow's store migrations and first-call caches are one-off costs
        sides: dict[str, list[tuple[float, float]]] = {"plain": [], "mloop": [], "lean": []}
        work: dict[str, Callable[[], Any]] = {
            "plain": lambda: plain_fit(full, contract),
            "mloop": lambda: mloop_train(full),
            "lean": lambda: mloop_train(lean),
        }
        for i in range(repeats):  # interleaved, in alternating order, so drifting load hits all sides alike
            for name in list(work)[:: 1 if i % 2 == 0 else -1]:
                sides[name].append(measure(work[name]))
        processes: dict[str, list[tuple[float, float]]] = {"plain": [], "mloop": []}
        if args.cli:
            plain_argv, mloop_argv = process_sides(full, Path(tmp))
            run_process(plain_argv), run_process(mloop_argv)  # warm the file cache
            for i in range(repeats):
                order = [("plain", plain_argv), ("mloop", mloop_argv)][:: 1 if i % 2 == 0 else -1]
                for name, argv in order:
                    processes[name].append(run_process(argv))
    load_after = os.getloadavg()
    (pw, pc), (mw, mc), (lw, lc) = (median_pair(sides[k]) for k in ("plain", "mloop", "lean"))
    print(f"in-process, medians of {repeats}          wall      cpu   ratio wall  ratio cpu")
    print(f"scikit-learn (read, split, fit, score)   {pw:6.2f} s {pc:6.2f} s")
    print(f"mloop train (default evaluation)         {mw:6.2f} s {mc:6.2f} s   {mw / pw:6.2f}x   {mc / pc:6.2f}x")
    print(f"mloop train, importance and plots off    {lw:6.2f} s {lc:6.2f} s   {lw / pw:6.2f}x   {lc / pc:6.2f}x")
    results.update(
        {
            "sklearn_seconds": round(pw, 3),
            "sklearn_cpu_seconds": round(pc, 3),
            "mloop_train_seconds": round(mw, 3),
            "mloop_train_cpu_seconds": round(mc, 3),
            "ratio": round(mw / pw, 3),
            "ratio_cpu": round(mc / pc, 3),
            "mloop_train_lean_seconds": round(lw, 3),
            "ratio_lean": round(lw / pw, 3),
            "goal_ratio": 1.5,
        }
    )
    if args.cli:
        (qw, qc), (nw, nc) = median_pair(processes["plain"]), median_pair(processes["mloop"])
        print(f"processes: python plain_fit.py           {qw:6.2f} s {qc:6.2f} s")
        print(f"processes: mloop train                   {nw:6.2f} s {nc:6.2f} s   {nw / qw:6.2f}x   {nc / qc:6.2f}x")
        results.update(
            {
                "process_sklearn_seconds": round(qw, 3),
                "process_mloop_train_seconds": round(nw, 3),
                "process_ratio": round(nw / qw, 3),
                "process_ratio_cpu": round(nc / qc, 3),
            }
        )
    results["load_average_1min"] = [round(load_before[0], 2), round(load_after[0], 2)]
    print(f"load average (1 min) before and after: {load_before[0]:.2f}, {load_after[0]:.2f} on {os.cpu_count()} CPUs")
    print(json.dumps(results))


if __name__ == "__main__":
    main()

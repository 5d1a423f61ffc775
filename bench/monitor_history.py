"""Incremental monitoring: the cost of one `mloop monitor` run as the prediction log's history grows.

A project is trained on scikit-learn's diabetes data (10 numeric features), then its SQLite prediction
log is filled with N logged predictions of the champion (10,000, then 10,000,000; 1,000,000 with
``--quick``). At each size it times:

* ``monitor`` — ``mloop.monitor.runner.monitor(project)``: the last window of 200 rows against the
  reference profile, as a scheduled `mloop monitor` runs it, 200 new rows logged before each run
  (median of ``--repeat`` runs; a warm-up run first, which with no tally yet counts every row once);
* ``read window`` — the log reads inside it: ``store.read(model_version, last=200)`` and the count of
  the rows logged since the previous run (its ``Tally``), which numbers the window;
* ``reread history`` — the peer: what monitoring cost before it read only its window, and what a
  monitor that keeps no index pays: every logged row of the version read and decoded, then the last
  200 kept (``store.read(model_version)``; run once at the largest size, it takes minutes).

The goal: the window's time at 10M rows within 1.5x of its time at 10k (the same time per window,
whatever the history), where rereading grows with the rows. Run:
``python bench/monitor_history.py [--quick]``; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sklearn.datasets import load_diabetes

from mloop.data.predictions import PredictionRow
from mloop.monitor.runner import Tally, monitor
from mloop.pipeline import stages
from mloop.pipeline.scaffold import init_project
from mloop.project import Project
from mloop.quiet import quiet_libraries
from mloop.registry.versions import CHAMPION, alias_version

WINDOW = 200
BATCH = 100_000
GOAL = 1.5


def _project(folder: Path) -> Project:
    frame = load_diabetes(as_frame=True).frame
    source = folder / "diabetes.csv"
    frame.to_csv(source, index=False)
    project = Project.load(init_project(folder / "project", str(source), "target", task="regression", dvc=False))
    stages.run(project)
    return project


def _fill(project: Project, version: str, upto: int, have: int, progress: Progress) -> None:
    """Log rows ``have`` to ``upto`` (bootstrap rows of the data with noise; one-second steps of time)."""
    frame = load_diabetes(as_frame=True).frame.drop(columns=["target"])
    rng = np.random.default_rng(have)
    store = project.prediction_store()
    start = pd.Timestamp("2026-01-01", tz="UTC")
    task = progress.add_task(f"logging rows {have:,} → {upto:,}", total=upto - have)
    for first in range(have, upto, BATCH):
        n = min(BATCH, upto - first)
        values = frame.to_numpy()[rng.integers(0, len(frame), n)] * rng.normal(1, 0.05, (n, frame.shape[1]))
        records = pd.DataFrame(values, columns=frame.columns).to_dict(orient="records")
        stamps = (start + pd.to_timedelta(np.arange(first, first + n), unit="s")).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
        rows = [
            PredictionRow(f"r{first + i}", stamp, version, record, 150.0, 1.0)
            for i, (stamp, record) in enumerate(zip(stamps, records, strict=True))
        ]
        store.write_many(rows)
        progress.advance(task, n)


def _timed(call: Any, repeat: int, before: Any = None) -> float:
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 1M rows (about two minutes)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-peer", action="store_true", help="skip rereading the whole history")
    args = parser.parse_args()
    quiet_libraries()  # as the CLI does: no MLflow download bars between the figures
    sizes = [10_000, 1_000_000 if args.quick else 10_000_000]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, Progress(transient=True) as progress:
        project = _project(Path(tmp))
        champion = alias_version(project, CHAMPION)
        assert champion is not None  # noqa: S101 - the run above promoted version 1
        have = 0
        for size in sizes:
            _fill(project, champion.version, size, have, progress)
            have = size
            store = project.prediction_store()
            monitor(project)  # warm-up: the reference profile downloaded, the tally made, the file's pages cached

            def more() -> None:
                nonlocal have
                _fill(project, champion.version, have + WINDOW, have, progress)
                have += WINDOW

            row: dict[str, Any] = {"rows": size}
            row["monitor_s"] = _timed(lambda: monitor(project), args.repeat, more)
            row["read_window_s"] = _timed(
                lambda store=store: (
                    store.read(model_version=champion.version, last=WINDOW),
                    store.count(champion.version, since=Tally.load(project, champion.version).ts),
                ),
                args.repeat,
            )
            if not args.no_peer:
                row["reread_history_s"] = _timed(
                    lambda store=store: store.read(model_version=champion.version).tail(WINDOW),
                    1 if size > 100_000 else args.repeat,
                )
            row["log_mb"] = round(project.predictions_db.stat().st_size / 1e6, 1)
            results.append(row)
    small, large = results[0], results[-1]
    summary = {
        "results": results,
        "monitor_ratio": large["monitor_s"] / small["monitor_s"],
        "read_window_ratio": large["read_window_s"] / small["read_window_s"],
        "goal": GOAL,
    }
    if "reread_history_s" in large:
        summary["reread_ratio"] = large["reread_history_s"] / small["reread_history_s"]
        summary["mloop_vs_reread_at_largest"] = large["reread_history_s"] / large["monitor_s"]
    summary["goal_met"] = summary["monitor_ratio"] <= GOAL
    table = Table(title="one monitoring run (window of 200) as the log grows (SQLite)")
    for column in ("logged rows", "log MB", "monitor", "read window", "reread history (peer)"):
        table.add_column(column, justify="right")
    for row in results:
        peer = f"{row['reread_history_s']:.3f} s" if "reread_history_s" in row else "—"
        table.add_row(
            f"{row['rows']:,}",
            f"{row['log_mb']:,}",
            f"{row['monitor_s']:.3f} s",
            f"{row['read_window_s'] * 1000:.1f} ms",
            peer,
        )
    console = Console(width=140)
    console.print(table)
    console.print(
        f"monitor at {large['rows']:,} rows / at {small['rows']:,}: {summary['monitor_ratio']:.2f}x "
        f"(goal ≤ {GOAL}x: {'met' if summary['goal_met'] else 'NOT met'})"
    )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

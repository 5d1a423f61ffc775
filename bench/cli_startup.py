"""How long a command takes before it does anything: `mloop --help` against `python -c pass` and `mlflow --help`.

Every mloop command used to import MLflow, pandas and scikit-learn first (2.2 s for `--help`). Each
command line runs as a new process, as a user types it; the three alternate, so a shared machine's
load hits them alike, and the median wall time of each is reported. `mloop train --help` and
`mloop monitor --help` stand for the subcommands (their options are parsed; nothing runs).

    python bench/cli_startup.py [--quick] [--repeats N]

The last line printed is one JSON object with the figures and the ratios (goal: `mloop --help` ≤ 0.3 s).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
COMMANDS: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "mloop --help": [str(BIN / "mloop"), "--help"],
    "mloop train --help": [str(BIN / "mloop"), "train", "--help"],
    "mloop monitor --help": [str(BIN / "mloop"), "monitor", "--help"],
    "mlflow --help": [str(BIN / "mlflow"), "--help"],
}


def _once(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system of the child) seconds of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=120)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 runs of each (default 15)")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    repeats = args.repeats or (5 if args.quick else 15)
    for argv in COMMANDS.values():  # warm the file cache and the bytecode of each once, untimed
        _once(argv)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    cpu: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(repeats):
        for name, argv in COMMANDS.items():
            wall, used = _once(argv)
            times[name].append(wall)
            cpu[name].append(used)
    medians = {name: statistics.median(values) for name, values in times.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
    for name, value in medians.items():
        print(
            f"{name:24s} {value * 1000:7.0f} ms wall, {cpu_medians[name] * 1000:5.0f} ms CPU "
            f"(medians of {repeats}; fastest {min(times[name]) * 1000:.0f} ms)"
        )
    result = {
        "benchmark": "cli_startup",
        "repeats": repeats,
        "median_s": {name: round(value, 4) for name, value in medians.items()},
        "median_cpu_s": {name: round(value, 4) for name, value in cpu_medians.items()},
        "mloop_help_vs_python": round(medians["mloop --help"] / medians["python -c pass"], 1),
        "mlflow_help_vs_mloop_help": round(medians["mlflow --help"] / medians["mloop --help"], 2),
        "goal_mloop_help_s": 0.3,
        "goal_met": max(medians[n] for n in COMMANDS if n.startswith("mloop")) <= 0.3,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

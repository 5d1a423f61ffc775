"""How often multivariate drift alarms on unchanged windows, and how often it catches a shift.

The reference is the Ames demo's training years (2006-2007, without the target, the time column and the
month), fitted with ``mloop.data.multivariate.fit_multivariate_reference``'s defaults. Windows are
bootstrap resamples, some with a shift injected:

* ``unchanged``: resampled from the reference itself;
* ``unchanged, held out``: the reference is fitted on a random two thirds and each window is 200 distinct
  rows drawn from the other third, rows it has never seen (as production rows are);
* ``Gr_Liv_Area shuffled``: Gr_Liv_Area permuted within the window, so every marginal is the window's own
  but living area no longer equals First_Flr_SF + Second_Flr_SF (a break per-feature drift cannot see);
* ``Gr_Liv_Area +0.5 sd`` and ``Neighborhood 20%``: the plain shifts of bench/drift_calibration.py;
* ``sales 2008-2010``: the demo's later years, not resampled from the reference (real, unplanned change).

Each cell is the share of windows alarmed by: the per-feature calibrated decision (``drift_report`` with
the default thresholds), the PCA reconstruction error, the domain classifier, and either multivariate
statistic. Also printed: seconds per ``multivariate_drift`` call. Run: ``python bench/multivariate_drift.py
[--quick]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from mloop.core.drift import DriftThresholds
from mloop.data.multivariate import MultivariateReference, fit_multivariate_reference, multivariate_drift
from mloop.data.profile import Profile, build_profile, infer_kinds
from mloop.monitor.drift import drift_report

ROOT = Path(__file__).resolve().parents[1]
AMES = ROOT / "src" / "mloop" / "examples" / "ames.csv.gz"
DROP = ["Sale_Price", "Year_Sold", "Mo_Sold"]
Shift = Callable[[pd.DataFrame, pd.DataFrame, np.random.Generator], pd.DataFrame]
COLUMNS = ("per-feature (calibrated)", "PCA reconstruction", "domain classifier", "either multivariate")


def _shuffle(window: pd.DataFrame, reference: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return window.assign(Gr_Liv_Area=rng.permutation(window["Gr_Liv_Area"].to_numpy()))


def _numeric(window: pd.DataFrame, reference: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return window.assign(Gr_Liv_Area=window["Gr_Liv_Area"] + 0.5 * reference["Gr_Liv_Area"].std())


def _category(window: pd.DataFrame, reference: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    moved = window.copy()
    moved.loc[rng.random(len(moved)) < 0.2, "Neighborhood"] = "Edwards"
    return moved


def _measure(
    reference: MultivariateReference,
    profile: Profile,
    windows: list[pd.DataFrame],
    progress: Progress,
    task: int,
) -> tuple[dict[str, float], float]:
    alarms = dict.fromkeys(COLUMNS, 0)
    seconds = 0.0
    for window in windows:
        alarms[COLUMNS[0]] += drift_report(profile, window, DriftThresholds()).dataset_drift
        started = time.perf_counter()
        result = multivariate_drift(reference, window)
        seconds += time.perf_counter() - started
        alarms[COLUMNS[1]] += result.reconstruction_drifted
        alarms[COLUMNS[2]] += result.auroc_drifted
        alarms[COLUMNS[3]] += result.drifted
        progress.advance(task)
    return {k: v / len(windows) for k, v in alarms.items()}, seconds / len(windows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer windows and one held-out split")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    unchanged, shifted, splits = (30, 20, 1) if args.quick else (100, 50, 3)
    ames = pd.read_csv(AMES)
    frame = ames[ames["Year_Sold"] <= 2007].drop(columns=DROP).reset_index(drop=True)
    later = ames[ames["Year_Sold"] >= 2008].drop(columns=DROP).reset_index(drop=True)
    kinds = infer_kinds(frame)
    console = Console(width=160)

    started = time.perf_counter()
    reference = fit_multivariate_reference(frame, *kinds, window_sizes=(200, 1000))
    fit_seconds = time.perf_counter() - started
    profile = build_profile(frame, *kinds)

    def resampled(
        source: pd.DataFrame, size: int, count: int, base: int, shift: Shift | None, replace: bool = True
    ) -> list[pd.DataFrame]:
        windows = []
        for seed in range(count):
            rng = np.random.default_rng(base + seed)
            window = source.sample(n=size, replace=replace, random_state=rng).reset_index(drop=True)
            windows.append(window if shift is None else shift(window, frame, rng))
        return windows

    plan: list[tuple[str, int, Callable[[], list[pd.DataFrame]]]] = [
        ("unchanged", 200, lambda: resampled(frame, 200, unchanged, 0, None)),
        ("unchanged", 1000, lambda: resampled(frame, 1000, unchanged // 2, 10_000, None)),
        ("Gr_Liv_Area shuffled", 200, lambda: resampled(frame, 200, shifted, 20_000, _shuffle)),
        ("Gr_Liv_Area shuffled", 1000, lambda: resampled(frame, 1000, shifted // 2, 30_000, _shuffle)),
        ("Gr_Liv_Area +0.5 sd", 200, lambda: resampled(frame, 200, shifted, 40_000, _numeric)),
        ("Neighborhood 20%", 200, lambda: resampled(frame, 200, shifted, 50_000, _category)),
        ("sales 2008-2010", 200, lambda: resampled(later, 200, shifted, 60_000, None)),
    ]
    total = unchanged + unchanged // 2 + shifted + shifted // 2 + 3 * shifted + splits * (unchanged // splits)
    results = []
    with Progress(transient=True, console=console) as progress:
        task = progress.add_task("windows", total=total)
        for name, size, make in plan:
            windows = make()
            rates, seconds = _measure(reference, profile, windows, progress, task)
            results.append({"case": name, "window": size, "windows": len(windows), **rates, "seconds": seconds})
        # Held out: fit on two thirds, resample windows from the rest (one reference per split).
        held: list[tuple[dict[str, float], float]] = []
        per_split = unchanged // splits
        for split in range(splits):
            order = np.random.default_rng(70_000 + split).permutation(len(frame))
            cut = 2 * len(frame) // 3
            fitted, rest = frame.iloc[order[:cut]], frame.iloc[order[cut:]]
            split_reference = fit_multivariate_reference(fitted, *kinds, window_sizes=(200,))
            split_profile = build_profile(fitted, *kinds)
            windows = resampled(rest, 200, per_split, 80_000 + 1000 * split, None, replace=False)
            held.append(_measure(split_reference, split_profile, windows, progress, task))
        results.append(
            {
                "case": f"unchanged, held out ({splits} split{'s' if splits > 1 else ''})",
                "window": 200,
                "windows": per_split * splits,
                **{k: float(np.mean([rates[k] for rates, _ in held])) for k in COLUMNS},
                "seconds": float(np.mean([seconds for _, seconds in held])),
            }
        )
    table = Table(
        title=f"share of windows alarmed ({len(reference.columns)} Ames features, "
        f"{reference.n_components} components, {reference.explained_variance:.0%} of the variance)"
    )
    for column in ("case", "window", "windows", *COLUMNS, "s / window"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for row in results:
        table.add_row(
            str(row["case"]),
            str(row["window"]),
            str(row["windows"]),
            *(f"{row[k]:.1%}" for k in COLUMNS),
            f"{row['seconds']:.2f}",
        )
    console.print(table)
    console.print(f"fit_multivariate_reference (calibrating windows of 200 and 1,000 rows): {fit_seconds:.1f} s")
    if args.json:
        args.json.write_text(json.dumps({"fit_seconds": fit_seconds, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How often the drift decision alarms on unchanged windows, and how often it catches a stated shift.

The measurement the calibrated decision's defaults (``monitor.false_alarm_rate`` 0.05, ``effect_floor``
0.1, ``ks_effect_floor`` 0.1) were chosen from. The reference is the Ames demo's training years
(2006-2007, without the target, the time column and the month); every window is a bootstrap resample of
it (no change at all), some with one shift injected:

* ``Gr_Liv_Area +k sd``: one numeric feature moved by k reference standard deviations;
* ``Neighborhood p``: a share p of the houses moved to one neighbourhood (Edwards);
* ``Lot_Area nulls p``: a share p of one numeric feature arriving empty.

Each window's statistics are computed once and judged by every decision (``decide`` re-decides from
them), so the columns differ only in the decision. Run: ``python bench/drift_calibration.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from mloop.core.drift import DriftThresholds, FeatureDrift, decide
from mloop.data.profile import build_profile, infer_kinds
from mloop.monitor.drift import drift_report

ROOT = Path(__file__).resolve().parents[1]
AMES = ROOT / "src" / "mloop" / "examples" / "ames.csv.gz"
DECISIONS = {
    "per_feature (p < 0.01 each)": DriftThresholds(decision="per_feature"),
    "calibrated (default)": DriftThresholds(),
    "calibrated, rate 0.01": DriftThresholds(false_alarm_rate=0.01),
    "calibrated, rate 0.10": DriftThresholds(false_alarm_rate=0.10),
    "calibrated, no floors": DriftThresholds(effect_floor=0.0, ks_effect_floor=0.0),
}
Shift = Callable[[pd.DataFrame, pd.DataFrame, np.random.Generator], pd.DataFrame]


def _numeric_shift(k: float) -> Shift:
    def shift(window: pd.DataFrame, reference: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        return window.assign(Gr_Liv_Area=window["Gr_Liv_Area"] + k * reference["Gr_Liv_Area"].std())

    return shift


def _category_shift(share: float) -> Shift:
    def shift(window: pd.DataFrame, reference: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        moved = window.copy()
        moved.loc[rng.random(len(moved)) < share, "Neighborhood"] = "Edwards"
        return moved

    return shift


def _nulls(share: float) -> Shift:
    def shift(window: pd.DataFrame, reference: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        values = window["Lot_Area"].astype("float64")
        return window.assign(Lot_Area=values.where(rng.random(len(values)) >= share))

    return shift


def cases(quick: bool) -> list[tuple[str, int, int, Shift | None]]:
    """(name, window size, windows, shift)."""
    unchanged, shifted = (60, 20) if quick else (200, 50)
    return [
        ("unchanged", 50, unchanged, None),
        ("unchanged", 200, unchanged, None),
        ("unchanged", 1000, unchanged // 2, None),
        ("Gr_Liv_Area +0.3 sd", 200, shifted, _numeric_shift(0.3)),
        ("Gr_Liv_Area +0.5 sd", 200, shifted, _numeric_shift(0.5)),
        ("Neighborhood 10%", 200, shifted, _category_shift(0.1)),
        ("Neighborhood 20%", 200, shifted, _category_shift(0.2)),
        ("Lot_Area nulls 2%", 200, shifted, _nulls(0.02)),
        ("Lot_Area nulls 5%", 200, shifted, _nulls(0.05)),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer windows (about a minute)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    ames = pd.read_csv(AMES)
    reference = ames[ames["Year_Sold"] <= 2007].drop(columns=["Sale_Price", "Year_Sold", "Mo_Sold"])
    reference = reference.reset_index(drop=True)
    profile = build_profile(reference, *infer_kinds(reference))
    statistics = DriftThresholds(decision="per_feature")  # any decision: decide() re-judges the statistics
    results = []
    todo = cases(args.quick)
    with Progress(transient=True) as progress:
        task = progress.add_task("windows", total=sum(count for _, _, count, _ in todo))
        for index, (name, size, count, shift) in enumerate(todo):
            alarms = dict.fromkeys(DECISIONS, 0)
            for seed in range(count):
                rng = np.random.default_rng(index * 100_000 + seed)
                window = reference.sample(n=size, replace=True, random_state=rng).reset_index(drop=True)
                if shift is not None:
                    window = shift(window, reference, rng)
                features: list[FeatureDrift] = drift_report(profile, window, statistics).features
                for label, decision in DECISIONS.items():
                    alarms[label] += any(f.drifted for f in decide(features, decision))
                progress.advance(task)
            results.append(
                {"case": name, "window": size, "windows": count, **{k: v / count for k, v in alarms.items()}}
            )
    table = Table(title=f"share of windows with any drift alarm ({len(profile.columns)} Ames features)")
    for column in ("case", "window", "windows", *DECISIONS):
        table.add_column(column, justify="left" if column == "case" else "right")
    for row in results:
        table.add_row(row["case"], str(row["window"]), str(row["windows"]), *(f"{row[k]:.1%}" for k in DECISIONS))
    Console(width=160).print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""mloop's training overhead: `mloop train` (search off) vs a plain scikit-learn fit of the same pipeline.

Both sides fit the identical Pipeline (mloop builds it from the data contract) on the same Ames rows
with one thread. The plain side reads the CSV, splits and fits; mloop's side is `mloop train`'s work:
read the snapshot, split, fit, evaluate and log run, dataset, model and artifacts to MLflow (SQLite).

    python bench/training.py [--quick] [--repeats N]

The last line printed is one JSON object with the figures and the ratio (goal: under 1.5x on Ames).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from threadpoolctl import threadpool_limits

from mloop.data.contract import coerce_frame, load_contract
from mloop.pipeline import stages
from mloop.pipeline.scaffold import init_project
from mloop.project import Project
from mloop.train.pipeline import pipeline_for
from mloop.train.split import prepare


def project(folder: Path, source: Path, evaluation: bool) -> Project:
    root = Path(init_project(folder, str(source), "Sale_Price", time_column="Year_Sold"))  # type: ignore[arg-type]
    config = yaml.safe_load(root.read_text())
    config["train"] = {
        **config.get("train", {}),
        "params": {"max_iter": 300, "learning_rate": 0.05},
        "importance": evaluation,
        "plots": evaluation,
    }
    root.write_text(yaml.safe_dump(config))
    proj = Project.load(root)
    stages.ingest(proj)
    stages.validate(proj)
    stages.train_stage(proj)  # warm: MLflow's store migrations and imports are one-off costs
    return proj


def plain_fit(source: Path, proj: Project) -> float:
    """What a user would write by hand: read, split, fit the same pipeline, score the holdout."""
    start = time.perf_counter()
    frame = pd.read_csv(source)
    contract = load_contract(proj.contract_path)
    split = prepare(frame, contract, proj.config)
    with threadpool_limits(1):
        model = pipeline_for(contract, proj.config).fit(split.X_train, split.y_train)
        model.predict(coerce_frame(split.test, contract))
    return time.perf_counter() - start


def mloop_train(proj: Project) -> float:
    start = time.perf_counter()
    stages.train_stage(proj)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats (about a minute)")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 7)
    warnings.simplefilter("ignore")
    results: dict[str, Any] = {"benchmark": "training", "rows": 2930, "repeats": repeats}
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "ames.csv"
        pd.read_csv(str(files("mloop.examples") / "ames.csv.gz")).to_csv(source, index=False)
        lean = project(Path(tmp) / "lean", source, evaluation=False)
        full = project(Path(tmp) / "full", source, evaluation=True)
        plain, lean_t, full_t = [], [], []
        for _ in range(repeats):  # interleaved, so load on a shared machine hits all sides alike
            plain.append(plain_fit(source, lean))
            lean_t.append(mloop_train(lean))
            full_t.append(mloop_train(full))
    sk, ml, mf = statistics.median(plain), statistics.median(lean_t), statistics.median(full_t)
    print(f"scikit-learn fit (read, split, fit, predict)  {sk:6.2f} s")
    print(f"mloop train, importance+plots off            {ml:6.2f} s  ({ml / sk:.2f}x)")
    print(f"mloop train, default evaluation              {mf:6.2f} s  ({mf / sk:.2f}x)")
    results.update(
        {
            "sklearn_seconds": round(sk, 3),
            "mloop_train_seconds": round(ml, 3),
            "mloop_train_full_evaluation_seconds": round(mf, 3),
            "ratio": round(ml / sk, 3),
            "ratio_full_evaluation": round(mf / sk, 3),
            "goal_ratio": 1.5,
        }
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()

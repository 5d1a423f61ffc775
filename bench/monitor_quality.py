"""Monitoring quality (issue 16): false alarms, detection delay and estimated quality, mloop vs Evidently and NannyML.

Every tool judges the same windows, each window on its own against the same reference, and says whether the
window as a whole drifted (a dataset-level alarm):

* ``mloop`` — ``build_profile`` on the reference (the columns' kinds from ``infer_contract``), then
  ``drift_report(profile, window, thresholds_from_config(MonitorConfig()), min_drifted_features=...)``
  ``.dataset_drift`` with every ``monitor`` setting at its default, so this measures whatever mloop's default
  decision is when it runs. Where ``MonitorConfig`` has a ``decision`` field, ``decision="per_feature"`` is a
  second row; for Ames, the demo's own ``monitor`` settings (``house_prices.yaml``) are a third where they
  differ from the defaults.
* ``evidently`` — ``Report([DataDriftPreset()])``: its default per-column tests and dataset rule (drift when
  at least half the columns drift).
* ``nannyml-univariate`` — ``UnivariateDriftCalculator`` with its default methods and thresholds, calibrated on
  the reference cut into chunks of the window size; alarm when any column alerts.
* ``nannyml-multivariate`` — ``DataReconstructionDriftCalculator`` (PCA reconstruction error), its defaults.

The peers run in virtual environments of their own under ``bench/.venvs/<tool>`` (their pins clash with mloop's:
Evidently 0.7 does not import with pandas 3), made from ``bench/peers/requirements-<tool>.txt`` on first use,
through ``bench/peers/run_peer.py``, which reads the windows this script writes to Parquet and answers in JSON.

The windows, per setup (dataset, reference, window size):

* no drift — ``bootstrap`` windows resampled with replacement from the reference itself (fixed seeds): the
  false-alarm rate is the share of them with a dataset-level alarm.
* shifts — for each shift of stated size, streams of windows resampled from the reference with the shift
  applied from the first window on (every tool judges each window on its own, so the windows before a shift
  starts are no-drift windows like the bootstrap ones): the detection delay is the number of windows from the
  shift's start to the first alarm (0: the first shifted window alarms), a stream without any alarm is a miss.
* ``demo`` (Ames, window 200) — the sales of 2008–2010 in the order and windows ``mloop demo`` replays them,
  against the rows the demo's first model trains on: how many windows alarm with each tool (no ground truth).
* ``digits-model-150`` — scikit-learn's digits (1,797 8x8 images, 64 pixel columns, 10 classes) split at random
  (seed): 60% are the project's data, on which mloop trains as ``mloop train`` does (``trainer.fit`` with
  :data:`DIGITS_CONFIG`: a random 70/30 split into training rows and holdout), 40% (719 images) are the live pool.
  The reference is the model's training rows; every window has 150 rows drawn with replacement from the pool, so
  each is real, labelled images: no-drift windows uniformly (``boot-i``), shifted windows with weights
  ``exp(a * z)``, ``z`` the standardised value of the most varying pixel (a = 0.5, 1, 2) or of the sum of all
  pixels ("ink", a = 1 and -2): a covariate shift by selecting on a feature, as a new population of writers would
  bring, whose labels are still the images' own.

Estimated vs realised quality, per labelled window (the Ames demo's 8 replay windows with the demo's first model; all
of ``digits-model-150``'s windows): mloop's estimate is the model's ``QualityEstimator`` fitted as training fits it
(``fit_quality_estimator`` on the holdout, with training's holdout predictions), the realised metric comes from the
window's labels (``task_metrics``). The ``mloop + out-of-fold`` row is the same estimator with the training rows'
5-fold out-of-fold errors joined to the holdout's (``out_of_fold_predictions``; training does not fit it so yet).
NannyML's ``DLE`` (regression) and ``CBPE`` (classification) are fitted on the same holdout (NannyML's reference)
with the same predictions and estimate the same windows, each window one chunk, in NannyML's venv. Evidently has
no performance estimation without labels ("—, no estimator"). The figure is the mean over the windows of
``|estimated - realised| / realised``, per tool and metric (Ames: RMSE and MAE; digits: accuracy and macro F1).

The goals (the JSON's ``goals``): per setup, ``mloop`` (the default decision) with a lower false-alarm rate than
every peer row and a mean delay (over the shifts, a miss counted as the stream's length) no worse; and mloop's
estimated primary metric (the config's gate metric: RMSE, accuracy) within 10% of the realised one on average.

    .venv/bin/python bench/monitor_quality.py --quick    # 20 no-drift windows, 2 streams of 3 a shift: minutes
    .venv/bin/python bench/monitor_quality.py            # 100 no-drift windows, 5 streams of 6 a shift
    .venv/bin/python bench/monitor_quality.py --no-peers # mloop alone

The figures go to ``docs/img/monitor_quality.json`` and a plot beside it (with ``--quick``, to
``dist/bench/monitor_quality-quick.*``; ``--out`` moves both); the last line printed is the same JSON object.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "bench" / "peers"
VENVS = ROOT / "bench" / ".venvs"
PEER_TOOLS = ("evidently", "nannyml")
PEER_ROWS = {"evidently": ("evidently",), "nannyml": ("nannyml-univariate", "nannyml-multivariate")}
WINDOW = "__window__"
Y_PRED = "__y_pred__"  # the quality peer's columns (bench/peers/run_peer.py)
Y_TRUE = "__y_true__"
PROBA = "__proba_{}__"
NO_ESTIMATOR = "—, no estimator"  # Evidently estimates no quality without labels
MLOOP_OOF = "mloop + out-of-fold"  # the estimator with the training rows' out-of-fold errors: not what training fits
GOAL_GAP = 0.10  # issue 16: estimated quality within 10% of realised
console = Console() if sys.stdout.isatty() else Console(width=150)  # a log keeps the tables whole


# --- windows ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shift:
    """A change applied to every row of a shifted window: numeric columns moved by ``k`` reference standard
    deviations, or a share ``p`` of the rows moved to one category of a categorical column. With ``tilt``,
    nothing is changed: the window's rows are drawn from the setup's pool with weights ``exp(tilt * z)``, ``z``
    the sum of ``columns`` standardised by the reference (a covariate shift of real, labelled rows)."""

    name: str
    columns: tuple[str, ...]
    k: float = 0.0
    category: str | None = None
    p: float = 0.0
    tilt: float | None = None

    def weights(self, pool: pd.DataFrame, reference: pd.DataFrame) -> np.ndarray:
        """Each pool row's chance of being drawn into a tilted window."""
        columns = list(self.columns)
        total, centre = pool[columns].sum(axis=1), reference[columns].sum(axis=1)
        z = ((total - centre.mean()) / centre.std()).to_numpy(dtype=float)
        w = np.exp(float(self.tilt or 0.0) * z)
        return np.asarray(w / w.sum(), dtype=float)

    def apply(self, window: pd.DataFrame, reference: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        out = window.copy()
        for column in self.columns:
            if self.category is None:
                out[column] = out[column].astype("float64") + self.k * float(reference[column].std())
            else:
                moved = rng.random(len(out)) < self.p
                out.loc[moved, column] = self.category
        return out


@dataclass
class Setup:
    """One dataset, its reference, a window size, and the windows every tool judges."""

    name: str
    description: str
    reference: pd.DataFrame
    numeric: list[str]
    categorical: list[str]
    window_size: int
    shifts: list[Shift]
    demo_windows: list[pd.DataFrame] = field(default_factory=list)
    demo_labels: list[str] = field(default_factory=list)
    demo_monitor: dict[str, Any] | None = None  # the demo's `monitor` settings (Ames)
    windows: dict[str, pd.DataFrame] = field(default_factory=dict)  # window id -> rows
    pool: pd.DataFrame | None = None  # rows the windows are drawn from (with their labels); None: the reference
    kit: ModelKit | None = None  # the model whose quality is estimated, where the setup has labelled windows
    labelled: dict[str, pd.DataFrame] = field(default_factory=dict)  # window id -> its rows with the target

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]


@dataclass
class ModelKit:
    """A model trained the way ``mloop train`` trains (``mloop.train.trainer.fit`` on the project's config) and
    its quality estimator fitted as training fits it (``fit_quality_estimator`` on the holdout, with training's
    holdout predictions)."""

    task: str
    target: str
    primary: str  # the config's gate metric: the estimated-quality goal is judged on it
    metrics: tuple[str, ...]  # estimated by both mloop and NannyML
    contract: Any
    model: Any
    estimator: Any
    holdout_X: pd.DataFrame
    holdout_y: pd.Series
    holdout_predictions: Any
    train_index: pd.Index
    oof_estimator: Any  # the same, with out-of-fold errors on the training rows joined (training does not, yet)

    @property
    def numeric(self) -> list[str]:
        return list(self.contract.numeric_features)

    @property
    def categorical(self) -> list[str]:
        return list(self.contract.categorical_features)


def train_kit(frame: pd.DataFrame, contract: Any, config: Any, metrics: tuple[str, ...]) -> ModelKit:
    from mloop.registry.estimator import fit_quality_estimator, out_of_fold_predictions
    from mloop.train.trainer import fit

    model, parts = fit(frame, contract, config)
    estimator = fit_quality_estimator(
        model,
        parts["X_test"],
        parts["y_test"],
        task=config.task,
        numeric=contract.numeric_features,
        categorical=contract.categorical_features,
        seed=config.train.seed,
        predictions=parts["predictions"],
    )
    if estimator is None:
        raise SystemExit(f"{config.name}: the holdout is too small for a quality estimator")
    oof = out_of_fold_predictions(model, parts["X_train"], parts["y_train"], config.task, seed=config.train.seed)
    oof_estimator = fit_quality_estimator(
        model,
        parts["X_test"],
        parts["y_test"],
        task=config.task,
        numeric=contract.numeric_features,
        categorical=contract.categorical_features,
        seed=config.train.seed,
        predictions=parts["predictions"],
        out_of_fold=(parts["X_train"], parts["y_train"], oof),
    )
    return ModelKit(
        config.task,
        contract.target,
        config.primary_metric,
        metrics,
        contract,
        model,
        estimator,
        parts["X_test"],
        parts["y_test"],
        parts["predictions"],
        parts["X_train"].index,
        oof_estimator,
    )


def make_windows(setup: Setup, n_bootstrap: int, n_streams: int, stream_length: int, seed: int) -> None:
    """Fill ``setup.windows``: ids ``boot-i``, ``shift-<s>-<stream>-<j>`` and ``demo-i`` (and, where the setup has
    a model, ``setup.labelled``: the same windows with their labels, wherever the rows are real ones)."""
    columns = setup.columns
    pool = setup.reference if setup.pool is None else setup.pool.reset_index(drop=True)
    labels = setup.pool is not None and setup.kit is not None  # bootstrap and tilted windows of a labelled pool

    def keep(window_id: str, positions: np.ndarray) -> None:
        setup.windows[window_id] = pool[columns].iloc[positions].reset_index(drop=True)
        if labels:
            setup.labelled[window_id] = pool.iloc[positions].reset_index(drop=True)

    for i in range(n_bootstrap):
        keep(f"boot-{i}", np.random.default_rng(seed + i).integers(0, len(pool), setup.window_size))
    for s, shift in enumerate(setup.shifts):
        weights = shift.weights(pool, setup.reference) if shift.tilt is not None else None
        for stream in range(n_streams):
            for j in range(stream_length):
                window_seed = seed + 100_000 * (s + 1) + 1_000 * stream + j
                rng = np.random.default_rng(window_seed)
                if weights is not None:
                    keep(f"shift-{s}-{stream}-{j}", rng.choice(len(pool), setup.window_size, p=weights))
                    continue
                rows = pool[columns].iloc[rng.integers(0, len(pool), setup.window_size)].reset_index(drop=True)
                shifted = shift.apply(rows, setup.reference, np.random.default_rng(window_seed + 7))
                setup.windows[f"shift-{s}-{stream}-{j}"] = shifted
    for i, rows in enumerate(setup.demo_windows):
        setup.windows[f"demo-{i}"] = rows[columns].reset_index(drop=True)
        if setup.kit is not None:
            setup.labelled[f"demo-{i}"] = rows.reset_index(drop=True)


def _ames_kinds(data: pd.DataFrame) -> tuple[list[str], list[str]]:
    from mloop.data.contract import infer_contract

    # As the demo's project infers its contract: the target, the time column and the excluded Mo_Sold are no features.
    contract = infer_contract(data, "Sale_Price", time_column="Year_Sold", exclude=["Mo_Sold"])
    return contract.numeric_features, contract.categorical_features


def _demo_windows(traffic: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    """``mloop demo``'s windows: a short remainder joins the last window."""
    from mloop.demo.runner import _windows

    return _windows(traffic, size)


def ames_setups(large: int) -> list[Setup]:
    from importlib.resources import files

    import yaml

    from mloop.config import parse_config
    from mloop.data.contract import infer_contract
    from mloop.demo.runner import TRAIN_YEARS, ames
    from mloop.train.split import holdout_split

    data = ames()
    numeric, categorical = _ames_kinds(data)
    raw = data.copy()  # as the demo's project reads its CSV, before the bench's None-for-missing below
    for column in categorical:  # strings, missing as None, as the prediction log would hold them
        data[column] = data[column].astype(object).where(data[column].notna(), None)
    config = yaml.safe_load(files("mloop.examples").joinpath("house_prices.yaml").read_text(encoding="utf-8"))
    monitor = dict(config.get("monitor") or {})
    train = data[data["Year_Sold"].isin(TRAIN_YEARS)]
    # The demo's first model, trained as `mloop demo` trains it (its config, the contract inferred from its data).
    first = raw[raw["Year_Sold"].isin(TRAIN_YEARS)]
    contract = infer_contract(first, "Sale_Price", time_column="Year_Sold", exclude=["Mo_Sold"])
    kit = train_kit(first, contract, parse_config(config, "house_prices.yaml"), ("rmse", "mae"))
    # The demo's first model: trained (and profiled) on the older 80% of the 2006–2007 sales (temporal split).
    reference, _ = holdout_split(train, config["split"]["test_fraction"], "Year_Sold", config["train"]["seed"])
    traffic = data[~data["Year_Sold"].isin(TRAIN_YEARS)].sort_values(["Year_Sold", "Mo_Sold"], kind="stable")
    size = int(monitor.get("window_size", 200))
    demo = _demo_windows(traffic.reset_index(drop=True), size)
    labels = []
    for window in demo:
        sold = window["Year_Sold"].astype(str) + "-" + window["Mo_Sold"].astype(str).str.zfill(2)
        labels.append(f"{sold.iloc[0]} → {sold.iloc[-1]}")
    shifts = [
        Shift("Gr_Liv_Area +0.25 sd", ("Gr_Liv_Area",), k=0.25),
        Shift("Gr_Liv_Area +0.5 sd", ("Gr_Liv_Area",), k=0.5),
        Shift("Gr_Liv_Area +1 sd", ("Gr_Liv_Area",), k=1.0),
        Shift("10% of rows → Neighborhood North_Ames", ("Neighborhood",), category="North_Ames", p=0.10),
        Shift("25% of rows → Neighborhood North_Ames", ("Neighborhood",), category="North_Ames", p=0.25),
        Shift("25% of rows → Overall_Cond Poor", ("Overall_Cond",), category="Poor", p=0.25),
    ]
    return [
        Setup(
            "ames-200",
            f"Ames, reference = the demo's training rows ({len(reference):,} sales of 2006–2007), window {size}",
            reference.reset_index(drop=True),
            numeric,
            categorical,
            size,
            shifts,
            demo_windows=demo,
            demo_labels=labels,
            demo_monitor=monitor,
            kit=kit,
        ),
        Setup(
            f"ames-{large}",
            f"Ames, reference = all {len(data):,} sales (2006–2010), window {large}",
            data.reset_index(drop=True),
            numeric,
            categorical,
            large,
            shifts,
            demo_monitor=monitor,
        ),
    ]


def digits_setups(sizes: tuple[int, ...]) -> list[Setup]:
    from sklearn.datasets import load_digits

    bunch = load_digits(as_frame=True)
    frame = bunch.frame.drop(columns=["target"]).astype("float64")
    frame["digit"] = bunch.frame["target"].map(lambda d: f"d{d}")  # the class, as a categorical column
    numeric = [c for c in frame.columns if c != "digit"]
    spread = frame[numeric].std().sort_values(ascending=False)
    top = tuple(spread.index[:3])  # the three pixels that vary most
    shifts = [
        Shift(f"{top[0]} +0.1 sd", top[:1], k=0.1),
        Shift(f"{top[0]} +0.25 sd", top[:1], k=0.25),
        Shift(f"{', '.join(top)} +0.25 sd", top, k=0.25),
        Shift("10% of rows → digit d1", ("digit",), category="d1", p=0.10),
    ]
    return [
        Setup(
            f"digits-{size}",
            f"scikit-learn digits (classification), {len(frame):,} rows, 64 pixels + the class, window {size}",
            frame,
            numeric,
            ["digit"],
            size,
            shifts,
        )
        for size in sizes
    ]


#: The digits model's project: its config as `mloop init` would write it for this data, the gate metric accuracy
#: (the default, log loss, is not estimated) and a random split (digits have no time).
DIGITS_CONFIG: dict[str, Any] = {
    "name": "digits",
    "task": "classification",
    "data": {"source": "digits.csv", "target": "digit"},
    "split": {"strategy": "random", "test_fraction": 0.3},
    "train": {"estimator": "hist_gradient_boosting", "seed": 16},
    "gate": {"metric": "accuracy"},
}


def digits_model_setup(size: int, seed: int) -> Setup:
    """Digits with a model: 60% of the images are the project's data (mloop trains on 70% of them and holds out
    30%), the other 40% are the live pool every window is drawn from, with their labels."""
    from sklearn.datasets import load_digits

    from mloop.config import parse_config
    from mloop.data.contract import infer_contract

    bunch = load_digits(as_frame=True)
    frame = bunch.frame.drop(columns=["target"]).astype("float64")
    frame["digit"] = bunch.frame["target"].map(lambda d: f"d{d}")
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = int(0.6 * len(frame))
    project, pool = frame.iloc[order[:cut]], frame.iloc[order[cut:]].reset_index(drop=True)
    contract = infer_contract(project, "digit")
    config = parse_config({**DIGITS_CONFIG, "train": {**DIGITS_CONFIG["train"], "seed": seed}}, "digits")
    kit = train_kit(project, contract, config, ("accuracy", "f1"))
    reference = project.loc[kit.train_index]  # the training rows, as mloop profiles them
    numeric = [c for c in frame.columns if c != "digit"]
    top = str(reference[numeric].std().idxmax())
    shifts = [
        Shift(f"rows tilted to high {top} (exp(0.5 z))", (top,), tilt=0.5),
        Shift(f"rows tilted to high {top} (exp(1 z))", (top,), tilt=1.0),
        Shift(f"rows tilted to high {top} (exp(2 z))", (top,), tilt=2.0),
        Shift("rows tilted to more ink (exp(1 z), z of the pixel sum)", tuple(numeric), tilt=1.0),
        Shift("rows tilted to less ink (exp(-2 z))", tuple(numeric), tilt=-2.0),
    ]
    return Setup(
        f"digits-model-{size}",
        f"scikit-learn digits with mloop's model: reference = its {len(reference):,} training rows, windows of "
        f"{size} from {len(pool):,} unseen labelled images, 64 pixels",
        reference.reset_index(drop=True),
        contract.numeric_features,
        contract.categorical_features,
        size,
        shifts,
        pool=pool,
        kit=kit,
    )


# --- estimated quality ----------------------------------------------------------------------------------------


def quality_frames(kit: ModelKit, rows: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
    """A window's features as the model reads them (``coerce_frame``, as monitoring does) and its predictions."""
    from mloop.data.contract import coerce_frame
    from mloop.registry.scoring import predict

    X = coerce_frame(rows, kit.contract)[list(kit.contract.features)]
    return X, predict(kit.model, X, kit.task)


def realised_quality(kit: ModelKit, y: Any, predictions: Any) -> dict[str, float]:
    from mloop.core.metrics import task_metrics

    got = task_metrics(y, predictions, kit.task)
    return {m: float(got[m]) for m in kit.metrics if m in got}


def mloop_quality(setup: Setup) -> dict[str, dict[str, dict[str, float]]]:
    """Per labelled window: mloop's estimate (its estimator, without the labels) and the realised metrics."""
    kit = setup.kit
    assert kit is not None  # noqa: S101
    estimators = {"mloop": kit.estimator, MLOOP_OOF: kit.oof_estimator}
    out: dict[str, dict[str, dict[str, float]]] = {"realised": {}, **{name: {} for name in estimators}}
    for window_id, rows in setup.labelled.items():
        X, predictions = quality_frames(kit, rows)
        y = kit.contract.target_values(rows, kit.task)
        out["realised"][window_id] = realised_quality(kit, y, predictions)
        for name, estimator in estimators.items():
            estimated = estimator.estimate(X, predictions.values, predictions.proba)
            out[name][window_id] = {m: float(estimated[m]) for m in kit.metrics if m in estimated}
    return out


def write_quality(setup: Setup, folder: Path) -> None:
    """The peer's inputs: the holdout (NannyML's reference) and the labelled windows, with the model's answers."""
    kit = setup.kit
    assert kit is not None  # noqa: S101

    def answered(X: pd.DataFrame, predictions: Any) -> pd.DataFrame:
        out = X.copy()
        out[Y_PRED] = predictions.values
        if predictions.proba is not None:
            for k, label in enumerate(predictions.classes):
                out[PROBA.format(label)] = np.asarray(predictions.proba)[:, k]
        return out

    reference = answered(kit.holdout_X[list(kit.contract.features)], kit.holdout_predictions)
    reference[Y_TRUE] = np.asarray(kit.holdout_y)
    frames = []
    for window_id, rows in setup.labelled.items():
        X, predictions = quality_frames(kit, rows)
        frames.append(answered(X, predictions).assign(**{WINDOW: window_id}))
    for frame in (reference, *frames):
        for column in kit.categorical:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    reference.reset_index(drop=True).to_parquet(folder / "quality_reference.parquet")
    pd.concat(frames, ignore_index=True).to_parquet(folder / "quality_windows.parquet")
    manifest = {
        "task": kit.task,
        "numeric": kit.numeric,
        "categorical": kit.categorical,
        "classes": list(kit.holdout_predictions.classes or []),
        "metrics": list(kit.metrics),
        "window_size": setup.window_size,
    }
    (folder / "quality.json").write_text(json.dumps(manifest), encoding="utf-8")


def quality_summary(
    setup: Setup, per_window: dict[str, dict[str, dict[str, float]]], peer_skipped: str | None
) -> dict[str, Any] | None:
    """Mean absolute relative gap |estimated - realised| / realised per tool and metric, over the labelled windows."""
    kit = setup.kit
    if kit is None:
        return None
    realised = per_window["realised"]
    windows = list(realised)
    tools: dict[str, Any] = {}
    for tool, estimates in per_window.items():
        if tool == "realised":
            continue
        figures: dict[str, Any] = {}
        for metric in kit.metrics:
            gaps = [
                (estimates[w][metric] - realised[w][metric]) / realised[w][metric]
                for w in windows
                if metric in estimates.get(w, {}) and realised[w].get(metric)
            ]
            figures[metric] = {
                "mean_abs_gap": round(float(np.mean(np.abs(gaps))), 4) if gaps else None,
                "mean_signed_gap": round(float(np.mean(gaps)), 4) if gaps else None,
                "max_abs_gap": round(float(np.max(np.abs(gaps))), 4) if gaps else None,
                "windows": len(gaps),
            }
        tools[tool] = figures
    tools["evidently"] = NO_ESTIMATOR
    if peer_skipped:
        tools.setdefault("nannyml-dle" if kit.task == "regression" else "nannyml-cbpe", peer_skipped)
    kinds = sorted({w.split("-")[0] for w in windows})
    return {
        "task": kit.task,
        "primary": kit.primary,
        "metrics": list(kit.metrics),
        "windows": len(windows),
        "window_kinds": kinds,
        "holdout_rows": len(kit.holdout_X),
        "tools": tools,
        "per_window": {
            w: {"realised": realised[w], **{t: e.get(w) for t, e in per_window.items() if t != "realised"}}
            for w in windows
        },
    }


def _quality_cell(quality: dict[str, Any] | None, tool: str) -> str:
    """The drift table's estimated-quality cell of a tool row: the primary metric's mean gap."""
    if quality is None:
        return "– (no labelled windows)"
    if tool == "evidently":
        return "—, no estimator"
    source = (
        "mloop" if tool.startswith("mloop") else _quality_peer_name(quality) if tool.startswith("nannyml") else None
    )
    figures = quality["tools"].get(source) if source else None
    if not isinstance(figures, dict):
        return "–"
    gap = figures[quality["primary"]]["mean_abs_gap"]
    label = "" if source == "mloop" else f"{source.split('-')[1].upper()} "
    return "–" if gap is None else f"{label}{gap:.1%} ({quality['primary']})"


def _quality_peer_name(quality: dict[str, Any]) -> str:
    return "nannyml-dle" if quality["task"] == "regression" else "nannyml-cbpe"


# --- mloop --------------------------------------------------------------------------------------------------------


def mloop_deciders(setup: Setup) -> dict[str, Callable[[pd.DataFrame], tuple[bool, int]]]:
    """Row name -> a function of one window giving (dataset-level alarm, drifted features)."""
    from mloop.config import MonitorConfig
    from mloop.data.profile import build_profile
    from mloop.monitor.drift import drift_report, thresholds_from_config

    profile = build_profile(setup.reference, setup.numeric, setup.categorical)
    takes_min = "min_drifted_features" in inspect.signature(drift_report).parameters
    fields = MonitorConfig.model_fields

    def decider(config: Any) -> Callable[[pd.DataFrame], tuple[bool, int]]:
        thresholds = thresholds_from_config(config)
        extra = {"min_drifted_features": config.min_drifted_features} if takes_min else {}

        def decide(window: pd.DataFrame) -> tuple[bool, int]:
            report = drift_report(profile, window, thresholds, **extra)
            return bool(report.dataset_drift), int(report.n_drifted)

        return decide

    rows = {"mloop": decider(MonitorConfig())}
    if "decision" in fields:
        rows["mloop per_feature"] = decider(MonitorConfig(decision="per_feature"))
    if setup.demo_monitor is not None:
        known = {k: v for k, v in setup.demo_monitor.items() if k in fields}
        if MonitorConfig(**known) != MonitorConfig():  # a row of its own only where the demo's settings differ
            rows["mloop demo settings"] = decider(MonitorConfig(**known))
    return rows


def mloop_default_decision() -> str:
    from mloop.config import MonitorConfig

    config = MonitorConfig()
    described = {
        name: getattr(config, name)
        for name in ("decision", "false_alarm_rate", "effect_floor", "min_drifted_features", "psi_threshold")
        if name in MonitorConfig.model_fields
    }
    return ", ".join(f"{k}={v}" for k, v in described.items())


# --- peers --------------------------------------------------------------------------------------------------------


def peer_python(tool: str, install: bool) -> Path | None:
    """The peer's interpreter, its venv made from its pinned requirements on first use (``install``)."""
    python = VENVS / tool / "bin" / "python"
    requirements = PEERS / f"requirements-{tool}.txt"
    stamp = VENVS / tool / ".requirements"
    wanted = requirements.read_text(encoding="utf-8")
    if python.is_file() and stamp.is_file() and stamp.read_text(encoding="utf-8") == wanted:
        return python
    if not install:
        return None
    console.print(f"installing {tool} into {python.parent.parent.relative_to(ROOT)} (pins: {requirements.name})…")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENVS / tool)], check=True)  # noqa: S603
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(requirements)]
    subprocess.run(pip, check=True)  # noqa: S603
    stamp.write_text(wanted, encoding="utf-8")
    return python


def write_setup(setup: Setup, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"numeric": setup.numeric, "categorical": setup.categorical, "window_size": setup.window_size}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    setup.reference[setup.columns].to_parquet(folder / "reference.parquet")
    frames = [rows.assign(**{WINDOW: window_id}) for window_id, rows in setup.windows.items()]
    pd.concat(frames, ignore_index=True).to_parquet(folder / "windows.parquet")
    if setup.kit is not None and setup.labelled:
        write_quality(setup, folder)


def run_peer(tool: str, python: Path, folder: Path, progress: Progress, task: TaskID, errors: dict[str, str]) -> None:
    argv = [str(python), str(PEERS / "run_peer.py"), tool, str(folder)]
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "NML_DISABLE_USAGE_LOGGING": "1"}
    log = folder / f"{tool}.stderr"
    # stderr to a file: a peer's warnings would fill a pipe nobody reads while stdout is being read.
    with (
        log.open("w") as stderr,
        subprocess.Popen(  # noqa: S603
            argv, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
        ) as process,
    ):
        assert process.stdout is not None  # noqa: S101
        for line in process.stdout:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "progress":
                progress.update(task, completed=int(parts[1]), total=int(parts[2]))
    if process.returncode != 0:
        errors[f"{tool}:{folder.name}"] = log.read_text(encoding="utf-8", errors="replace")[-3000:]


# --- figures ------------------------------------------------------------------------------------------------------


def summarise(
    setup: Setup,
    decisions: dict[str, dict[str, dict[str, Any]]],
    stream_length: int,
    quality: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """False alarms, detection delays and demo alarms per tool row, and (``quality``) the estimated-quality gap."""
    boot = [w for w in setup.windows if w.startswith("boot-")]
    tools: dict[str, Any] = {}
    for tool, per_window in decisions.items():
        alarms = [bool(per_window[w]["alarm"]) for w in boot]
        delays: list[dict[str, Any]] = []
        for s, shift in enumerate(setup.shifts):
            streams = sorted({w.rsplit("-", 1)[0] for w in setup.windows if w.startswith(f"shift-{s}-")})
            found: list[int | None] = []
            for stream in streams:
                first = next(
                    (j for j in range(stream_length) if per_window[f"{stream}-{j}"]["alarm"]),
                    None,
                )
                found.append(first)
            detected = [d for d in found if d is not None]
            delays.append(
                {
                    "shift": shift.name,
                    "streams": len(found),
                    "detected": len(detected),
                    "mean_delay": round(float(np.mean(detected)), 2) if detected else None,
                    # A miss counts as the stream's length, so one number ranks the tools.
                    "mean_delay_miss_as_length": round(
                        float(np.mean([stream_length if d is None else d for d in found])), 2
                    ),
                    "delays": found,
                }
            )
        demo = [w for w in setup.windows if w.startswith("demo-")]
        tools[tool] = {
            "false_alarms": int(sum(alarms)),
            "false_alarm_rate": round(sum(alarms) / len(alarms), 4) if alarms else None,
            "mean_drifted_features_no_drift": round(float(np.mean([per_window[w]["n_drifted"] for w in boot])), 2)
            if boot
            else None,
            "detection": delays,
            "demo_alarms": int(sum(bool(per_window[w]["alarm"]) for w in demo)) if demo else None,
            "demo_windows": len(demo) or None,
            "demo_alarm_by_window": [bool(per_window[w]["alarm"]) for w in demo] if demo else None,
            "estimated_quality_gap": _quality_cell(quality, tool),
        }
    return {
        "setup": setup.name,
        "description": setup.description,
        "window_size": setup.window_size,
        "reference_rows": len(setup.reference),
        "columns": {"numeric": len(setup.numeric), "categorical": len(setup.categorical)},
        "bootstrap_windows": len(boot),
        "stream_length": stream_length,
        "nannyml_reference_chunks": max(len(setup.reference) // setup.window_size, 1),
        "demo_labels": setup.demo_labels or None,
        "tools": tools,
        "quality": quality,
    }


def print_table(summary: dict[str, Any]) -> None:
    shifts = [d["shift"] for d in next(iter(summary["tools"].values()))["detection"]]
    has_demo = summary["demo_labels"] is not None
    table = Table(title=f"{summary['setup']}: {summary['description']}", title_justify="left")
    table.add_column("tool", no_wrap=True)
    table.add_column(f"false alarms\n({summary['bootstrap_windows']} windows)", justify="right")
    for i in range(len(shifts)):
        table.add_column(f"delay\nS{i + 1}", justify="right")
    if has_demo:
        table.add_column("demo replay\nalarms", justify="right")
    table.add_column("estimated\nquality gap", justify="right")
    for tool, figures in summary["tools"].items():
        cells = [tool, f"{figures['false_alarm_rate']:.1%} ({figures['false_alarms']})"]
        for delay in figures["detection"]:
            missed = delay["streams"] - delay["detected"]
            mean = "–" if delay["mean_delay"] is None else f"{delay['mean_delay']:.2f}"
            cells.append(mean + (f" ({missed}/{delay['streams']} missed)" if missed else ""))
        if has_demo:
            cells.append(f"{figures['demo_alarms']} of {figures['demo_windows']}")
        cells.append(figures["estimated_quality_gap"])
        table.add_row(*cells)
    console.print(table)
    console.print("  " + "; ".join(f"S{i + 1}: {name}" for i, name in enumerate(shifts)))
    console.print(
        f"  delay: windows from the shift's start to the first alarm (0 = the first shifted window), mean over the "
        f"streams that alarmed, {summary['stream_length']} windows a stream; NannyML calibrated on "
        f"{summary['nannyml_reference_chunks']} reference chunks; estimated quality gap: mean |estimated - "
        f"realised| / realised over the labelled windows (table below)."
    )
    quality = summary["quality"]
    if quality is None:
        return
    table = Table(
        title=f"{summary['setup']}: estimated vs realised quality, {quality['windows']} labelled windows "
        f"({', '.join(quality['window_kinds'])}), fitted on the model's {quality['holdout_rows']}-row holdout",
        title_justify="left",
    )
    table.add_column("tool", no_wrap=True)
    for metric in quality["metrics"]:
        star = " (goal)" if metric == quality["primary"] else ""
        table.add_column(f"{metric}{star}\nmean |gap|", justify="right")
        table.add_column(f"{metric}\nmean gap", justify="right")
        table.add_column(f"{metric}\nmax |gap|", justify="right")
    for tool, figures in quality["tools"].items():
        if not isinstance(figures, dict):
            table.add_row(tool, figures, *[""] * (3 * len(quality["metrics"]) - 1))
            continue
        cells = [tool]
        for metric in quality["metrics"]:
            f = figures[metric]
            cells += ["–" if f[k] is None else f"{f[k]:+.1%}" if k == "mean_signed_gap" else f"{f[k]:.1%}"
                      for k in ("mean_abs_gap", "mean_signed_gap", "max_abs_gap")]  # fmt: skip
        table.add_row(*cells)
    console.print(table)


def goals(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Issue 16's goals per setup: ``mloop`` (the default decision) with fewer false alarms than every peer row at
    equal or better delay (the mean over the shifts, a miss counted as the stream's length), and mloop's estimated
    primary metric within 10% of the realised one on average over the labelled windows."""
    out: dict[str, Any] = {}
    for summary in summaries:
        tools = summary["tools"]
        mine = tools.get("mloop")
        if mine is None:
            continue

        def delay(figures: dict[str, Any]) -> float:
            return float(np.mean([d["mean_delay_miss_as_length"] for d in figures["detection"]]))

        peers = {}
        for tool in (t for rows in PEER_ROWS.values() for t in rows):
            if tool in tools:
                rate, theirs = mine["false_alarm_rate"], tools[tool]["false_alarm_rate"]
                fewer, no_more = rate < theirs, rate <= theirs
                not_worse, sooner = delay(mine) <= delay(tools[tool]), delay(mine) < delay(tools[tool])
                peers[tool] = {
                    "false_alarm_rate": theirs,
                    "mean_delay": round(delay(tools[tool]), 2),
                    "fewer_false_alarms": fewer,
                    "delay_not_worse": not_worse,
                    "met": fewer and not_worse,  # the goal as the issue words it
                    # No worse on either figure and better on one: where a peer never alarms (0%), "fewer" cannot be.
                    "dominates": no_more and not_worse and (fewer or sooner),
                }
        drift = {
            "mloop_false_alarm_rate": mine["false_alarm_rate"],
            "mloop_mean_delay": round(delay(mine), 2),
            "vs": peers,
            "met": bool(peers) and all(p["met"] for p in peers.values()),
            "dominates_every_peer_row": bool(peers) and all(p["dominates"] for p in peers.values()),
        }
        entry: dict[str, Any] = {"drift": drift}
        quality = summary["quality"]
        if quality is not None:
            primary = quality["primary"]
            gap = quality["tools"]["mloop"][primary]["mean_abs_gap"]
            peer = quality["tools"].get(_quality_peer_name(quality))
            oof = quality["tools"].get(MLOOP_OOF)
            entry["estimated_quality"] = {
                "metric": primary,
                "mloop_mean_abs_gap": gap,
                "mloop_out_of_fold_mean_abs_gap": oof[primary]["mean_abs_gap"] if isinstance(oof, dict) else None,
                "peer_mean_abs_gap": peer[primary]["mean_abs_gap"] if isinstance(peer, dict) else None,
                "goal": f"<= {GOAL_GAP:.0%}",
                "met": gap is not None and gap <= GOAL_GAP,
            }
        out[summary["setup"]] = entry
    return out


def print_goals(judged: dict[str, Any]) -> None:
    table = Table(title="issue 16's goals", title_justify="left")
    table.add_column("setup", no_wrap=True)
    table.add_column("fewer false alarms than every peer row, delay not worse (mloop: rate, mean delay)")
    table.add_column(f"estimated quality within {GOAL_GAP:.0%}")
    for setup, entry in judged.items():
        drift = entry["drift"]
        reasons = []
        for tool, peer in drift["vs"].items():
            if not peer["met"]:
                why = [] if peer["fewer_false_alarms"] else [f"false alarms {peer['false_alarm_rate']:.0%}"]
                why += [] if peer["delay_not_worse"] else [f"delay {peer['mean_delay']:.2f}"]
                reasons.append(f"{tool} ({', '.join(why)}{'; dominated' if peer['dominates'] else ''})")
        mine = f"{drift['mloop_false_alarm_rate']:.0%}, {drift['mloop_mean_delay']:.2f}: "
        cell = mine + ("met" if drift["met"] else "no peers" if not drift["vs"] else "not vs " + "; ".join(reasons))
        q = entry.get("estimated_quality")
        qcell = "–" if q is None else f"{'met' if q['met'] else 'not met'}: {q['mloop_mean_abs_gap']:.1%} {q['metric']}"
        table.add_row(setup, cell, qcell)
    console.print(table)


def plot(summaries: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tools = list(dict.fromkeys(t for s in summaries for t in s["tools"]))
    colours = dict(zip(tools, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    figure, axes = plt.subplots(3, len(summaries), figsize=(4.2 * len(summaries), 10.5), constrained_layout=True)
    axes = np.asarray(axes).reshape(3, len(summaries))
    for column, summary in enumerate(summaries):
        rates = [summary["tools"].get(t, {}).get("false_alarm_rate") or 0.0 for t in tools]
        top = axes[0, column]
        top.bar(range(len(tools)), rates, color=[colours[t] for t in tools])
        top.set_xticks(range(len(tools)), tools, rotation=35, ha="right", fontsize=7)
        top.set_ylim(0, 1)
        top.set_title(f"{summary['setup']}: false-alarm rate\n({summary['bootstrap_windows']} no-drift windows)",
                      fontsize=9)  # fmt: skip
        bottom = axes[1, column]
        shifts = [d["shift"] for d in next(iter(summary["tools"].values()))["detection"]]
        width = 0.8 / len(tools)
        for i, tool in enumerate(tools):
            figures = summary["tools"].get(tool)
            if figures is None:
                continue
            values = [d["mean_delay_miss_as_length"] for d in figures["detection"]]
            bottom.bar(np.arange(len(shifts)) + i * width, values, width, color=colours[tool], label=tool)
        bottom.set_xticks(np.arange(len(shifts)) + 0.4 - width / 2, shifts, rotation=35, ha="right", fontsize=6)
        bottom.set_ylim(0, summary["stream_length"] + 0.2)
        bottom.set_title("detection delay, windows (a miss = stream length)", fontsize=9)
        _plot_quality(axes[2, column], summary["quality"], colours)
    handles, labels = axes[1, 0].get_legend_handles_labels()
    for axis in axes[2]:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    figure.legend(handles, labels, loc="outside lower center", ncol=len(tools), fontsize=8)
    figure.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _plot_quality(axis: Any, quality: dict[str, Any] | None, colours: dict[str, str]) -> None:
    """Estimated against realised primary metric, one point per labelled window and estimator."""
    if quality is None:
        axis.set_axis_off()
        axis.text(0.5, 0.5, "no labelled windows", ha="center", va="center", fontsize=8)
        return
    metric = quality["primary"]
    realised = [v["realised"][metric] for v in quality["per_window"].values()]
    markers = {"mloop": "o", MLOOP_OOF: "^", "nannyml-dle": "s", "nannyml-cbpe": "s"}
    nannyml = colours.get("nannyml-univariate", "C3")
    colour = {"mloop": colours.get("mloop", "C0"), MLOOP_OOF: "black", "nannyml-dle": nannyml, "nannyml-cbpe": nannyml}
    for tool in (t for t in quality["tools"] if t in markers):
        estimated = [(v.get(tool) or {}).get(metric) for v in quality["per_window"].values()]
        pairs = [(r, e) for r, e in zip(realised, estimated, strict=True) if e is not None]
        if pairs:
            axis.scatter(
                *zip(*pairs, strict=True),
                s=14,
                marker=markers[tool],
                color=colour[tool],
                alpha=0.7,
                label=f"{tool} estimate",
            )
    low, high = min(realised), max(realised)
    pad = (high - low) * 0.2 or abs(high) * 0.05
    line = np.array([low - pad, high + pad])
    axis.plot(line, line, color="grey", linewidth=0.8)
    axis.fill_between(line, line * (1 - GOAL_GAP), line * (1 + GOAL_GAP), color="grey", alpha=0.15)
    axis.set_xlabel(f"realised {metric}", fontsize=8)
    axis.set_ylabel(f"estimated {metric}", fontsize=8)
    axis.tick_params(labelsize=7)
    gap = quality["tools"]["mloop"][metric]["mean_abs_gap"]
    axis.set_title(f"estimated vs realised {metric} (band ±10%)\nmloop mean |gap| {gap:.1%}", fontsize=9)


# --- main ---------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer windows (~6 minutes; a full run took 15)")
    parser.add_argument("--bootstrap", type=int, help="no-drift windows per setup (quick 20, full 100)")
    parser.add_argument("--streams", type=int, help="streams per shift (quick 2, full 5)")
    parser.add_argument("--stream-length", type=int, help="windows per stream (quick 3, full 6)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument(
        "--setups", nargs="*", help="only these setups (ames-200 ames-1000 digits-200 digits-500 digits-model-150)"
    )
    parser.add_argument("--no-peers", action="store_true", help="mloop alone")
    parser.add_argument("--no-install", action="store_true", help="skip a peer whose venv is missing")
    parser.add_argument(
        "--out", type=Path, help="folder for the JSON and the plot (default docs/img; with --quick, dist/bench)"
    )
    args = parser.parse_args()
    n_bootstrap = args.bootstrap or (20 if args.quick else 100)
    n_streams = args.streams or (2 if args.quick else 5)
    stream_length = args.stream_length or (3 if args.quick else 6)
    started = time.perf_counter()

    setups = [*ames_setups(1000), *digits_setups((200, 500)), digits_model_setup(150, args.seed)]
    if args.setups:
        setups = [s for s in setups if s.name in args.setups]
    for setup in setups:
        make_windows(setup, n_bootstrap, n_streams, stream_length, args.seed)
    console.print(f"mloop default decision: {mloop_default_decision()}")

    pythons: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    if not args.no_peers:
        for tool in PEER_TOOLS:
            python = peer_python(tool, install=not args.no_install)
            if python is None:
                skipped[tool] = f"no venv at bench/.venvs/{tool} (run without --no-install to make it)"
            else:
                pythons[tool] = python
    versions = {tool: _peer_version(tool, python) for tool, python in pythons.items()}

    decisions: dict[str, dict[str, dict[str, dict[str, Any]]]] = {s.name: {} for s in setups}
    estimates: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    errors: dict[str, str] = {}
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )
    with tempfile.TemporaryDirectory(prefix="mloop-bench-monitor-") as tmp, progress:
        threads: list[threading.Thread] = []
        folders = {}
        for setup in setups:
            folders[setup.name] = Path(tmp) / setup.name
            write_setup(setup, folders[setup.name])

        def peers() -> None:
            # One peer at a time per setup, the two peers side by side: mloop's loop shares the machine with them.
            def one(tool: str) -> None:
                for setup in setups:
                    task = progress.add_task(f"{tool} {setup.name}", total=len(setup.windows))
                    run_peer(tool, pythons[tool], folders[setup.name], progress, task, errors)

            inner = [threading.Thread(target=one, args=(tool,)) for tool in pythons]
            for thread in inner:
                thread.start()
            for thread in inner:
                thread.join()

        threads.append(threading.Thread(target=peers))
        for thread in threads:
            thread.start()
        for setup in setups:
            deciders = mloop_deciders(setup)
            task = progress.add_task(f"mloop {setup.name}", total=len(setup.windows))
            for name in deciders:
                decisions[setup.name][name] = {}
            for window_id, rows in setup.windows.items():
                for name, decide in deciders.items():
                    alarm, drifted = decide(rows)
                    decisions[setup.name][name][window_id] = {"alarm": alarm, "n_drifted": drifted}
                progress.advance(task)
            if setup.kit is not None and setup.labelled:
                estimates[setup.name] = mloop_quality(setup)
        for thread in threads:
            thread.join()
        for setup in setups:
            for tool in pythons:
                answer = folders[setup.name] / f"{tool}.json"
                if answer.is_file():
                    decisions[setup.name].update(json.loads(answer.read_text(encoding="utf-8")))
            answer = folders[setup.name] / "nannyml-quality.json"
            if setup.name in estimates and answer.is_file():
                estimates[setup.name].update(json.loads(answer.read_text(encoding="utf-8")))
    for key, stderr in errors.items():
        console.print(f"[red]{key} failed:[/]\n{stderr}")

    quality_skipped = skipped.get("nannyml") or (
        "failed (peer_errors)" if any(k.startswith("nannyml:") for k in errors) else None
    )
    summaries = [
        summarise(
            setup,
            decisions[setup.name],
            stream_length,
            quality_summary(setup, estimates[setup.name], quality_skipped) if setup.name in estimates else None,
        )
        for setup in setups
    ]
    for summary in summaries:
        print_table(summary)
    _print_demo(summaries)
    judged = goals(summaries)
    print_goals(judged)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    result = {
        "benchmark": "monitor_quality",
        "part": "drift (false alarms, detection delay, demo replay) and estimated vs realised quality",
        "measured": when,
        "mode": "quick" if args.quick else "full",
        "seconds": round(time.perf_counter() - started, 1),
        "seed": args.seed,
        "mloop_default_decision": mloop_default_decision(),
        "peer_versions": versions,
        "peers_skipped": skipped,
        "peer_errors": sorted(errors),
        "goals": judged,
        "setups": summaries,
    }
    out = args.out or (ROOT / "dist" / "bench" if args.quick else ROOT / "docs" / "img")
    out.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if args.quick else ""
    (out / f"monitor_quality{suffix}.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    plot(summaries, out / f"monitor_quality{suffix}.png", f"bench/monitor_quality.py ({result['mode']}), {when}")
    console.print(f"figures: {out / f'monitor_quality{suffix}.json'} and .png beside it")
    print(json.dumps(result))  # noqa: T201 - the benchmark's JSON line, last, as every bench/*.py prints


def _print_demo(summaries: list[dict[str, Any]]) -> None:
    for summary in summaries:
        labels = summary["demo_labels"]
        if not labels:
            continue
        table = Table(title=f"{summary['setup']}: the demo replay, window by window (x = alarm)", title_justify="left")
        table.add_column("tool", no_wrap=True)
        for i, label in enumerate(labels, start=1):
            table.add_column(f"{i}\n{label}", justify="center")
        for tool, figures in summary["tools"].items():
            table.add_row(tool, *("x" if a else "·" for a in figures["demo_alarm_by_window"]))
        console.print(table)


def _peer_version(tool: str, python: Path) -> str:
    code = f"import importlib.metadata as m; print(m.version({tool!r}))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)  # noqa: S603
    return done.stdout.strip() or "?"


if __name__ == "__main__":
    main()

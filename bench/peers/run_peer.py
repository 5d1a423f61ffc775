"""A peer's drift decisions on the windows ``bench/monitor_quality.py`` wrote; run in the peer's own venv.

    bench/.venvs/evidently/bin/python bench/peers/run_peer.py evidently DIR
    bench/.venvs/nannyml/bin/python bench/peers/run_peer.py nannyml DIR

``DIR`` holds ``manifest.json`` (numeric and categorical columns, window size), ``reference.parquet`` and
``windows.parquet`` (every window, one after another, with its id in the ``__window__`` column). The
decisions go to ``DIR/<tool>.json``: per row name (``evidently``; ``nannyml-univariate`` and
``nannyml-multivariate``) a mapping of window id to ``{"alarm": bool, "n_drifted": int}``. Each window is
judged on its own against the reference, with each tool's defaults:

* Evidently ``DataDriftPreset()``: its per-column tests chosen by column type and size, and its
  dataset-level rule, drift when at least ``drift_share`` (0.5) of the columns drift (computed by the
  preset's own ``DriftedColumnsCount`` metric alone, see :func:`run_evidently`).
* NannyML ``UnivariateDriftCalculator`` with its default methods (Jensen-Shannon for both kinds) and
  thresholds (mean + 3 standard deviations of the reference chunks' values); the window alarms when any
  column alerts. ``DataReconstructionDriftCalculator`` (PCA reconstruction error, its default 0.65 of the
  variance and threshold): the window alarms when its chunk alerts. NannyML calibrates on chunks of the
  reference, here the reference cut into consecutive chunks of the window size.

Where ``DIR`` also holds ``quality.json`` (the task, the model's features, its classes and the metrics to
estimate), ``quality_reference.parquet`` (the model's labelled holdout: its features, ``__y_pred__``,
``__y_true__`` and, for a classifier, a ``__proba_<class>__`` column per class) and ``quality_windows.parquet``
(the labelled windows the same way, without ``__y_true__``, with ``__window__``), the NannyML peer also
estimates each window's quality without its labels and writes ``DIR/nannyml-quality.json``: per row name
(``nannyml-dle`` for regression, ``nannyml-cbpe`` for classification) a mapping of window id to
``{metric: estimate}``. ``DLE`` (direct loss estimation: LightGBM on the reference's errors, its default
hyper-parameters, no tuning) and ``CBPE`` (confidence-based: its default isotonic calibration on the
reference) are fitted on that holdout, NannyML's "reference", and estimate every window as one chunk.

Progress goes to stdout as ``progress DONE TOTAL`` lines; nothing else is printed there.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

WINDOW = "__window__"
Y_PRED = "__y_pred__"
Y_TRUE = "__y_true__"
PROBA = "__proba_{}__"


def _progress(done: int, total: int) -> None:
    print(f"progress {done} {total}", flush=True)  # noqa: T201 - read by the parent for its progress bar


def _load(folder: Path) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    reference = pd.read_parquet(folder / "reference.parquet")
    windows = pd.read_parquet(folder / "windows.parquet")
    return manifest, reference, windows


def _drifted_columns(report: Any) -> tuple[float, float]:
    for metric in report.dict()["metrics"]:
        if metric.get("config", {}).get("type", "").endswith("DriftedColumnsCount"):
            return float(metric["value"]["count"]), float(metric["value"]["share"])
    raise SystemExit("Evidently's report has no DriftedColumnsCount metric")


def run_evidently(folder: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """``DataDriftPreset``'s dataset-level decision, window by window.

    The preset's dataset decision is its ``DriftedColumnsCount`` metric (the share of drifted columns against
    ``drift_share``); the rest of the preset is one ``ValueDrift`` per column and their charts, which take 90%
    of its time (about 6 s a window for Ames) and do not change that share. So each window runs
    ``DriftedColumnsCount()`` with the preset's defaults, after checking on the first window of each run that the
    whole preset gives the same count.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import DriftedColumnsCount
    from evidently.presets import DataDriftPreset

    warnings.filterwarnings("ignore", category=RuntimeWarning)  # NumPy's, on constant columns (digits' blank pixels)
    manifest, reference, windows = _load(folder)
    columns = [*manifest["numeric"], *manifest["categorical"]]
    definition = DataDefinition(numerical_columns=manifest["numeric"], categorical_columns=manifest["categorical"])
    ref = Dataset.from_pandas(reference[columns], data_definition=definition)
    groups = list(windows.groupby(WINDOW, sort=False))
    preset = DataDriftPreset()
    out: dict[str, dict[str, Any]] = {}
    for done, (window_id, rows) in enumerate(groups, start=1):
        current = Dataset.from_pandas(rows[columns], data_definition=definition)
        count, share = _drifted_columns(Report([DriftedColumnsCount(drift_share=preset.drift_share)]).run(current, ref))
        if done == 1:
            whole = _drifted_columns(Report([DataDriftPreset()]).run(current, ref))
            if whole != (count, share):
                raise SystemExit(f"DataDriftPreset counts {whole}, DriftedColumnsCount {(count, share)}: not the same")
        # The preset's dataset-level test passes while the share of drifted columns is below drift_share.
        out[str(window_id)] = {"alarm": bool(share >= preset.drift_share), "n_drifted": round(count)}
        _progress(done, len(groups))
    return {"evidently": out}


def _chunker(ids: pd.Series) -> Any:
    """A benchmark window is one NannyML chunk, whatever its size: rows are grouped by ``ids`` (window id by row
    label; the reference's labels are offset so they differ from the windows'). NannyML hands the chunker a few
    columns at a time, so the id cannot travel as a column."""
    from nannyml.chunk import Chunk, Chunker

    class WindowChunker(Chunker):  # type: ignore[misc]
        def _split(self, data: pd.DataFrame) -> list[Chunk]:
            chunks = []
            for window_id, rows in data.groupby(ids.loc[data.index].to_numpy(), sort=False):
                chunk = Chunk(key=str(window_id), data=rows, start_index=rows.index[0], end_index=rows.index[-1])
                chunks.append(chunk)
            return chunks

    return WindowChunker()


def _reference_chunks(reference: pd.DataFrame, size: int) -> pd.Series:
    """The reference in consecutive chunks of the window size (a short remainder joins the last chunk)."""
    last = max(len(reference) // size - 1, 0)
    return pd.Series([f"ref-{min(i // size, last)}" for i in range(len(reference))], index=reference.index)


def run_nannyml(folder: Path) -> dict[str, dict[str, dict[str, Any]]]:
    os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"  # NannyML sends usage events to a web service otherwise
    warnings.filterwarnings("ignore")  # NannyML warns about few chunks and small chunks on every call
    import logging

    logging.disable(logging.WARNING)
    from nannyml.drift.multivariate.data_reconstruction import DataReconstructionDriftCalculator
    from nannyml.drift.univariate import UnivariateDriftCalculator

    manifest, reference, windows = _load(folder)
    numeric, categorical = manifest["numeric"], manifest["categorical"]
    columns = [*numeric, *categorical]
    windows = windows.reset_index(drop=True)
    reference = reference.reset_index(drop=True)
    reference.index = reference.index + len(windows)  # labels apart from the windows', for the chunker
    ids = pd.concat([windows[WINDOW].astype(str), _reference_chunks(reference, int(manifest["window_size"]))])
    windows = windows.drop(columns=[WINDOW])
    total = int(ids.iloc[: len(windows)].nunique())

    univariate = UnivariateDriftCalculator(
        column_names=columns,
        treat_as_numerical=numeric or None,
        treat_as_categorical=categorical or None,
        chunker=_chunker(ids),
    ).fit(reference)
    result = univariate.calculate(windows).filter(period="analysis").to_df()
    uni: dict[str, dict[str, Any]] = {}
    keys = result[("chunk", "chunk", "key")].astype(str).tolist()
    alert_columns = [c for c in result.columns if c[-1] == "alert" and c[0] != "chunk"]
    alerts = result[alert_columns].fillna(False).astype(bool)
    for position, key in enumerate(keys):
        row = alerts.iloc[position]
        uni[key] = {"alarm": bool(row.any()), "n_drifted": int(row.sum())}
    _progress(total // 2, total)

    multivariate = DataReconstructionDriftCalculator(column_names=columns, chunker=_chunker(ids)).fit(reference)
    mresult = multivariate.calculate(windows).filter(period="analysis").to_df()
    multi: dict[str, dict[str, Any]] = {}
    mkeys = mresult[("chunk", "key")].astype(str).tolist()
    malert = mresult[("reconstruction_error", "alert")].fillna(False).astype(bool).tolist()
    for key, alarm in zip(mkeys, malert, strict=True):
        multi[key] = {"alarm": bool(alarm), "n_drifted": int(alarm)}
    _progress(total, total)
    return {"nannyml-univariate": uni, "nannyml-multivariate": multi}


def run_nannyml_quality(folder: Path) -> dict[str, dict[str, dict[str, float]]]:
    """NannyML's estimate of each labelled window's quality, fitted on the model's holdout (its "reference")."""
    os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"
    warnings.filterwarnings("ignore")
    import logging

    logging.disable(logging.WARNING)
    from nannyml.performance_estimation.confidence_based import CBPE
    from nannyml.performance_estimation.direct_loss_estimation import DLE

    manifest = json.loads((folder / "quality.json").read_text(encoding="utf-8"))
    reference = pd.read_parquet(folder / "quality_reference.parquet").reset_index(drop=True)
    windows = pd.read_parquet(folder / "quality_windows.parquet").reset_index(drop=True)
    numeric, categorical = manifest["numeric"], manifest["categorical"]
    reference.index = reference.index + len(windows)  # labels apart from the windows', for the chunker
    ids = pd.concat([windows[WINDOW].astype(str), _reference_chunks(reference, int(manifest["window_size"]))])
    windows = windows.drop(columns=[WINDOW])
    metrics = list(manifest["metrics"])
    estimator: Any
    if manifest["task"] == "regression":
        name = "nannyml-dle"
        estimator = DLE(
            feature_column_names=[*numeric, *categorical],
            y_pred=Y_PRED,
            y_true=Y_TRUE,
            metrics=metrics,
            chunker=_chunker(ids),
        )
    else:
        name = "nannyml-cbpe"
        classes = list(manifest["classes"])
        two = len(classes) == 2
        estimator = CBPE(
            y_pred_proba=PROBA.format(classes[1]) if two else {c: PROBA.format(c) for c in classes},
            y_pred=Y_PRED,
            y_true=Y_TRUE,
            problem_type="classification_binary" if two else "classification_multiclass",
            metrics=metrics,
            chunker=_chunker(ids),
        )
        if two:  # NannyML's binary CBPE wants 0/1 labels; the positive class is the last, as mloop's
            for frame in (reference, windows):
                frame[Y_PRED] = (frame[Y_PRED].astype(str) == classes[1]).astype(int)
            reference[Y_TRUE] = (reference[Y_TRUE].astype(str) == classes[1]).astype(int)
    estimator.fit(reference)
    result = estimator.estimate(windows).filter(period="analysis").to_df()
    keys = result[("chunk", "key")].astype(str).tolist()
    out: dict[str, dict[str, float]] = {key: {} for key in keys}
    for metric in metrics:
        for key, value in zip(keys, result[(metric, "value")].tolist(), strict=True):
            out[key][metric] = float(value)
    return {name: out}


def main() -> None:
    tool, folder = sys.argv[1], Path(sys.argv[2])
    runners = {"evidently": run_evidently, "nannyml": run_nannyml}
    if tool not in runners:
        raise SystemExit(f"unknown peer {tool!r}; one of {', '.join(runners)}")
    decisions = runners[tool](folder)
    (folder / f"{tool}.json").write_text(json.dumps(decisions), encoding="utf-8")
    if tool == "nannyml" and (folder / "quality.json").is_file():
        estimates = run_nannyml_quality(folder)
        (folder / "nannyml-quality.json").write_text(json.dumps(estimates), encoding="utf-8")


if __name__ == "__main__":
    main()

"""Rich tables of monitoring results, shared by the CLI and the demo."""

from __future__ import annotations

from rich.table import Table

from mloop.monitor.runner import WindowResult


def window_table(results: list[WindowResult], title: str) -> Table:
    table = Table(title=title)
    for col in (
        "window",
        "version",
        "rows",
        "drifted features",
        "prediction drift",
        "labelled",
        "live",
        "trained",
        "decay",
    ):
        table.add_column(col)
    for r in results:
        metric = r.metric
        live, trained = r.quality.get(metric), r.training_quality.get(metric)
        top = ", ".join(r.drift.drifted_features[:3]) + ("…" if r.drift.n_drifted > 3 else "")
        table.add_row(
            str(r.index),
            r.version,
            str(r.n_rows),
            f"{r.drift.n_drifted}" + (f" ({top})" if top else ""),
            "yes" if r.drift.prediction and r.drift.prediction.drifted else "no",
            str(r.n_labelled),
            f"{metric} {live:,.4g}" if live is not None else "",
            f"{trained:,.4g}" if trained is not None else "",
            f"{r.decay:+.1%}" if r.decay is not None else "",
        )
    return table

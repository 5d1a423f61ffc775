"""Rich tables of monitoring results, shared by the CLI and the demo."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mloop.terminal import new_table

if TYPE_CHECKING:
    from rich.table import Table

    from mloop.monitor.runner import WindowResult


def number(value: float | None) -> str:
    """Readable at a glance: prices without decimals, small metrics with four significant digits."""
    if value is None:
        return ""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4g}"


def window_table(results: list[WindowResult], title: str) -> Table:
    table = new_table(
        "window",
        "version",
        "rows",
        "drifted features",
        "prediction drift",
        "labelled",
        "live",
        "trained",
        "decay",
        title=title,
        wrap=("drifted features",),
    )
    for r in results:
        metric = r.metric
        live, trained = r.quality.get(metric), r.training_quality.get(metric)
        top = ", ".join(r.drift.drifted_features[:3]) + (f" +{r.drift.n_drifted - 3}" if r.drift.n_drifted > 3 else "")
        table.add_row(
            str(r.index),
            r.version,
            str(r.n_rows),
            f"{r.drift.n_drifted}" + (f" ({top})" if top else ""),
            "yes" if r.drift.prediction and r.drift.prediction.drifted else "no",
            str(r.n_labelled),
            number(live),
            number(trained),
            f"{r.decay:+.1%}" if r.decay is not None else "",
        )
    return table

"""`mloop score INPUT -o OUTPUT`: batch predictions with the model the server would load."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mloop.cli.app import JsonOption, app, console, emit_json, project


@app.command("score")
def score(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="CSV (.csv, .csv.gz) or Parquet file of feature rows.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV or Parquet file to write.")],
    version: Annotated[str | None, typer.Option(help="Model version; default: the champion.")] = None,
    chunk_rows: Annotated[int | None, typer.Option(min=1, help="Rows scored per chunk (default 10,000).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Score every row of SOURCE; OUTPUT holds the input columns plus `prediction`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mloop.serve.batch import DEFAULT_CHUNK_ROWS, count_rows, score_file

    proj = project(ctx)
    total = count_rows(source) if source.is_file() else None
    bar = Progress(
        TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, disable=as_json
    )
    with bar:
        task = bar.add_task("score", total=total)
        result = score_file(
            proj,
            source,
            output,
            version,
            chunk_rows or DEFAULT_CHUNK_ROWS,
            progress=lambda done: bar.update(task, completed=done),
        )
    if as_json:
        emit_json(result.to_dict())
        return
    path = "compiled fast path" if result.fast_path else "plain pipeline"
    console.print(f"[green]scored[/] {result.rows} rows with version {result.model_version} ({path}) → {result.output}")

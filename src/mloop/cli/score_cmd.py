"""`mloop score INPUT -o OUTPUT`: batch predictions with the model the server would load.

In process by default; with ``--engine spark`` (or ``engine: spark`` in mloop.yaml) on Spark, with bad rows set
aside in a rejects folder (``mloop.spark.scoring``).
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mloop.cli.app import JsonOption, app, console, emit_json, project

if TYPE_CHECKING:
    from mloop.project import Project


@app.command("score")
def score(
    ctx: typer.Context,
    # Text, not Path: with --engine spark they may be URIs (s3a://…), which Path would fold to s3a:/…
    source: Annotated[
        str,
        typer.Argument(
            help="CSV (.csv, .csv.gz) or Parquet file of feature rows; with --engine spark also a folder of them "
            "or a URI Spark reads."
        ),
    ],
    output: Annotated[
        str, typer.Option("--output", "-o", help="CSV or Parquet file to write; with --engine spark a folder or URI.")
    ],
    version: Annotated[str | None, typer.Option(help="Model version; default: the champion.")] = None,
    chunk_rows: Annotated[int | None, typer.Option(min=1, help="Rows scored per chunk (default 10,000).")] = None,
    engine: Annotated[
        str | None, typer.Option(help="Where to score: local (this process) or spark (default: the engine setting).")
    ] = None,
    rejects: Annotated[
        str | None,
        typer.Option(help="--engine spark: folder for the rows the contract rejects (default: OUTPUT_rejects)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Score every row of SOURCE; OUTPUT holds the input columns plus `prediction`."""
    if engine is not None and engine not in ("local", "spark"):
        raise typer.BadParameter(f"--engine must be local or spark, not {engine!r}.")
    proj = project(ctx)
    if (engine or proj.config.engine) == "spark":
        _score_on_spark(proj, source, output, version, rejects, as_json)
        return
    if rejects is not None:
        raise typer.BadParameter("--rejects is for --engine spark; in process every row is scored.")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mloop.serve.batch import DEFAULT_CHUNK_ROWS, count_rows, score_file

    local_source, local_output = Path(source), Path(output)
    total = count_rows(local_source) if local_source.is_file() else None
    bar = Progress(
        TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, disable=as_json
    )
    with bar:
        task = bar.add_task("score", total=total)
        result = score_file(
            proj,
            local_source,
            local_output,
            version,
            chunk_rows or DEFAULT_CHUNK_ROWS,
            progress=lambda done: bar.update(task, completed=done),
        )
    if as_json:
        emit_json(result.to_dict())
        return
    path = "compiled fast path" if result.fast_path else "plain pipeline"
    console.print(f"[green]scored[/] {result.rows} rows with version {result.model_version} ({path}) → {result.output}")


def _score_on_spark(
    proj: Project, source: str, output: str, version: str | None, rejects: str | None, as_json: bool
) -> None:
    from mloop.spark.scoring import check_engine_available, score_table

    check_engine_available()
    with nullcontext() if as_json else console.status("scoring on Spark…"):
        result = score_table(proj, source, output, version, rejects)
    if as_json:
        emit_json(result.to_dict())
        return
    path = "compiled fast path" if result.fast_path else "plain pipeline"
    console.print(
        f"[green]scored[/] {result.rows} rows on Spark with version {result.model_version} ({path}) → {result.output}"
    )
    if result.rejected:
        console.print(f"[yellow]rejected[/] {result.rejected} rows that break the contract → {result.rejects}")

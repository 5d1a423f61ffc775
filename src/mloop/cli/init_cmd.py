"""`mloop init`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from mloop.cli.app import JsonOption, app, console, emit_json

Task = Literal["regression", "classification"]  # mloop.config.Task, spelled here: config imports pydantic


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="Project folder to create.")],
    source: Annotated[str, typer.Option(help="File or URI (sqlite:///…, postgresql://…, https://…, s3://…).")],
    target: Annotated[str, typer.Option(help="Column to predict.")],
    task: Annotated[Task | None, typer.Option(help="regression or classification; guessed if omitted.")] = None,
    time_column: Annotated[str | None, typer.Option(help="Orders rows in time for a temporal split.")] = None,
    name: Annotated[str | None, typer.Option(help="Project (and registered model) name.")] = None,
    query: Annotated[str | None, typer.Option(help="SQL query or table name for a database source.")] = None,
    dvc: Annotated[
        bool | None, typer.Option("--dvc/--no-dvc", help="Version snapshots with DVC (default: if installed).")
    ] = None,
    no_scm: Annotated[bool, typer.Option("--no-scm", help="Use DVC without a git repository.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Write a working mloop.yaml (and dvc.yaml) for a tabular source."""
    from mloop.pipeline.scaffold import init_project

    path = init_project(folder, source, target, task, time_column, name, query=query, dvc=dvc, no_scm=no_scm)
    if as_json:
        emit_json({"config": str(path.resolve()), "folder": str(folder.resolve())})
        return
    console.print(f"wrote {path}\nnext: cd {folder} && mloop run && mloop serve")

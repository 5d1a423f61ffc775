"""`mloop init`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mloop.cli.app import app, console
from mloop.config import Task
from mloop.pipeline.scaffold import init_project


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="Project folder to create.")],
    source: Annotated[str, typer.Option(help="CSV/Parquet file (or URI) with the training data.")],
    target: Annotated[str, typer.Option(help="Column to predict.")],
    task: Annotated[Task | None, typer.Option(help="regression or classification; guessed if omitted.")] = None,
    time_column: Annotated[str | None, typer.Option(help="Orders rows in time for a temporal split.")] = None,
    name: Annotated[str | None, typer.Option(help="Project (and registered model) name.")] = None,
) -> None:
    """Write a working mloop.yaml for a tabular file."""
    path = init_project(folder, source, target, task, time_column, name)
    console.print(f"wrote {path}\nnext: cd {folder} && mloop run && mloop serve")

"""The Typer app and what every command shares: the project option, output, error handling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from mloop.project import Project

app = typer.Typer(
    name="mloop",
    help="The machine-learning lifecycle as one closed loop: data → train → track → register → serve → "
    "monitor → retrain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Project config file.", envvar="MLOOP_CONFIG")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]


@app.callback()
def _root(ctx: typer.Context, config: ConfigOption = Path("mloop.yaml")) -> None:
    ctx.obj = {"config": config}


def project(ctx: typer.Context) -> Project:
    """The project named by -c (default ./mloop.yaml), loaded only when a command needs it."""
    return Project.load(ctx.obj["config"])


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))

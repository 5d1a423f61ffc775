"""Entry point of the `mloop` command: the app plus one module per stage."""

from __future__ import annotations

import sys

import click
import typer
from rich.markup import escape

from mloop.cli import contract_cmds, data_cmds, export_cmd, init_cmd, model_cmds, ops_cmds, score_cmd, ui_cmd  # noqa: F401 - registers commands
from mloop.cli.app import app, err_console
from mloop.errors import MloopError

# typer >= 0.29 raises usage errors from its own copy of click, which click.ClickException misses.
_USAGE_ERRORS: tuple[type[click.ClickException], ...] = tuple(
    {click.ClickException, *(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")}
)


def main() -> None:
    """Run the CLI; an MloopError becomes its message on stderr and a non-zero exit code."""
    try:
        app(standalone_mode=False, prog_name="mloop")
    except MloopError as exc:
        # escaped: a message quotes user data (column names, paths) that must not be read as Rich markup
        err_console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except _USAGE_ERRORS as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, typer.Abort):
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)

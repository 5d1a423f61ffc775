"""Entry point of the `mloop` command: the app plus one module per stage."""

from __future__ import annotations

import sys

import click

from mloop.cli import data_cmds, init_cmd, model_cmds, ops_cmds  # noqa: F401 - registers commands
from mloop.cli.app import app, err_console
from mloop.errors import MloopError


def main() -> None:
    """Run the CLI; an MloopError becomes its message on stderr and a non-zero exit code."""
    try:
        app(standalone_mode=False)
    except MloopError as exc:
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)

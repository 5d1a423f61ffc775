"""The Typer app and what every command shares: the project option, output, error handling.

Only the standard library, Typer and rich are imported here and at the top of every command module:
``mloop --help`` must not pay for MLflow, pandas or scikit-learn. A command imports what it uses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mloop.terminal import make_console

if TYPE_CHECKING:
    from mloop.project import Project

# Plain help and usage errors: typer's rich formatter costs 0.1 s of imports on every `--help`.
PLAIN_HELP: dict[str, Any] = {"rich_markup_mode": None, "pretty_exceptions_enable": False}

app = typer.Typer(
    name="mloop",
    help="The machine-learning lifecycle as one closed loop: data → train → track → register → serve → "
    "monitor → retrain.",
    no_args_is_help=True,
    add_completion=False,
    **PLAIN_HELP,
)


def command_group(name: str, help: str) -> typer.Typer:
    """A group of subcommands (``mloop data …``), registered on the app, formatted like it."""
    group = typer.Typer(help=help, no_args_is_help=True, **PLAIN_HELP)
    app.add_typer(group, name=name)
    return group


console = make_console()
err_console = make_console(stderr=True)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Project config file.", envvar="MLOOP_CONFIG")]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show the libraries' logs and warnings (MLflow, …) for debugging.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]


@app.callback()
def _root(ctx: typer.Context, config: ConfigOption = Path("mloop.yaml"), verbose: VerboseOption = False) -> None:
    from mloop.quiet import quiet_libraries

    ctx.obj = {"config": config, "verbose": verbose}
    if ctx.invoked_subcommand is not None and not verbose:
        quiet_libraries()


def project(ctx: typer.Context) -> Project:
    """The project named by -c (default ./mloop.yaml), loaded only when a command needs it."""
    from mloop.project import Project

    return Project.load(ctx.obj["config"])


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))

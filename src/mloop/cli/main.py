"""Entry point of the `mloop` command: the app plus one module per stage."""

from __future__ import annotations

import re
import sys
from typing import NoReturn

import click
import typer
from rich.markup import escape

from mloop.cli import (  # noqa: F401 - registers commands
    audit_cmd,
    contract_cmds,
    data_cmds,
    export_cmd,
    init_cmd,
    model_cmds,
    ops_cmds,
    score_cmd,
    stream_cmd,
    trace_cmd,
    ui_cmd,
)
from mloop.cli.app import app, err_console
from mloop.errors import (
    ConfigError,
    ContractError,
    ExportError,
    MloopError,
    MonitorError,
    PredictionLogError,
    ProfileError,
    RegistryError,
    RetrainError,
    ServeError,
    SourceError,
    TrackingError,
    TrainError,
)

# The exit code of each error class, most specific class first: an error exits with the code of the first
# class it is an instance of. Keep every code as it is: scripts, the exported Airflow DAGs and Kubeflow
# pipelines read them (MonitorError's 9 is mloop.export.stages.NO_TRAFFIC_EXIT_CODE, "no traffic yet").
# The data layer's classes keep the codes of the commands that met them before they had their own class.
EXIT_CODES: tuple[tuple[type[MloopError], int], ...] = (
    (ConfigError, 2),
    (ExportError, 2),  # a bad option, like a usage error
    (SourceError, 3),
    (ContractError, 4),  # also `mloop validate` rejecting a snapshot
    (TrainError, 5),
    (TrackingError, 6),
    (RegistryError, 7),
    (ServeError, 8),
    (PredictionLogError, 8),
    (MonitorError, 9),
    (ProfileError, 9),
    (RetrainError, 10),
    (MloopError, 1),
)

# typer >= 0.29 raises usage errors from its own copy of click, which click.ClickException misses.
_USAGE_ERRORS: tuple[type[click.ClickException], ...] = tuple(
    {click.ClickException, *(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")}
)


def exit_code(error: MloopError | type[MloopError]) -> int:
    """The exit code of an error (or error class): that of the first class in ``EXIT_CODES`` it belongs to."""
    kind = error if isinstance(error, type) else type(error)
    return next(code for cls, code in EXIT_CODES if issubclass(kind, cls))


_DRIVER_ERROR = re.compile(r"^\(\w[\w.]*(Error|Exception)\) ")
MAX_MESSAGE = 600  # characters of an MLflow error shown: its request and cause, not a page


def main() -> None:
    """Run the CLI; an MloopError becomes its message on stderr and a non-zero exit code."""
    try:
        # Without standalone mode click returns an exit code instead of raising: 130 after Ctrl-C, the code
        # of ctx.exit(N); None (0) when a command returns normally.
        code = app(standalone_mode=False, prog_name="mloop")
        if isinstance(code, int) and code:
            sys.exit(code)
    except MloopError as exc:
        _fail(exc)
    except _USAGE_ERRORS as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, typer.Abort):
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        failure = tracking_failure(exc)
        if failure is None:
            raise
        _fail(failure)


def _fail(exc: MloopError) -> NoReturn:
    # escaped: a message quotes user data (column names, paths) that must not be read as Rich markup
    err_console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
    sys.exit(exit_code(exc))


def tracking_failure(exc: BaseException) -> TrackingError | None:
    """An MLflow error no command turned into its own (the server or its database went away mid-command,
    say) as a TrackingError: a message and exit code 6, not a traceback. MLflow's SQL store lets the
    database's own errors (SQLAlchemy's) through. Checked by name, so the CLI's start imports neither."""
    names = {(c.__module__.split(".", 1)[0], c.__name__) for c in type(exc).__mro__}
    if ("mlflow", "MlflowException") in names:
        what = "the MLflow store failed"
    elif ("sqlalchemy", "SQLAlchemyError") in names:
        what = "the MLflow store's database failed"
    else:
        return None
    text = str(getattr(exc, "message", exc)).strip()
    lines = text.splitlines() or [type(exc).__name__]
    # SQLAlchemy puts the driver's own error, "(sqlite3.OperationalError) database or disk is full", on a
    # line of its own, after notes such as "(raised as a result of Query-invoked autoflush ...)".
    first = next((line for line in lines if _DRIVER_ERROR.match(line)), lines[0])
    if any(sign in text for sign in ("Connection refused", "Max retries exceeded", "connection failed")):
        first += " (is it up? run the command again once it is)"
    return TrackingError(f"{what}: {first[:MAX_MESSAGE]}")

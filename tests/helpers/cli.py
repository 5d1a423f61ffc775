"""The real ``mloop`` command, run as a user runs it: ``python -m mloop`` from this environment, in a
subprocess, with no ``MLOOP_*`` setting from the caller's shell.

    done = ok(mloop("run", "--json", cwd=folder))            # a CompletedProcess, checked
    report = mloop_json("monitor", "--json", project=project)  # its stdout, parsed
    err = failed(mloop("rollback", cwd=folder))              # must fail cleanly; its stderr
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypedDict, Unpack

import pytest

from mloop.project import Project

Result = subprocess.CompletedProcess[str]

TIMEOUT_SECONDS = 300.0
MLOOP_SCRIPT = str(Path(sys.executable).parent / "mloop")  # the console script, as generated files name it
# What a user's shell may hold that would change what mloop prints: a width, quieted warnings and bars.
USER_UNSET = ("COLUMNS", "LINES", "PYTHONWARNINGS", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
_TAIL = 3000


def clean_env(*, drop: Iterable[str] = (), **extra: str) -> dict[str, str]:
    """This process's environment without ``MLOOP_*`` variables (a developer's shell must not configure
    the project under test) and without ``drop``, then ``extra``; ``COLUMNS=200`` unless dropped or given,
    so usage errors are not wrapped at 80 columns."""
    dropped = set(drop)
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MLOOP_") and k not in dropped}
    if "COLUMNS" not in dropped:
        env["COLUMNS"] = "200"
    return env | extra


def user_env(**extra: str) -> dict[str, str]:
    """``clean_env`` as a user's shell has it: no terminal width, no inherited quieting (``USER_UNSET``)."""
    return clean_env(drop=USER_UNSET, **extra)


def mloop_argv(*args: str, project: Project | None = None, python_flags: Sequence[str] = ()) -> list[str]:
    """The command line of ``mloop ARGS`` (``-c CONFIG`` first when ``project`` is given), for ``Popen``."""
    config = ["-c", str(project.config_file)] if project is not None else []
    return [sys.executable, *python_flags, "-m", "mloop", *config, *args]


class RunOptions(TypedDict, total=False):
    """How a command runs: ``cwd`` (default: this process's), ``env`` (default: ``clean_env()``) and
    ``timeout`` in seconds (default ``TIMEOUT_SECONDS``)."""

    cwd: Path | None
    env: dict[str, str] | None
    timeout: float


def run_command(argv: Sequence[str], **options: Unpack[RunOptions]) -> Result:
    """Any command, its output captured as text. The exit code is not checked: see ``ok``."""
    env = options.get("env")
    return subprocess.run(
        list(argv),
        cwd=options.get("cwd"),
        env=clean_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=options.get("timeout", TIMEOUT_SECONDS),
        check=False,
    )


def mloop(*args: str, project: Project | None = None, **options: Unpack[RunOptions]) -> Result:
    """``mloop ARGS`` (with ``-c`` naming ``project``'s config when given). Not checked: see ``ok``."""
    return run_command(mloop_argv(*args, project=project), **options)


def mloop_json(*args: str, project: Project | None = None, **options: Unpack[RunOptions]) -> Any:
    """The JSON document ``mloop ARGS`` printed (pass ``--json``); fails the test if it exits non-zero or
    prints something else."""
    done = ok(mloop(*args, project=project, **options))
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        pytest.fail(f"{described(done)} printed no JSON document ({exc}):\n{output(done)}")


def described(done: subprocess.CompletedProcess[Any]) -> str:
    """``done``'s command as one would type it: ``mloop init …`` for the CLI, the full command otherwise."""
    argv = [str(a) for a in done.args] if isinstance(done.args, list | tuple) else shlex.split(str(done.args))
    if argv[:1] == [sys.executable] and "mloop" in argv and argv[argv.index("mloop") - 1] == "-m":
        argv = argv[argv.index("mloop") :]
    return f"`{shlex.join(argv)}`"


def output(done: subprocess.CompletedProcess[Any]) -> str:
    """The end of ``done``'s stdout and stderr, labelled, for a failure message."""
    return f"--- stdout (end) ---\n{(done.stdout or '')[-_TAIL:]}\n--- stderr (end) ---\n{(done.stderr or '')[-_TAIL:]}"


def ok(done: Result, *, quiet: bool = False) -> Result:
    """``done`` after checking it exited 0; ``quiet``: also that stderr holds no traceback and no library
    warning (what a user would see)."""
    assert done.returncode == 0, f"{described(done)} exited with {done.returncode}:\n{output(done)}"
    if quiet:
        assert "Traceback" not in done.stderr, f"{described(done)} printed a traceback:\n{done.stderr}"
        assert "warning" not in done.stderr.lower(), f"library noise reached the user:\n{done.stderr}"
    return done


def failed(done: Result) -> str:
    """The stderr of a command that must fail cleanly: non-zero, a message, no Python traceback."""
    assert done.returncode != 0, f"{described(done)} should have failed:\n{output(done)}"
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip(), "a failure must say why on stderr"
    return done.stderr

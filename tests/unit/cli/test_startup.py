"""`mloop --help` and every subcommand's help start without the heavy libraries.

A command imports MLflow, pandas or scikit-learn when it runs, never when it only parses its options:
those imports cost two seconds, which every `--help` and every typo used to pay.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.helpers.cli import mloop_argv, run_command
from tests.helpers.cli_help import WALK_HELP

HEAVY = (
    "mlflow",
    "pandas",
    "sklearn",
    "fastapi",
    "starlette",
    "uvicorn",
    "pandera",
    "matplotlib",
    "numpy",
    "scipy",
    "pyarrow",
    "sqlalchemy",
    "optuna",
    "pydantic",
    "httpx",
)


def _top_level(name: str) -> str:
    return name.split(".", 1)[0]


def test_mloop_help_imports_none_of_the_heavy_libraries() -> None:
    """`python -X importtime -m mloop --help`: every module imported, as the interpreter reports it."""
    run = run_command(mloop_argv("--help", python_flags=["-X", "importtime"]), timeout=60)
    assert run.returncode == 0, run.stderr
    assert "Usage: mloop" in run.stdout and "train" in run.stdout
    report = [line for line in run.stderr.splitlines() if line.startswith("import time:")]
    imported = {_top_level(line.rsplit("|", 1)[1].strip()) for line in report}
    assert "mloop" in imported and "typer" in imported  # the report is real: it lists what did load
    assert not imported & set(HEAVY), f"`mloop --help` imported {sorted(imported & set(HEAVY))}"


def test_every_subcommands_help_imports_none_of_the_heavy_libraries() -> None:
    run = subprocess.run([sys.executable, "-c", WALK_HELP], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout)
    commands = found["commands"]
    assert {"train", "serve", "monitor", "data list", "contract diff", "export airflow"} <= commands.keys()
    assert all(c["code"] == 0 and c["stdout"].startswith("Usage: mloop ") for c in commands.values()), commands
    heavy = set(found["modules"]) & set(HEAVY)
    assert not heavy, f"the help of {len(commands)} commands imported {sorted(heavy)}"


def test_a_command_that_runs_still_gets_its_libraries() -> None:
    """The check above could pass by breaking the commands: `mloop init` must still import and work."""
    script = textwrap.dedent(
        """
        import sys
        from mloop.cli.main import main
        sys.argv = ["mloop", "init", "--help"]
        try:
            main()
        except SystemExit:
            pass
        from mloop.cli import init_cmd, score_cmd
        from mloop.serve.batch import DEFAULT_CHUNK_ROWS
        import typer
        help_text = typer.main.get_command(init_cmd.app).commands["score"].params
        shown = [p.help for p in help_text if p.name == "chunk_rows"][0]
        assert f"{DEFAULT_CHUNK_ROWS:,}" in shown, shown
        print("ok")
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr

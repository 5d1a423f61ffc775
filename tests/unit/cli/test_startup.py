"""`mloop --help` and every subcommand's help start without the heavy libraries.

A command imports MLflow, pandas or scikit-learn when it runs, never when it only parses its options:
those imports cost two seconds, which every `--help` and every typo used to pay.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

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
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mloop", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "Usage: mloop" in run.stdout and "train" in run.stdout
    report = [line for line in run.stderr.splitlines() if line.startswith("import time:")]
    imported = {_top_level(line.rsplit("|", 1)[1].strip()) for line in report}
    assert "mloop" in imported and "typer" in imported  # the report is real: it lists what did load
    assert not imported & set(HEAVY), f"`mloop --help` imported {sorted(imported & set(HEAVY))}"


WALK_HELP = textwrap.dedent(
    """
    import contextlib, io, json, sys
    import typer
    from mloop.cli.main import app, main

    def walk(group, prefix):
        for name, command in group.commands.items():
            yield [*prefix, name]
            if hasattr(command, "commands"):
                yield from walk(command, [*prefix, name])

    seen = {}
    for path in walk(typer.main.get_command(app), []):
        sys.argv = ["mloop", *path, "--help"]
        out, code = io.StringIO(), 0
        with contextlib.redirect_stdout(out):
            try:
                main()
            except SystemExit as exc:
                code = exc.code
        seen[" ".join(path)] = {"code": code, "usage": out.getvalue().startswith("Usage: ")}
    print(json.dumps({"commands": seen, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
    """
)


def test_every_subcommands_help_imports_none_of_the_heavy_libraries() -> None:
    run = subprocess.run([sys.executable, "-c", WALK_HELP], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout)
    commands = found["commands"]
    assert {"train", "serve", "monitor", "data list", "contract diff", "export airflow"} <= commands.keys()
    assert all(c["code"] == 0 and c["usage"] for c in commands.values()), commands
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

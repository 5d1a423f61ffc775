"""A script that asks every mloop command for its --help in one process, for the CLI tests.

It prints one JSON object: ``commands`` maps each command path ("data list") to its exit code, stdout
and stderr; ``modules`` lists the top-level packages imported by the end, for the start-up test.
"""

from __future__ import annotations

import textwrap

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

    commands = {}
    for path in walk(typer.main.get_command(app), []):
        sys.argv = ["mloop", *path, "--help"]
        out, err, code = io.StringIO(), io.StringIO(), 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        commands[" ".join(path)] = {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}
    print(json.dumps({"commands": commands, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
    """
)

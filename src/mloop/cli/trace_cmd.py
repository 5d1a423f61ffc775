"""`mloop trace REQUEST_ID`: one prediction's lineage, from the logged request back to data and code."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from mloop.cli.app import JsonOption, app, console, emit_json, project

if TYPE_CHECKING:
    from rich.table import Table

    from mloop.monitor.lineage import Lineage


@app.command("trace")
def trace_cmd(
    ctx: typer.Context,
    request_id: Annotated[
        str, typer.Argument(help="The request_id of a logged prediction (ID:shadow for the challenger's answer).")
    ],
    as_json: JsonOption = False,
) -> None:
    """The lineage of one prediction: request, answer and label, model version, run, data snapshot, commit."""
    from mloop.monitor.lineage import trace

    found = trace(project(ctx), request_id)
    if as_json:
        emit_json(found.to_dict())
        return
    _show(found)


def _value(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.6g}"
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def _grid() -> Table:
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    return grid


def _show(found: Lineage) -> None:
    from mloop.monitor.tables import number
    from mloop.registry.versions import CHALLENGER
    from mloop.terminal import heading, new_table

    p, model, run, data = found.prediction, found.model, found.run, found.data
    if found.shadow:
        asked = escape(found.answered_request_id)
        if CHALLENGER in model.aliases or not model.registered:
            who = f"of the challenger (version {escape(model.version)})"
        else:
            now = ", ".join(model.aliases) or "no alias"
            who = f"of version {escape(model.version)}, the challenger then ({escape(now)} now)"
        console.print(
            f"[magenta]shadow prediction[/] {who} for request {asked}: never sent to the caller; "
            f"`mloop trace {asked}` shows the answer the caller got",
            highlight=False,
        )
    top = _grid()
    top.add_row("request", escape(found.request_id))
    top.add_row("logged", f"{escape(p.ts)} in {escape(found.log)}")
    top.add_row("latency", f"{p.latency_ms:.2f} ms" if p.latency_ms is not None else "–")
    top.add_row("answer", escape(_value(p.prediction)))
    label = f"{escape(_value(p.label))} (feedback {escape(p.label_ts or '')})" if p.label is not None else "none yet"
    top.add_row("label", label)
    console.print(top)

    heading(console, "model")
    grid = _grid()
    aliases = f" ({', '.join(model.aliases)})" if model.aliases else ""
    registered = f"registered {model.created}" if model.created else "registered"
    status = registered if model.registered else "[red]not in the registry[/]"
    grid.add_row("version", f"{escape(model.name)} v{escape(model.version)}{escape(aliases)}, {status}")
    if model.artifact_sha256:
        grid.add_row("artifact", f"sha256 {model.artifact_sha256}")
    if run.id is not None:
        where = f" in experiment {escape(run.experiment)}" if run.experiment else ""
        state = " [red](deleted)[/]" if run.deleted else f" {escape(run.status)}" if run.status else ""
        grid.add_row("run", f"{run.id} {escape(repr(run.name) if run.name else '')}{where}{state}")
    else:
        grid.add_row("run", "–")
    if run.metrics:
        shown = "  ".join(f"{escape(k)}={number(v)}" for k, v in run.metrics.items())
        grid.add_row("metrics", shown)
    console.print(grid)

    heading(console, "data and code")
    grid = _grid()
    if data.hash is None:
        grid.add_row("snapshot", "–")
    else:
        about = f" ({data.rows} rows from {escape(data.source or '')})" if data.rows is not None else ""
        grid.add_row("snapshot", f"{data.hash}{about}")
        if data.path:
            state = "" if data.in_workspace else " [yellow](not in the workspace: restore it)[/]"
            grid.add_row("file", f"{escape(data.path)}{state}")
    for i, command in enumerate(data.restore):
        grid.add_row("restore" if i == 0 else "", escape(command))
    contract = f"version {found.contract_version}" if found.contract_version is not None else "version –"
    grid.add_row("contract", f"{contract} (hash {escape(found.contract_hash or '–')})")
    grid.add_row("commit", escape(found.git_commit or "–"))
    console.print(grid)

    heading(console, "features")
    table = new_table("feature", "value")
    for name, value in p.features.items():
        table.add_row(escape(str(name)), escape(_value(value)))
    console.print(table)

    if found.missing:
        heading(console, "missing")
        for gap in found.missing:
            console.print(f"[yellow]-[/] {escape(gap)}", highlight=False)

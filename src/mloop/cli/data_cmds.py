"""`mloop ingest`, `mloop validate`, `mloop data list`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mloop.cli.app import JsonOption, app, console, emit_json, project
from mloop.data.snapshot import list_snapshots
from mloop.errors import ContractError
from mloop.pipeline import stages

data_app = typer.Typer(help="Data versions (snapshots).", no_args_is_help=True)
app.add_typer(data_app, name="data")


@app.command()
def ingest(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Path or URI to read instead of data.source.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Read the data source into an immutable, content-addressed snapshot."""
    proj = project(ctx)
    with console.status("Reading the source…"):
        result = stages.ingest(proj, source)
    snap = result.snapshot
    if as_json:
        emit_json({**snap.to_dict(), "contract_created": result.contract_created})
        return
    console.print(
        f"[green]snapshot[/] {snap.hash[:12]}  {snap.rows} rows × {len(snap.columns)} columns from {snap.source}"
    )
    if result.contract_created:
        console.print(f"inferred the data contract → {proj.contract_path} (edit it to tighten or loosen checks)")


@app.command()
def validate(
    ctx: typer.Context,
    snapshot: Annotated[str | None, typer.Argument(help="Snapshot hash (prefix); default: latest.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Check a snapshot against the data contract; a failing snapshot is quarantined."""
    proj = project(ctx)
    snap, report = stages.validate(proj, snapshot)
    if as_json:
        emit_json({"snapshot": snap.hash, **report.to_dict()})
    else:
        table = Table(title=f"snapshot {snap.hash[:12]} against {proj.contract_path.name}")
        for col in ("severity", "column", "check", "count", "examples"):
            table.add_column(col)
        for v in report.violations:
            shown = ", ".join(f"row {e['row']}: {e['value']!r}" for e in v.examples[:3])
            style = "red" if v.severity == "error" else "yellow"
            table.add_row(f"[{style}]{v.severity}[/]", v.column, v.check, str(v.count), shown)
        if report.violations:
            console.print(table)
        verdict = "[green]passed[/]" if report.passed else "[red]rejected[/]"
        console.print(f"{verdict}: {len(report.errors)} errors, {len(report.warnings)} warnings, {report.rows} rows")
    if not report.passed:
        raise ContractError(
            f"snapshot {snap.hash[:12]} breaks the data contract; it is quarantined in "
            f"{proj.quarantine_dir / snap.hash}."
        )


@data_app.command("list")
def data_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the snapshots, oldest first."""
    snaps = list_snapshots(project(ctx).snapshots_dir)
    if as_json:
        emit_json([s.to_dict() for s in snaps])
        return
    table = Table("hash", "rows", "columns", "source", "created")
    for s in snaps:
        table.add_row(s.hash[:12], str(s.rows), str(len(s.columns)), s.source, s.created_at)
    console.print(table)

"""`mloop ingest`, `mloop validate`, `mloop data list|checkout`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from mloop.cli.app import JsonOption, app, command_group, console, emit_json, project
from mloop.errors import ContractError, RegistryError, SourceError

if TYPE_CHECKING:
    from mloop.data.snapshot import Snapshot
    from mloop.project import Project

data_app = command_group("data", "Data versions (snapshots).")


@app.command()
def ingest(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Path or URI to read instead of data.source.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Read the data source into an immutable, content-addressed snapshot."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn

    from mloop.pipeline import stages

    proj = project(ctx)
    bar = Progress(
        TextColumn("reading the source"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json,
    )
    with bar:
        task = bar.add_task("read", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = stages.ingest(proj, source, progress=advance)
    snap = result.snapshot
    if as_json:
        emit_json({**snap.to_dict(), "contract_created": result.contract_created, "added_rows": result.added_rows})
        return
    if result.added_rows == 0:
        console.print(f"no new rows; snapshot {snap.hash[:12]} ({snap.rows} rows) is still the latest")
        return
    if result.added_rows is not None:
        console.print(f"appended {result.added_rows} new rows to snapshot {str(snap.parent)[:12]}")
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
    from mloop.pipeline import stages
    from mloop.terminal import new_table

    proj = project(ctx)
    snap, report = stages.validate(proj, snapshot)
    if as_json:
        emit_json({"snapshot": snap.hash, **report.to_dict()})
    else:
        table = new_table(
            "severity",
            "column",
            "check",
            "count",
            "examples",
            title=f"snapshot {snap.hash[:12]} against {proj.contract_path.name}",
            wrap=("check", "examples"),
        )
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


def _models_by_data(proj: Project) -> dict[str, list[str]]:
    """Model versions per data hash, from the registry's ``mloop.data_hash`` tags; none if nothing was tracked."""
    from mloop.registry import versions

    if proj.config.tracking.uri is None and not (proj.workspace / "mlflow.db").is_file():
        return {}  # connecting would create an empty store just to find nothing in it
    found: dict[str, list[str]] = {}
    for info in versions.list_versions(proj):
        label = f"v{info.version}" + (f" ({', '.join(info.aliases)})" if info.aliases else "")
        found.setdefault(info.tags.get("mloop.data_hash", ""), []).append(label)
    return found


def _status(proj: Project, snap: Snapshot) -> str:
    report = proj.snapshots_dir / f"{snap.hash}.validation.json"
    if not report.is_file():
        return "unchecked"
    return "accepted" if json.loads(report.read_text(encoding="utf-8")).get("passed") else "rejected"


@data_app.command("list")
def data_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the data versions, oldest first, with the model versions trained on each."""
    from mloop.data import versioning
    from mloop.data.snapshot import list_snapshots
    from mloop.terminal import new_table

    proj = project(ctx)
    snaps = list_snapshots(proj.snapshots_dir)
    models = _models_by_data(proj) if snaps else {}
    rows = [
        {
            **s.to_dict(),
            "status": _status(proj, s),
            "dvc": versioning.dvc_file(s).is_file(),
            "models": models.get(s.hash, []),
        }
        for s in snaps
    ]
    if as_json:
        emit_json(rows)
        return
    table = new_table(
        "hash", "rows", "columns", "source", "created", "status", "dvc", "models", wrap=("source", "models")
    )
    for s, row in zip(snaps, rows, strict=True):
        table.add_row(
            s.hash[:12],
            str(s.rows),
            str(len(s.columns)),
            s.source,
            s.created_at,
            str(row["status"]),
            "yes" if row["dvc"] else "",
            ", ".join(models.get(s.hash, [])),
        )
    console.print(table)


def _resolve(proj: Project, ref: str) -> Snapshot:
    """A data hash (prefix), or a model version (``3``, ``v3``, ``champion``) whose training data is wanted."""
    from mloop.data.snapshot import load_snapshot
    from mloop.registry import versions

    is_version = ref.lower().removeprefix("v").isdigit() or ref in (versions.CHAMPION, versions.CHALLENGER)
    if not is_version:
        return load_snapshot(proj.snapshots_dir, ref)
    if ref in (versions.CHAMPION, versions.CHALLENGER):
        info = versions.alias_version(proj, ref)
        if info is None:
            raise RegistryError(f"no model version holds the alias {ref!r}; `mloop models` lists them.")
    else:
        number = ref.lower().removeprefix("v")
        matching = [v for v in versions.list_versions(proj) if v.version == number]
        if not matching:
            raise RegistryError(f"no model version {number} of {proj.name}; `mloop models` lists them.")
        info = matching[0]
    data_hash = info.tags.get("mloop.data_hash")
    if not data_hash:
        raise RegistryError(f"model version {info.version} has no mloop.data_hash tag; its data is unknown.")
    return load_snapshot(proj.snapshots_dir, data_hash)


@data_app.command("checkout")
def data_checkout(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Data hash (prefix) or model version (3, v3, champion).")],
    as_json: JsonOption = False,
) -> None:
    """Bring back exactly the data of REF (from DVC's cache, or its remote) and make it the latest snapshot."""
    from mloop.data import versioning
    from mloop.data.snapshot import content_hash, mark_latest

    proj = project(ctx)
    snap = _resolve(proj, ref)
    with console.status(f"Restoring {snap.hash[:12]}…"):
        origin = versioning.restore(proj.root, proj.config.data, snap)
    if content_hash(snap.read()) != snap.hash:
        raise SourceError(f"restored snapshot {snap.hash[:12]} does not match its hash; the DVC remote is damaged.")
    mark_latest(proj.snapshots_dir, snap.hash)
    if as_json:
        emit_json({**snap.to_dict(), "restored_from": origin})
        return
    console.print(f"[green]checked out[/] {snap.hash[:12]} ({snap.rows} rows) from the {origin}: {snap.path}")

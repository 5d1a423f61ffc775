"""`mloop contract diff|update`: show and accept what a new batch changes; `mloop contract set-target`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from mloop.cli.app import JsonOption, command_group, console, emit_json, project

if TYPE_CHECKING:
    from mloop.data.contract import Contract
    from mloop.data.evolution import Change
    from mloop.data.snapshot import Snapshot
    from mloop.project import Project

contract_app = command_group("contract", "The data contract: show and accept changes.")

SnapshotArg = Annotated[str | None, typer.Argument(help="Snapshot hash (prefix); default: the latest.")]


def _proposal(proj: Project, ref: str | None) -> tuple[Snapshot, Contract, Contract, list[Change]]:
    from mloop.data.contract import load_contract
    from mloop.data.evolution import diff, propose
    from mloop.data.snapshot import latest_snapshot, load_snapshot

    snap = load_snapshot(proj.snapshots_dir, ref) if ref else latest_snapshot(proj.snapshots_dir)
    current = load_contract(proj.contract_path)
    proposed = propose(current, snap.read())
    return snap, current, proposed, diff(current, proposed)


def _show(changes: list[Change], title: str) -> None:
    from mloop.terminal import new_table

    if not changes:
        console.print("no change: the contract already accepts this snapshot's columns, types, ranges and categories")
        return
    table = new_table("column", "change", "detail", title=title, wrap=("detail",))
    for change in changes:
        table.add_row(escape(change.column), change.kind, escape(change.describe()))
    console.print(table)


@contract_app.command("diff")
def contract_diff(ctx: typer.Context, snapshot: SnapshotArg = None, as_json: JsonOption = False) -> None:
    """Show what accepting a snapshot would change in the contract (nothing is written)."""
    proj = project(ctx)
    snap, current, _, changes = _proposal(proj, snapshot)
    if as_json:
        emit_json({"snapshot": snap.hash, "contract_hash": current.hash(), "changes": [c.to_dict() for c in changes]})
        return
    _show(changes, f"{proj.contract_path.name} vs snapshot {snap.hash[:12]}")


@contract_app.command("update")
def contract_update(ctx: typer.Context, snapshot: SnapshotArg = None, as_json: JsonOption = False) -> None:
    """Accept a snapshot's changes: widen the contract so it passes, keeping roles and severities."""
    proj = project(ctx)
    snap, current, proposed, changes = _proposal(proj, snapshot)
    if changes:
        from mloop.data.contract import save_contract

        save_contract(proposed, proj.contract_path)
    if as_json:
        emit_json(
            {
                "snapshot": snap.hash,
                "updated": bool(changes),
                "version": proposed.version if changes else current.version,
                "contract_hash": (proposed if changes else current).hash(),
                "changes": [c.to_dict() for c in changes],
            }
        )
        return
    _show(changes, f"accepted into {proj.contract_path.name} (version {proposed.version})")
    if changes:
        console.print(f"run `mloop validate {snap.hash[:12]}` to check the snapshot against the new contract")


@contract_app.command("set-target")
def contract_set_target(
    ctx: typer.Context,
    column: Annotated[str, typer.Argument(help="The column to predict; it must be in the latest snapshot.")],
    as_json: JsonOption = False,
) -> None:
    """Make COLUMN the contract's target and bump its version; the old target becomes an ignored column."""
    from mloop.data.contract import load_contract, save_contract
    from mloop.data.snapshot import latest_snapshot
    from mloop.errors import ContractError

    proj = project(ctx)
    current = load_contract(proj.contract_path)  # not proj.contract(): this is how a disagreement is resolved
    snap = latest_snapshot(proj.snapshots_dir)
    if column not in snap.columns:
        raise ContractError(
            f"column {column!r} is not in the latest snapshot {snap.hash[:12]} ({snap.source}); its columns are: "
            f"{', '.join(snap.columns)}. Ingest data that has it first (`mloop ingest`)."
        )
    updated = current.with_target(column)
    changed = updated is not current
    if changed:
        save_contract(updated, proj.contract_path)
    agrees = proj.config.data.target == column
    if as_json:
        emit_json(
            {
                "target": column,
                "previous": current.target,
                "updated": changed,
                "version": updated.version,
                "contract_hash": updated.hash(),
                "config_agrees": agrees,
            }
        )
        return
    name = escape(proj.contract_path.name)
    if changed:
        console.print(
            f"target {escape(repr(current.target))} → {escape(repr(column))} in {name} (version {updated.version}); "
            f"{escape(repr(current.target))} is now an ignored column: make it a feature there if it is known "
            "when a prediction is asked for"
        )
    else:
        console.print(f"{escape(repr(column))} is already the target of {name} (version {current.version})")
    if not agrees:
        console.print(
            f"set `data.target: {escape(column)}` in {escape(proj.config_file.name)} too: the two must agree "
            "before training"
        )

"""`mloop audit verify`: check the audit log's hash chain and name every entry that does not hold."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from mloop.cli.app import JsonOption, command_group, console, emit_json, project

if TYPE_CHECKING:
    from mloop.registry.audit import VerifyResult

audit_app = command_group("audit", "The audit log of promotions, rejections, rollbacks and retraining decisions.")

_HEAD = re.compile(r"[0-9a-f]{64}")


def _head(value: str | None) -> str | None:
    if value is None:
        return None
    head = value.strip().lower()
    if not _HEAD.fullmatch(head):
        raise typer.BadParameter(
            f"{value!r} is not a head hash: pass the 64 hex digits `mloop audit verify --json` printed as head."
        )
    return head


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    expect_head: Annotated[
        str | None,
        typer.Option(
            help="A head recorded earlier (--json prints it): it must still be in the log, which is how deleted "
            "last entries are caught.",
            callback=_head,
        ),
    ] = None,
    log: Annotated[
        Path | None, typer.Option(help="Verify this file (a copy, a backup) instead of the project's audit log.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check the audit log's hash chain. Exits 0 when it holds, non-zero naming each edited, deleted or moved entry."""
    from mloop.errors import AuditChainBroken, RegistryError
    from mloop.registry.audit import verify

    path = log if log is not None else project(ctx).audit_log
    try:
        result = verify(path, expect_head=expect_head)
    except OSError as exc:
        raise RegistryError(f"cannot read the audit log {path}: {exc.strerror or exc}. Check its permissions.") from exc
    if as_json:
        emit_json(result.to_dict())
    else:
        _show(result)
    if result.ok:
        return
    first = result.problems[0]
    more = len(result.problems) - 1
    raise AuditChainBroken(
        f"the audit log {path} does not verify: {first.where()}: {first.message}"
        + (f"; and {more} more problem{'s' if more > 1 else ''}, all listed on stdout" if more else "")
        + ". Find out who changed it (each entry names its user) and restore it from a backup if there is one; "
        "new entries still chain on after the last one."
    )


def _show(result: VerifyResult) -> None:
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning.where())}: {escape(warning.message)}", highlight=False)
    for problem in result.problems:
        console.print(f"[red]problem:[/] {escape(problem.where())}: {escape(problem.message)}", highlight=False)
    if not result.ok:
        return
    if result.head is None:
        console.print(f"audit log {escape(str(result.path))}: no chained entries yet", highlight=False)
        return
    console.print(
        f"[green]audit log intact[/]: {result.entries} chained entries in {escape(str(result.path))}, "
        f"head {result.head} (line {result.head_line})",
        highlight=False,
    )

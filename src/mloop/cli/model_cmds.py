"""`mloop train|register|promote|rollback|models|run`."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from mloop.cli.app import JsonOption, app, console, emit_json, project
from mloop.core.gate import GateDecision
from mloop.pipeline import stages
from mloop.registry import gate, versions


def _print_metrics(metrics: dict[str, float]) -> str:
    return "  ".join(f"{k}={v:,.4g}" for k, v in metrics.items())


def _print_decision(decision: GateDecision, version: str) -> None:
    verdict = "[green]promoted to champion[/]" if decision.promote else "[yellow]not promoted[/]"
    console.print(f"version {version}: {verdict} — {decision.reason}")


@app.command("train")
def train_cmd(
    ctx: typer.Context,
    snapshot: Annotated[str | None, typer.Option(help="Snapshot hash (prefix); default: latest.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Train a model on a validated snapshot and log the run to MLflow."""
    proj = project(ctx)
    with console.status("Training…"):
        result = stages.train_stage(proj, snapshot)
    if as_json:
        emit_json(result.__dict__)
        return
    console.print(f"[green]run[/] {result.run_id}  {result.rows_train} train / {result.rows_test} holdout rows")
    console.print(f"  model:    {_print_metrics(result.metrics)}")
    console.print(f"  baseline: {_print_metrics(result.baseline)}")


@app.command()
def register(
    ctx: typer.Context,
    run_id: Annotated[str | None, typer.Option(help="MLflow run id; default: the latest training run.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Register a trained model as a new version in the MLflow model registry."""
    info = versions.register(project(ctx), run_id)
    if as_json:
        emit_json(info.__dict__)
        return
    console.print(f"registered version {info.version} (run {info.run_id})")


@app.command()
def promote(
    ctx: typer.Context,
    version: Annotated[str | None, typer.Argument(help="Version to promote; default: the newest.")] = None,
    force: Annotated[bool, typer.Option(help="Promote even if the gate says no (audited).")] = False,
    reason: Annotated[str, typer.Option(help="Why; written to the audit log.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Gate a version against the champion and make it champion if it wins."""
    if force and not reason:
        raise typer.BadParameter("--force needs --reason so the audit log says why.")
    proj = project(ctx)
    decision = gate.promote(proj, version, force=force, reason=reason)
    target = version or versions.list_versions(proj)[-1].version
    if as_json:
        emit_json({"version": target, **decision.to_dict(), "forced": force and not decision.promote})
        return
    _print_decision(decision, target)
    if force and not decision.promote:
        console.print(f"[red]forced[/]: version {target} is champion despite the gate ({reason})")


@app.command()
def rollback(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option(help="Why; written to the audit log.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Give the champion alias back to the previous champion."""
    old, new = gate.rollback(project(ctx), reason)
    if as_json:
        emit_json({"from": old, "to": new})
        return
    console.print(f"champion rolled back from version {old} to version {new}")


@app.command()
def models(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List model versions with aliases, metrics and gate results."""
    proj = project(ctx)
    rows = versions.list_versions(proj)
    metric = proj.config.primary_metric
    if as_json:
        emit_json([v.__dict__ for v in rows])
        return
    table = Table("version", "aliases", metric, "data", "gate", title=f"model {proj.name}")
    for v in rows:
        gate_tag = v.tags.get("mloop.gate")
        verdict = ""
        if gate_tag:
            verdict = "passed" if json.loads(gate_tag).get("promote") else "rejected"
        value = v.metric(metric)
        table.add_row(
            v.version,
            ", ".join(v.aliases),
            f"{value:,.4g}" if value is not None else "",
            v.tags.get("mloop.data_hash", "")[:12],
            verdict,
        )
    console.print(table)


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Path or URI to read instead of data.source.")] = None,
    as_json: JsonOption = False,
) -> None:
    """ingest → validate → train → register → gate, in one command."""
    proj = project(ctx)
    with console.status("ingest → validate → train → register → gate…"):
        result = stages.run(proj, source)
    if as_json:
        emit_json(
            {
                "snapshot": result.snapshot.hash,
                "warnings": len(result.report.warnings),
                "run_id": result.trained.run_id,
                "metrics": result.trained.metrics,
                "version": result.version.version,
                "gate": result.decision.to_dict(),
            }
        )
        return
    console.print(
        f"snapshot {result.snapshot.hash[:12]}: {result.snapshot.rows} rows, contract passed "
        f"({len(result.report.warnings)} warnings)"
    )
    console.print(f"run {result.trained.run_id}: {_print_metrics(result.trained.metrics)}")
    _print_decision(result.decision, result.version.version)

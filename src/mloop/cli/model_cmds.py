"""`mloop train|register|promote|rollback|models|run`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from mloop.cli.app import JsonOption, app, console, emit_json, err_console, project

if TYPE_CHECKING:
    from rich.progress import Progress

    from mloop.core.gate import GateDecision
    from mloop.core.shadow import ShadowEvidence
    from mloop.project import Project
    from mloop.registry.versions import VersionInfo


def _print_metrics(metrics: dict[str, float]) -> str:
    from mloop.monitor.tables import number

    # Per-slice, importance and behaviour metrics (dotted names) stay in MLflow; the headline ones print.
    return "  ".join(f"{k}={number(v)}" for k, v in metrics.items() if "." not in k)


def _print_decision(decision: GateDecision, version: str) -> None:
    verdict = "[green]promoted to champion[/]" if decision.promote else "[yellow]not promoted[/]"
    console.print(f"version {version}: {verdict} — {decision.reason}")


def _search_progress(proj_trials: int) -> tuple[Progress, Callable[[int, int, float | None], None]]:
    """A rich progress bar of finished trials with the best score so far."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("[bold]search"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("best {task.fields[best]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = bar.add_task("search", total=proj_trials, best="–")

    def update(done: int, total: int, best: float | None) -> None:
        bar.update(task, completed=min(done, total), best=f"{best:,.5g}" if best is not None else "–")

    return bar, update


@app.command("train")
def train_cmd(
    ctx: typer.Context,
    snapshot: Annotated[str | None, typer.Option(help="Snapshot hash (prefix); default: latest.")] = None,
    worker: Annotated[
        bool, typer.Option(help="Only run search trials in the shared study (train.search.storage), then exit.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Train a model on a validated snapshot and log the run to MLflow (searching first if configured)."""
    from mloop.data.snapshot import latest_snapshot, load_snapshot
    from mloop.pipeline import stages
    from mloop.train import trainer

    proj = project(ctx)
    proj.contract()  # a data.target that disagrees with the contract fails before require_valid writes a report
    snap = load_snapshot(proj.snapshots_dir, snapshot) if snapshot else latest_snapshot(proj.snapshots_dir)
    stages.require_valid(proj, snap)
    trials = proj.config.train.search.trials
    if worker:
        bar, update = _search_progress(trials)
        with bar:
            found = trainer.search_worker(proj, snap, progress=None if as_json else update)
        if as_json:
            emit_json(found.__dict__)
            return
        console.print(
            f"study {found.study}: {found.trials} trials ({found.pruned} pruned), best {found.best_value:,.5g}"
        )
        return
    if trials > 0 and not as_json:
        bar, update = _search_progress(trials)
        with bar:
            result = trainer.train(proj, snap, progress=update)
    elif as_json:  # for a program: no spinner, whose refresh thread would take the GIL from the fit
        result = trainer.train(proj, snap)
    else:
        with console.status("Training…", refresh_per_second=5):
            result = trainer.train(proj, snap)
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
    from mloop.registry import versions

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
    from mloop.registry import gate, versions

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
    from mloop.registry import gate

    old, new = gate.rollback(project(ctx), reason)
    if as_json:
        emit_json({"from": old, "to": new})
        return
    console.print(f"champion rolled back from version {old} to version {new}")


def _challenger_evidence(proj: Project, rows: list[VersionInfo]) -> tuple[str | None, ShadowEvidence | None]:
    """(challenger version, its shadow evidence against the champion); a log that cannot be read is a
    warning, not a failed listing."""
    from mloop.errors import PredictionLogError
    from mloop.registry.shadow import version_evidence
    from mloop.registry.versions import CHALLENGER, CHAMPION

    challenger = next((v.version for v in rows if CHALLENGER in v.aliases), None)
    champion = next((v.version for v in rows if CHAMPION in v.aliases), None)
    if challenger is None or champion is None or challenger == champion:
        return challenger, None
    try:
        return challenger, version_evidence(proj, challenger, champion)
    except PredictionLogError as exc:
        err_console.print(f"[yellow]warning[/]: no shadow evidence: {exc.message}")
        return challenger, None


def _shadow_cell(evidence: ShadowEvidence | None, metric: str) -> str:
    """``160 requests, 70.6% agree, 160 labelled: rmse 13.1% worse``: the challenger's live evidence."""
    from mloop.core.shadow import live_metric

    if evidence is None:
        return ""
    if not evidence.requests:
        return "0 requests"
    text = f"{evidence.requests} requests, {evidence.agreement or 0.0:.1%} agree"
    if not evidence.labelled:
        return text
    name = live_metric(metric, evidence.task)
    loss = evidence.quality_loss(name)
    verdict = "" if loss is None else f": {name} {abs(loss):.1%} {'worse' if loss > 0 else 'better'}"
    return f"{text}, {evidence.labelled} labelled{verdict}"


@app.command()
def models(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List model versions with aliases, metrics, gate results and the challenger's shadow evidence."""
    from mloop.registry import versions
    from mloop.terminal import new_table

    proj = project(ctx)
    rows = versions.list_versions(proj)
    metric = proj.config.primary_metric
    challenger, evidence = _challenger_evidence(proj, rows)
    if as_json:
        shadow = evidence.to_dict() if evidence is not None else None
        emit_json([{**v.__dict__, "shadow": shadow if v.version == challenger else None} for v in rows])
        return
    table = new_table(
        "version", "aliases", metric, "data", "gate", "shadow", title=f"model {proj.name}", wrap=("gate",)
    )
    for v in rows:
        gate_tag = v.tags.get("mloop.gate")
        verdict = ""
        if gate_tag:
            decision = json.loads(gate_tag)
            failed = decision.get("failed") or [c["name"] for c in decision.get("checks", []) if not c["passed"]]
            verdict = "passed" if decision.get("promote") else f"rejected: {', '.join(failed)}"
        value = v.metric(metric)
        table.add_row(
            v.version,
            ", ".join(v.aliases),
            f"{value:,.4g}" if value is not None else "",
            v.tags.get("mloop.data_hash", "")[:12],
            verdict,
            _shadow_cell(evidence, metric) if v.version == challenger else "",
        )
    console.print(table)


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Path or URI to read instead of data.source.")] = None,
    as_json: JsonOption = False,
) -> None:
    """ingest → validate → train → register → gate, in one command."""
    from mloop.pipeline import stages

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

"""`mloop serve|monitor|retrain|report|demo`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mloop.cli.app import JsonOption, app, console, emit_json, project

if TYPE_CHECKING:
    from mloop.retrain.controller import RetrainResult


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Serve the champion over HTTP: /v1/predict, /v1/feedback, /docs, /metrics."""
    from mloop.serve.main import serve as run_server  # imported here: the server stack is heavy

    proj = project(ctx)
    cfg = proj.config.serve
    config_path = Path(ctx.obj["config"]).resolve()
    run_server(config_path, host or cfg.host, port or cfg.port, workers or cfg.workers)


@app.command("monitor")
def monitor_cmd(
    ctx: typer.Context,
    version: Annotated[str | None, typer.Option(help="Model version; default: the champion.")] = None,
    last: Annotated[int | None, typer.Option(help="Rows in the window; default monitor.window_size.")] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every window of the version's traffic, oldest first (nothing recorded).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Drift and quality of the latest window of the prediction log; updates the server's gauges."""
    from mloop.monitor.runner import monitor, monitor_windows
    from mloop.monitor.tables import window_table
    from mloop.terminal import new_table

    if every:
        results = monitor_windows(project(ctx), version, last)
        if as_json:
            emit_json([r.to_dict() for r in results])
        else:
            console.print(window_table(results, "every window"))
        return
    result = monitor(project(ctx), version, last)
    if as_json:
        emit_json(result.to_dict())
        return
    features = new_table(
        "feature", "kind", "psi", "test", "p-value", "drifted", title="drift per feature (top 10 by PSI)"
    )
    for f in sorted(result.drift.features, key=lambda f: -f.psi)[:10]:
        features.add_row(
            f.feature,
            f.kind,
            f"{f.psi:.3f}",
            f.test,
            f"{f.p_value:.2g}" if f.p_value is not None else "",
            "[red]yes[/]" if f.drifted else "no",
        )
    console.print(features)
    console.print(window_table([result], "latest window"))


def _retrain_summary(result: RetrainResult) -> dict[str, Any]:
    return {
        "retrained": result.version is not None,
        "reasons": result.decision.reasons,
        "blockers": result.decision.blockers,
        "version": result.version.version if result.version else None,
        "promoted": result.promoted,
        "gate": result.gate.to_dict() if result.gate else None,
    }


@app.command("retrain")
def retrain_cmd(
    ctx: typer.Context,
    if_needed: Annotated[bool, typer.Option("--if-needed", help="Only when monitoring calls for it.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Train a challenger on training data plus labelled production rows; promote it only if it wins."""
    from mloop.retrain.controller import retrain

    with console.status("Checking the policy and retraining…"):
        result = retrain(project(ctx), if_needed)
    if as_json:
        emit_json(_retrain_summary(result))
        return
    if result.version is None:
        why = "; ".join(result.decision.blockers or ["no drift or quality decay beyond the limits"])
        console.print(f"no retraining needed: {why}")
        return
    console.print(f"retrained ({'; '.join(result.decision.reasons)}) → version {result.version.version}")
    if result.gate:
        verdict = "[green]promoted[/]" if result.promoted else "[yellow]kept the champion[/]"
        console.print(f"{verdict}: {result.gate.reason}")


@app.command()
def report(
    ctx: typer.Context,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="HTML file to write.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Write a self-contained HTML report: drift and quality per window, versions and promotions."""
    from mloop.monitor.report import write_report

    proj = project(ctx)
    path = write_report(proj, output or proj.workspace / "report.html")
    if as_json:
        emit_json({"path": str(path)})
        return
    console.print(f"wrote {path}")


@app.command()
def demo(
    folder: Annotated[Path | None, typer.Option("--dir", help="Project folder (default: a new temp folder).")] = None,
    port: Annotated[int, typer.Option(help="Port for the demo server (0: any free port).")] = 0,
) -> None:
    """Run the whole loop on the Ames house prices: train, serve, drift, retrain, promote."""
    from mloop.demo.runner import run_demo

    run_demo(folder, port)


@app.command()
def watch(
    ctx: typer.Context,
    interval: Annotated[float, typer.Option(help="Seconds between checks.")] = 60.0,
    cycles: Annotated[int | None, typer.Option(help="Stop after this many checks (default: run until Ctrl-C).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per check, a line each.")] = False,
) -> None:
    """Run the retraining controller as a daemon: monitor, retrain if needed, repeat."""
    import time

    from mloop.errors import MonitorError, ProfileError
    from mloop.retrain.controller import retrain

    proj = project(ctx)
    done = 0
    while cycles is None or done < cycles:
        try:
            result = retrain(proj, if_needed=True)
        except (MonitorError, ProfileError) as exc:  # no traffic (or reference) yet is no reason to stop watching
            if as_json:
                typer.echo(json.dumps({"check": done + 1, "waiting": exc.message}))
            else:
                console.print(f"waiting: {exc.message}")
        else:
            if as_json:
                typer.echo(json.dumps({"check": done + 1, **_retrain_summary(result)}))
            elif result.version is None:
                blockers = "; ".join(result.decision.blockers)
                console.print(f"no retraining needed{': ' + blockers if blockers else ''}")
            else:
                verdict = "promoted" if result.promoted else "kept the champion"
                console.print(f"retrained → version {result.version.version}: {verdict}")
        done += 1
        if cycles is None or done < cycles:
            time.sleep(interval)

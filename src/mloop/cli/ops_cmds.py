"""`mloop serve|monitor|retrain|report|demo`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mloop.cli.app import JsonOption, app, console, emit_json, err_console, project

if TYPE_CHECKING:
    from mloop.monitor.drift import DriftReport
    from mloop.retrain.controller import RetrainResult
    from mloop.retrain.watch import Outcome, Waiting


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
    days: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Drift over the last N days (UTC, today included), merged from daily profiles kept under "
            ".mloop/monitor/profiles: reads only the days not profiled yet (nothing recorded).",
        ),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(
            help="Judge a window stored as a table instead (Parquet file or folder, or CSV: a scoring job's "
            "output, a stream's sink): drift only, nothing recorded.",
        ),
    ] = None,
    engine: Annotated[
        str | None, typer.Option(help="Where --window is profiled: local or spark (default: the engine setting).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Drift and quality of the latest window of the prediction log; updates the server's gauges."""
    from mloop.monitor.runner import monitor, monitor_windows
    from mloop.monitor.tables import window_table

    if engine is not None and engine not in ("local", "spark"):
        raise typer.BadParameter(f"--engine must be local or spark, not {engine!r}.")
    if window is not None:
        if every or last is not None or days is not None:
            raise typer.BadParameter(
                "--window judges the whole table; it cannot be combined with --last, --all or --days."
            )
        _table_window(ctx, version, window, engine, as_json)
        return
    if engine == "spark":
        raise typer.BadParameter("--engine spark judges a window stored as a table: pass --window PATH.")
    if days is not None:
        if every or last is not None:
            raise typer.BadParameter("--days merges whole days; it cannot be combined with --last or --all.")
        _span(ctx, version, days, as_json)
        return
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
    _feature_table(result.drift)
    console.print(window_table([result], "latest window"))


def _table_window(ctx: typer.Context, version: str | None, path: str, engine: str | None, as_json: bool) -> None:
    from mloop.monitor.runner import load_reference
    from mloop.monitor.window_table import local_window_profile, table_drift

    proj = project(ctx)
    chosen = engine or proj.config.engine
    ref = load_reference(proj, version)
    if chosen == "spark":
        from mloop.spark.profiles import read_window, spark_window_profile
        from mloop.spark.session import spark_session

        if "://" not in path and not Path(path).exists():  # a URI (s3a://, abfss://, dbfs:/) is Spark's to read
            raise typer.BadParameter(f"{path}: no such file or folder to monitor.")
        session = spark_session(proj.config.spark)
        profile = spark_window_profile(ref.profile, ref.contract, read_window(session, path))
    else:
        profile = local_window_profile(ref.profile, ref.contract, Path(path))
    found = table_drift(proj, ref, profile, path, chosen)
    if as_json:
        emit_json(found.to_dict())
        return
    _feature_table(found.report)
    drifted = found.report.drifted_features
    console.print(
        f"version {found.version}: {found.n_rows} rows of {path} ({chosen} engine): "
        + (f"[red]drift[/] on {', '.join(drifted)}" if found.report.dataset_drift else "no drift")
    )


def _span(ctx: typer.Context, version: str | None, days: int, as_json: bool) -> None:
    from mloop.monitor.profiles import span_drift

    found = span_drift(project(ctx), version, days)
    if as_json:
        emit_json(found.to_dict())
        return
    _feature_table(found.report)
    stored = sum(1 for d in found.days if d.source == "stored")
    drifted = found.report.drifted_features
    console.print(
        f"version {found.version}: {found.n_rows} rows over {len(found.days)} days ({stored} from stored daily "
        f"profiles; {found.span.rows_read} rows read now): "
        + (f"[red]drift[/] on {', '.join(drifted)}" if found.report.dataset_drift else "no drift")
    )
    for note in found.span.notes:
        console.print(f"[yellow]note:[/] {note}")


def _feature_table(report: DriftReport) -> None:
    from mloop.terminal import new_table

    features = new_table(
        "feature", "kind", "psi", "test", "p-value", "drifted", title="drift per feature (top 10 by PSI)"
    )
    for f in sorted(report.features, key=lambda f: -f.psi)[:10]:
        features.add_row(
            f.feature,
            f.kind,
            f"{f.psi:.3f}",
            f.test,
            f"{f.p_value:.2g}" if f.p_value is not None else "",
            "[red]yes[/]" if f.drifted else "no",
        )
    console.print(features)


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


def _report_check(outcome: Outcome[RetrainResult | Waiting], *, as_json: bool, verbose: bool) -> None:
    """One line per check of `mloop watch`: a failure on stderr (its traceback too with -v), else on stdout."""
    from mloop.retrain.watch import Waiting, describe

    result, error, number = outcome.result, outcome.error, outcome.check
    if error is not None:
        if as_json:
            line = {
                "check": number,
                "failed": describe(error),
                "error": type(error).__name__,
                "failures": outcome.failures,
                "next_in_s": outcome.next_in,
            }
            typer.echo(json.dumps(line))
        else:
            retry = "" if outcome.next_in is None else f"; retrying in {outcome.next_in:g}s"
            streak = f" ({outcome.failures} failed checks in a row)" if outcome.failures > 1 else ""
            text = f"check {number} failed: {describe(error)}{retry}{streak}"
            # soft_wrap: one line however wide (a daemon's log is read line by line); a message is no markup
            err_console.print(text, markup=False, highlight=False, soft_wrap=True)
        if verbose:
            import traceback

            typer.echo("".join(traceback.format_exception(error)), err=True, nl=False)
    elif isinstance(result, Waiting):
        if as_json:
            typer.echo(json.dumps({"check": number, "waiting": result.message}))
        else:
            console.print(f"waiting: {result.message}")
    elif result is not None:
        if as_json:
            typer.echo(json.dumps({"check": number, **_retrain_summary(result)}))
        elif result.version is None:
            blockers = "; ".join(result.decision.blockers)
            console.print(f"no retraining needed{': ' + blockers if blockers else ''}")
        else:
            verdict = "promoted" if result.promoted else "kept the champion"
            console.print(f"retrained → version {result.version.version}: {verdict}")


@app.command()
def watch(
    ctx: typer.Context,
    interval: Annotated[float, typer.Option(help="Seconds between checks.")] = 60.0,
    cycles: Annotated[int | None, typer.Option(help="Stop after this many checks (default: run until Ctrl-C).")] = None,
    backoff: Annotated[
        float, typer.Option(min=0.001, help="Seconds before retrying a failed check; doubles while checks fail.")
    ] = 1.0,
    max_backoff: Annotated[float, typer.Option(min=0.001, help="Longest wait between failed checks.")] = 300.0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per check, a line each.")] = False,
) -> None:
    """Run the retraining controller as a daemon: monitor, retrain if needed, repeat.

    A failed check (MLflow or the database down, ...) is reported and retried after a backoff; a broken
    mloop.yaml, Ctrl-C and SIGTERM stop it. With --cycles, a last check that failed sets the exit code.
    """
    import functools
    import sys

    from mloop.cli.main import exit_code
    from mloop.errors import MloopError
    from mloop.retrain.watch import Backoff, check, run_watch, sigterm_exits

    proj = project(ctx)  # a broken mloop.yaml stops the daemon here, before any check
    report = functools.partial(_report_check, as_json=as_json, verbose=bool(ctx.obj.get("verbose")))

    try:
        with sigterm_exits():  # SIGTERM: SystemExit(143), at once, wherever the loop is
            last = run_watch(
                lambda: check(proj),
                report,
                interval=interval,
                cycles=cycles,
                backoff=Backoff(initial=backoff, maximum=max_backoff),
            )
    except KeyboardInterrupt:
        # 130, the shell's code for Ctrl-C, without the rest of the CLI's handling in between.
        sys.exit(130)
    if last is not None and last.error is not None:  # --cycles ran out on a failure: say so to the caller
        sys.exit(exit_code(last.error) if isinstance(last.error, MloopError) else 1)

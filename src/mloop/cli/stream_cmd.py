"""`mloop stream --source URI --sink URI`: score an event stream with the champion."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from mloop.cli.app import JsonOption, app, console, emit_json, err_console, project

URIS = "redis://HOST:PORT/DB?stream=NAME, nats://HOST:PORT?stream=NAME&subject=SUBJECT or kafka://HOST:PORT?topic=NAME"


@app.command("stream")
def stream(
    ctx: typer.Context,
    source: Annotated[str, typer.Option(help=f"Events to score: {URIS}.")],
    sink: Annotated[str, typer.Option(help="Where answers go (a URI like --source).")],
    group: Annotated[str | None, typer.Option(help="Consumer group (default mloop-PROJECT).")] = None,
    consumer: Annotated[str | None, typer.Option(help="This consumer in the group (default: host name).")] = None,
    dead_letter: Annotated[
        str | None, typer.Option(help="Where bad events go, with the reason (default: the source stream + -dead).")
    ] = None,
    labels: Annotated[
        str | None, typer.Option(help='Label events {"request_id": …, "label": …} to attach to the log.')
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Events read and scored together at most.")] = 500,
    linger_ms: Annotated[float, typer.Option(min=0, help="How long to wait for a fuller batch.")] = 5.0,
    idle_exit: Annotated[
        float | None, typer.Option(help="Stop after this many seconds without events (default: run until SIGTERM).")
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Address of the /metrics endpoint.")] = "127.0.0.1",
    metrics_port: Annotated[int, typer.Option(min=0, help="Port of the /metrics endpoint (0: none).")] = 9109,
    as_json: JsonOption = False,
) -> None:
    """Score events from a Redis stream, NATS JetStream or Kafka topic; each answer reaches the sink once."""
    from mloop.serve.stream.consumer import StreamSettings
    from mloop.serve.stream.run import StreamOptions, run_stream

    _log_to_stderr()
    settings = StreamSettings(batch_size=batch_size, linger=linger_ms / 1000, idle_exit=idle_exit)
    options = StreamOptions(source, sink, group, consumer, dead_letter, labels, metrics_host, metrics_port)
    summary = run_stream(project(ctx), options, settings)
    if as_json:
        emit_json(summary.to_dict())
        return
    rate = summary.to_dict()["events_per_second"]
    console.print(
        f"[green]stream stopped[/]: {summary.read} events read, {summary.written} answers, "
        f"{summary.dead_letters} dead letters, {summary.labels} labels; versions {', '.join(summary.versions) or '-'}"
        + (f"; {rate:,.0f} events/s" if rate else "")
    )


def _log_to_stderr() -> None:
    """A long-running consumer says what it does (reloads, redeliveries, outages) on stderr."""
    logger = logging.getLogger("mloop")
    if not logger.handlers:
        handler = logging.StreamHandler(err_console.file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)

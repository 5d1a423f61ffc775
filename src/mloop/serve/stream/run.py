"""Start a stream consumer from URIs: the adapters, the metrics endpoint and the signal handlers."""

from __future__ import annotations

import asyncio
import signal
import socket
from dataclasses import dataclass

from mloop.errors import StreamError
from mloop.project import Project
from mloop.serve.stream.brokers import sink_of, source_of
from mloop.serve.stream.consumer import Endpoints, StreamConsumer, StreamSettings, StreamSummary
from mloop.serve.stream.metrics import StreamMetrics
from mloop.serve.stream.uris import parse_stream_uri

DEAD_SUFFIX = "-dead"


@dataclass(frozen=True)
class StreamOptions:
    source: str
    sink: str
    group: str | None = None
    consumer: str | None = None
    dead_letter: str | None = None
    labels: str | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0  # 0: no metrics endpoint


def endpoints_of(project: Project, options: StreamOptions) -> Endpoints:
    """The adapters of ``options``' URIs; dead letters default to the source's stream + ``-dead``."""
    source = parse_stream_uri(options.source, "--source")
    sink = parse_stream_uri(options.sink, "--sink")
    if source.label == sink.label:
        raise StreamError(f"--source and --sink are the same stream ({source.label}): answers would be read as events")
    dead = source.sibling(DEAD_SUFFIX)
    if options.dead_letter:
        dead = parse_stream_uri(options.dead_letter, "--dead-letter")
    group = options.group or f"mloop-{project.name}"
    consumer = options.consumer or socket.gethostname()
    labels = labels_dead = None
    if options.labels:
        label_target = parse_stream_uri(options.labels, "--labels")
        labels = source_of(label_target, group, consumer)
        labels_dead = sink_of(label_target.sibling(DEAD_SUFFIX), f"{group}-labels")
    return Endpoints(
        name=source.label,
        source=source_of(source, group, consumer),
        sink=sink_of(sink, group),
        dead=sink_of(dead, f"{group}-dead"),
        labels=labels,
        labels_dead=labels_dead,
    )


def run_stream(project: Project, options: StreamOptions, settings: StreamSettings) -> StreamSummary:
    """Consume until SIGTERM/SIGINT (a graceful drain) or ``settings.idle_exit`` seconds without events."""
    endpoints = endpoints_of(project, options)
    metrics = StreamMetrics(endpoints.name)
    if options.metrics_port:
        from prometheus_client import start_http_server

        try:
            start_http_server(options.metrics_port, options.metrics_host, registry=metrics.registry)
        except OSError as exc:
            raise StreamError(
                f"cannot serve metrics on {options.metrics_host}:{options.metrics_port}: {exc}; "
                "choose another --metrics-port (0: none)"
            ) from None
    consumer = StreamConsumer(project, endpoints, settings, metrics)
    return asyncio.run(_run(consumer))


async def _run(consumer: StreamConsumer) -> StreamSummary:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, consumer.stop)
    try:
        return await consumer.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


__all__ = ["StreamOptions", "endpoints_of", "run_stream"]

"""Prometheus metrics of a stream consumer, named like the server's (``mloop_…``), on their own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from mloop.serve.metrics import DURATION_BUCKETS

BATCH_EVENT_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
READ, WRITTEN, DEAD_LETTER = "read", "written", "dead_letter"


class StreamMetrics:
    """Events by outcome, consumer lag, batch sizes and durations of one consumer (label ``source``)."""

    def __init__(self, source: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.source = source
        self.events = Counter(
            "mloop_stream_events",
            "Events by outcome: read from the source, answers written to the sink, events dead-lettered.",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "mloop_stream_lag",
            "Events in the source not yet acknowledged by the consumer group.",
            ["source"],
            registry=self.registry,
        )
        self.batch_duration = Histogram(
            "mloop_stream_batch_duration_seconds",
            "Seconds from reading a batch to acknowledging it (scored, logged, written).",
            ["source"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.batch_events = Histogram(
            "mloop_stream_batch_events",
            "Events in each batch read from the source.",
            ["source"],
            buckets=BATCH_EVENT_BUCKETS,
            registry=self.registry,
        )
        self.model_info = Gauge(
            "mloop_model_info", "The model version answering (value 1).", ["version", "alias"], registry=self.registry
        )
        self.log_dropped = Counter(
            "mloop_prediction_log_dropped",
            "Prediction rows dropped because the log writer was full or failed (must stay 0).",
            registry=self.registry,
        )
        self.labels_attached = Counter(
            "mloop_stream_labels",
            "Labels read from the label stream, by outcome: attached to a logged prediction or dead-lettered.",
            ["source", "outcome"],
            registry=self.registry,
        )
        for outcome in (READ, WRITTEN, DEAD_LETTER):
            self.events.labels(source, outcome)

    def count(self, outcome: str, n: int) -> None:
        if n:
            self.events.labels(self.source, outcome).inc(n)

    def set_model(self, version: str, alias: str, previous: str | None) -> None:
        if previous is not None and previous != version:
            self.model_info.remove(previous, alias)
        self.model_info.labels(version, alias).set(1)


__all__ = ["DEAD_LETTER", "READ", "WRITTEN", "StreamMetrics"]

"""Broker adapters of ``mloop stream``, chosen by the URI's scheme."""

from __future__ import annotations

from mloop.errors import StreamError
from mloop.serve.stream.brokers.base import Event, Output, Sink, Source
from mloop.serve.stream.uris import StreamTarget


def source_of(target: StreamTarget, group: str, consumer: str) -> Source:
    """The adapter reading ``target`` as ``consumer`` of ``group``."""
    if target.kind == "redis":
        from mloop.serve.stream.brokers.redis_streams import RedisSource

        return RedisSource(target, group, consumer)
    if target.kind == "nats":
        from mloop.serve.stream.brokers.nats_jetstream import NatsSource

        return NatsSource(target, group, consumer)
    if target.kind == "kafka":
        from mloop.serve.stream.brokers.kafka import KafkaSource

        return KafkaSource(target, group, consumer)
    raise StreamError(f"{target.label}: no adapter reads {target.scheme}:// streams")


def sink_of(target: StreamTarget, writer_id: str) -> Sink:
    """The adapter writing to ``target``; ``writer_id`` names the writer where the broker needs one (Kafka)."""
    if target.kind == "redis":
        from mloop.serve.stream.brokers.redis_streams import RedisSink

        return RedisSink(target)
    if target.kind == "nats":
        from mloop.serve.stream.brokers.nats_jetstream import NatsSink

        return NatsSink(target)
    if target.kind == "kafka":
        from mloop.serve.stream.brokers.kafka import KafkaSink

        return KafkaSink(target, writer_id)
    raise StreamError(f"{target.label}: no adapter writes {target.scheme}:// streams")


__all__ = ["Event", "Output", "Sink", "Source", "sink_of", "source_of"]

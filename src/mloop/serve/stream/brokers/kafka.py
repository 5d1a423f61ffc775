"""Kafka through aiokafka. UNTESTED: no Kafka broker can be installed from the package registries this
project builds with, so this adapter is not claimed in the README's feature list (docs/streaming.md).

A consumer group reads with auto-commit off; ``ack`` commits the offsets after the batch's answers are
written. Answers are keyed by request id on an idempotent producer, which removes the producer's own
retries but not a batch written again after a crash: give the sink topic ``cleanup.policy=compact`` (or
have its reader keep the last record per key) for each answer once as seen by the reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mloop.errors import StreamError
from mloop.serve.stream.brokers.base import Event, Output
from mloop.serve.stream.uris import StreamTarget


def _aiokafka() -> Any:
    try:
        import aiokafka  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise StreamError("Kafka streams need the aiokafka package: pip install 'mloop[stream]'") from None
    return aiokafka


def _failed(target: StreamTarget, doing: str, exc: Exception) -> StreamError:
    return StreamError(f"{target.label}: cannot {doing}: {exc}")


class KafkaSource:
    def __init__(self, target: StreamTarget, group: str, consumer: str) -> None:
        self.target = target
        self.group = group
        self.consumer_id = consumer
        self._consumer: Any = None

    async def open(self) -> None:
        aiokafka = _aiokafka()
        self._consumer = aiokafka.AIOKafkaConsumer(
            self.target.name,
            bootstrap_servers=f"{self.target.host}:{self.target.port}",
            group_id=self.group,
            client_id=self.consumer_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        try:
            await self._consumer.start()
        except Exception as exc:  # noqa: BLE001 - aiokafka raises its own and OS errors
            raise _failed(self.target, "connect", exc) from None

    async def read(self, max_events: int, wait_seconds: float) -> list[Event]:
        try:
            batches = await self._consumer.getmany(timeout_ms=int(wait_seconds * 1000), max_records=max_events)
        except Exception as exc:  # noqa: BLE001
            raise _failed(self.target, "read", exc) from None
        return [
            Event(f"{tp.partition}:{message.offset}", message.value or b"", handle=(tp, message.offset))
            for tp, messages in batches.items()
            for message in messages
        ]

    async def ack(self, events: Sequence[Event]) -> None:
        offsets: dict[Any, int] = {}
        for event in events:
            tp, offset = event.handle
            offsets[tp] = max(offsets.get(tp, -1), offset + 1)
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except Exception as exc:  # noqa: BLE001
            raise _failed(self.target, "commit offsets", exc) from None

    async def lag(self) -> int | None:
        """The group's lag over every partition of the topic (committed offset to end), as on Redis and NATS:
        each consumer of the group reports the same figure, so a scaler takes the max across replicas."""
        aiokafka = _aiokafka()
        try:
            partitions = [
                aiokafka.TopicPartition(self.target.name, p)
                for p in self._consumer.partitions_for_topic(self.target.name) or ()
            ]
            ends = await self._consumer.end_offsets(partitions)
            behind = 0
            for tp in partitions:
                committed = await self._consumer.committed(tp)
                behind += max(0, int(ends[tp]) - int(committed or 0))
            return behind
        except Exception:  # noqa: BLE001 - lag is best effort
            return None

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()


class KafkaSink:
    def __init__(self, target: StreamTarget, writer_id: str) -> None:
        self.target = target
        self.writer_id = writer_id
        self._producer: Any = None

    async def open(self) -> None:
        aiokafka = _aiokafka()
        self._producer = aiokafka.AIOKafkaProducer(
            bootstrap_servers=f"{self.target.host}:{self.target.port}",
            client_id=self.writer_id,
            enable_idempotence=True,
        )
        try:
            await self._producer.start()
        except Exception as exc:  # noqa: BLE001
            raise _failed(self.target, "connect", exc) from None

    async def write(self, outputs: Sequence[Output]) -> int:
        try:
            futures = [await self._producer.send(self.target.name, o.data, key=o.id.encode()) for o in outputs]
            for future in futures:
                await future
        except Exception as exc:  # noqa: BLE001
            raise _failed(self.target, "write", exc) from None
        return len(outputs)  # a repeat is only removed by compaction, so each counts as written

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()


__all__ = ["KafkaSink", "KafkaSource"]

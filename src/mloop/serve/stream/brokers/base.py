"""What ``mloop stream`` needs of a broker: a ``Source`` to read and acknowledge events, a ``Sink`` to
write answers (and dead letters) idempotently by id. One adapter per broker implements both."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Event:
    """One message read: ``key`` is the broker's id of it (a Redis entry id, a JetStream sequence, a Kafka
    ``partition:offset``), stable across redeliveries; ``handle`` is what the adapter needs to ack it;
    ``problem`` says why the message holds no event (it goes to the dead letters with that reason)."""

    key: str
    data: bytes
    handle: Any = None
    problem: str | None = None


@dataclass(frozen=True)
class Output:
    """One message to write; ``id`` makes the write idempotent (the request id, or the dead event's id)."""

    id: str
    data: bytes


class Source(Protocol):
    async def open(self) -> None:
        """Connect, and create the consumer group (or durable consumer) if it is missing."""

    async def read(self, max_events: int, wait_seconds: float) -> list[Event]:
        """Up to ``max_events`` events, waiting at most ``wait_seconds`` for the first; redelivers what a
        crashed consumer had read but not acknowledged."""
        ...

    async def ack(self, events: Sequence[Event]) -> None:
        """Mark ``events`` done: they are not delivered again."""

    async def lag(self) -> int | None:
        """Events of the stream not yet acknowledged by the group (None where the broker cannot say)."""
        ...

    async def close(self) -> None: ...


class Sink(Protocol):
    async def open(self) -> None: ...

    async def write(self, outputs: Sequence[Output]) -> int:
        """Write ``outputs``, skipping any whose id was written before; returns how many were new."""
        ...

    async def close(self) -> None: ...

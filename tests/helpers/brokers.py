"""Real message brokers for stream tests: Redis (127.0.0.1:6379) and NATS JetStream (127.0.0.1:4222).

Each ``Broker`` makes uniquely named streams, writes events, reads back what a consumer wrote and deletes
its streams at the end. A broker that is not running skips the test on a laptop and fails it on CI, where
``.ci/run`` starts both.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import pytest

REDIS = ("127.0.0.1", 6379)
NATS = ("127.0.0.1", 4222)


def require_port(address: tuple[str, int], what: str) -> None:
    """Skip (fail on CI) unless something listens at ``address``."""
    try:
        with socket.create_connection(address, timeout=2):
            return
    except OSError:
        message = f"{what} is not running on {address[0]}:{address[1]}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; .ci/run starts it on CI")
        pytest.skip(message)


class Broker(Protocol):
    name: str

    def uri(self, stream: str) -> str: ...

    def produce(self, stream: str, events: Sequence[bytes | dict[str, bytes]]) -> None: ...

    def messages(self, stream: str) -> list[dict[str, Any]]:
        """Every message of ``stream`` in order: ``{"data": bytes, "request_id": str | None}``."""
        ...

    def count(self, stream: str) -> int: ...

    def pending(self, stream: str, group: str) -> int: ...


class RedisBroker:
    name = "redis"

    def __init__(self) -> None:
        import redis

        self.prefix = f"t{uuid.uuid4().hex[:8]}"
        self.redis = redis.Redis(*REDIS)

    def uri(self, stream: str) -> str:
        return f"redis://{REDIS[0]}:{REDIS[1]}/0?stream={self.prefix}-{stream}"

    def produce(self, stream: str, events: Sequence[bytes | dict[str, bytes]]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for index, event in enumerate(events):
            pipe.xadd(f"{self.prefix}-{stream}", event if isinstance(event, dict) else {"data": event})
            if index % 1000 == 999:
                pipe.execute()
        pipe.execute()

    def messages(self, stream: str) -> list[dict[str, Any]]:
        out = []
        for _id, fields in self.redis.xrange(f"{self.prefix}-{stream}"):
            rid = fields.get(b"request_id")
            out.append({"data": fields.get(b"data", b""), "request_id": rid.decode() if rid else None})
        return out

    def count(self, stream: str) -> int:
        return int(self.redis.xlen(f"{self.prefix}-{stream}"))

    def pending(self, stream: str, group: str) -> int:
        return int(self.redis.xpending(f"{self.prefix}-{stream}", group)["pending"])

    def close(self) -> None:
        keys = list(self.redis.scan_iter(f"{self.prefix}-*")) + list(
            self.redis.scan_iter(f"mloop:written:{self.prefix}-*")
        )
        if keys:
            self.redis.delete(*keys)
        self.redis.close()


class NatsBroker:
    """JetStream streams named ``<prefix>_<stream>`` on subjects ``<prefix>.<stream>``."""

    name = "nats"

    def __init__(self, ack_wait: float = 2.0) -> None:
        self.prefix = f"T{uuid.uuid4().hex[:8]}"
        self.ack_wait = ack_wait
        self.streams: set[str] = set()

    def _stream(self, stream: str) -> str:
        return f"{self.prefix}_{stream.replace('-', '_')}"

    def uri(self, stream: str) -> str:
        name = self._stream(stream)
        self.streams.add(name)
        return f"nats://{NATS[0]}:{NATS[1]}?stream={name}&subject={self.prefix}.{stream}&ack_wait={self.ack_wait:g}"

    def _run(self, work: Any) -> Any:
        async def go() -> Any:
            import nats

            nc = await nats.connect(f"nats://{NATS[0]}:{NATS[1]}")
            try:
                return await work(nc, nc.jetstream())
            finally:
                await nc.close()

        return asyncio.run(go())

    def produce(self, stream: str, events: Sequence[bytes | dict[str, bytes]]) -> None:
        name, subject = self._stream(stream), f"{self.prefix}.{stream}"
        self.streams.add(name)

        async def work(nc: Any, js: Any) -> None:
            from nats.js.errors import NotFoundError

            try:
                await js.stream_info(name)
            except NotFoundError:
                await js.add_stream(name=name, subjects=[subject])
            for start in range(0, len(events), 500):
                chunk = events[start : start + 500]
                await asyncio.gather(
                    *(js.publish(subject, e if isinstance(e, bytes) else e.get("data", b"")) for e in chunk)
                )

        self._run(work)

    def messages(self, stream: str) -> list[dict[str, Any]]:
        name = self._stream(stream)

        async def work(nc: Any, js: Any) -> list[dict[str, Any]]:
            info = await js.stream_info(name)
            out = []
            for seq in range(info.state.first_seq, info.state.last_seq + 1) if info.state.messages else []:
                msg = await js.get_msg(name, seq)
                headers = msg.headers or {}
                out.append({"data": msg.data or b"", "request_id": headers.get("Nats-Msg-Id")})
            return out

        return list(self._run(work))

    def count(self, stream: str) -> int:
        name = self._stream(stream)

        async def work(nc: Any, js: Any) -> int:
            from nats.js.errors import NotFoundError

            try:
                return int((await js.stream_info(name)).state.messages)
            except NotFoundError:
                return 0

        return int(self._run(work))

    def pending(self, stream: str, group: str) -> int:
        name = self._stream(stream)

        async def work(nc: Any, js: Any) -> int:
            infos = await js.consumers_info(name)
            return sum(int(i.num_pending) + int(i.num_ack_pending) for i in infos)

        return int(self._run(work))

    def close(self) -> None:
        async def work(nc: Any, js: Any) -> None:
            for name in self.streams:
                try:
                    await js.delete_stream(name)
                except Exception:  # noqa: BLE001, S110 - a stream never made has nothing to delete
                    pass

        self._run(work)


@contextmanager
def broker(kind: str) -> Iterator[RedisBroker | NatsBroker]:
    """A ``Broker`` of ``kind`` ("redis" or "nats") whose streams are deleted afterwards."""
    if kind == "redis":
        require_port(REDIS, "Redis")
        made: RedisBroker | NatsBroker = RedisBroker()
    else:
        require_port(NATS, "NATS (JetStream)")
        made = NatsBroker()
    try:
        yield made
    finally:
        made.close()

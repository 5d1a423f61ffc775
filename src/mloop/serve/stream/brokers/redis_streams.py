"""Redis Streams: a consumer group reads (XREADGROUP), XACK acknowledges, and entries a crashed consumer
left pending are read again (its own, at start) or claimed (another's, XAUTOCLAIM after ``claim_idle``).

An event is an entry whose field ``data`` holds the JSON object of features. Answers are entries with
fields ``request_id`` and ``data``, written by a Lua script that adds an entry only if its id has no
marker key yet (``SET NX`` with a TTL, the same script, so atomic): a batch written again after a crash
adds nothing twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from mloop.errors import StreamError
from mloop.serve.stream.brokers.base import Event, Output
from mloop.serve.stream.uris import StreamTarget

log = logging.getLogger(__name__)

DEDUP_TTL_SECONDS = 7 * 24 * 3600  # an answer's marker outlives any realistic redelivery
CLAIM_IDLE_SECONDS = 30.0  # an entry pending this long at another consumer is taken over
CLAIM_EVERY_SECONDS = 10.0
DATA = b"data"

# KEYS[1]: the stream, KEYS[2]: the marker prefix; ARGV: ttl, maxlen (0: none), then id, data pairs.
_WRITE_ONCE = """
local added = 0
for i = 3, #ARGV, 2 do
  if redis.call('SET', KEYS[2] .. ARGV[i], '1', 'NX', 'EX', ARGV[1]) then
    if ARGV[2] ~= '0' then
      redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'request_id', ARGV[i], 'data', ARGV[i + 1])
    else
      redis.call('XADD', KEYS[1], '*', 'request_id', ARGV[i], 'data', ARGV[i + 1])
    end
    added = added + 1
  end
end
return added
"""


def _client(target: StreamTarget) -> Any:
    try:
        import redis.asyncio as redis_asyncio
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise StreamError("Redis streams need the redis package: pip install 'mloop[stream]'") from None
    return redis_asyncio.Redis(
        host=target.host,
        port=target.port,
        db=target.db,
        username=target.username,
        password=target.password,
        ssl=target.scheme == "rediss",
        socket_connect_timeout=5,
        health_check_interval=30,
    )


def _failed(target: StreamTarget, doing: str, exc: Exception) -> StreamError:
    return StreamError(f"{target.label}: cannot {doing}: {exc}")


class RedisSource:
    """Reads ``target``'s stream as consumer ``consumer`` of ``group``."""

    def __init__(self, target: StreamTarget, group: str, consumer: str, claim_idle: float = CLAIM_IDLE_SECONDS):
        self.target = target
        self.group = group
        self.consumer = consumer
        self.claim_idle = claim_idle
        self._redis: Any = None
        self._own_pending = True  # at start, first what this consumer read before it was stopped
        self._next_claim = 0.0

    async def open(self) -> None:
        import redis.exceptions

        self._redis = _client(self.target)
        try:
            await self._redis.xgroup_create(self.target.name, self.group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise _failed(self.target, f"create consumer group {self.group!r}", exc) from None
        except (redis.exceptions.RedisError, OSError) as exc:
            raise _failed(self.target, "connect", exc) from None

    async def read(self, max_events: int, wait_seconds: float) -> list[Event]:
        import redis.exceptions

        try:
            if self._own_pending:
                entries = await self._read("0", max_events, None)
                if entries:
                    return entries
                self._own_pending = False
            if time.monotonic() >= self._next_claim:
                self._next_claim = time.monotonic() + CLAIM_EVERY_SECONDS
                claimed = await self._claim(max_events)
                if claimed:
                    return claimed
            return await self._read(">", max_events, max(1, int(wait_seconds * 1000)))
        except (redis.exceptions.RedisError, OSError) as exc:
            raise _failed(self.target, "read", exc) from None

    async def _read(self, start: str, count: int, block_ms: int | None) -> list[Event]:
        reply = await self._redis.xreadgroup(
            self.group, self.consumer, {self.target.name: start}, count=count, block=block_ms
        )
        return [_event(entry_id, fields) for _stream, entries in reply or [] for entry_id, fields in entries]

    async def _claim(self, count: int) -> list[Event]:
        """Entries another consumer read and did not acknowledge for ``claim_idle`` seconds."""
        reply = await self._redis.xautoclaim(
            self.target.name, self.group, self.consumer, int(self.claim_idle * 1000), "0-0", count=count
        )
        entries = reply[1] if len(reply) > 1 else []
        events = [_event(entry_id, fields) for entry_id, fields in entries if fields is not None]
        if events:
            log.warning("%s: took over %d event(s) another consumer left pending", self.target.label, len(events))
        return events

    async def ack(self, events: Sequence[Event]) -> None:
        import redis.exceptions

        if not events:
            return
        try:
            await self._redis.xack(self.target.name, self.group, *[event.key for event in events])
        except (redis.exceptions.RedisError, OSError) as exc:
            raise _failed(self.target, "acknowledge", exc) from None

    async def lag(self) -> int | None:
        """Entries not yet delivered to the group plus those delivered and not acknowledged."""
        import redis.exceptions

        try:
            groups = await self._redis.xinfo_groups(self.target.name)
        except (redis.exceptions.RedisError, OSError):
            return None
        for group in groups:
            name = group.get("name")
            if (name.decode() if isinstance(name, bytes) else name) == self.group:
                lag = group.get("lag")
                return int(group.get("pending") or 0) + (int(lag) if lag is not None else 0)
        return None

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


class RedisSink:
    """Adds answers to ``target``'s stream, each id once."""

    def __init__(self, target: StreamTarget) -> None:
        self.target = target
        self.ttl = int(target.options.get("dedup_ttl", DEDUP_TTL_SECONDS))
        self.maxlen = int(target.options.get("maxlen", 0))
        self.prefix = f"mloop:written:{target.name}:"
        self._redis: Any = None
        self._script: Any = None

    async def open(self) -> None:
        import redis.exceptions

        self._redis = _client(self.target)
        try:
            await self._redis.ping()
        except (redis.exceptions.RedisError, OSError) as exc:
            raise _failed(self.target, "connect", exc) from None
        self._script = self._redis.register_script(_WRITE_ONCE)

    async def write(self, outputs: Sequence[Output]) -> int:
        import redis.exceptions

        if not outputs:
            return 0
        args: list[Any] = [self.ttl, self.maxlen]
        for output in outputs:
            args += [output.id, output.data]
        try:
            return int(await self._script(keys=[self.target.name, self.prefix], args=args))
        except (redis.exceptions.RedisError, OSError) as exc:
            raise _failed(self.target, "write", exc) from None

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


def _event(entry_id: bytes | str, fields: dict[bytes, bytes]) -> Event:
    key = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    if DATA not in fields:
        names = ", ".join(sorted(f.decode(errors="replace") for f in fields)) or "none"
        return Event(key, b"", problem=f"the entry has no field 'data' (its fields: {names})")
    return Event(key, fields[DATA])


__all__ = ["RedisSink", "RedisSource"]

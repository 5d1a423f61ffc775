"""NATS JetStream: events are read through a durable pull consumer named after the group, which every
process of the group shares (JetStream hands each message to one of them); each message is acknowledged
explicitly, and one not acknowledged within ``ack_wait`` is delivered again, to whichever process asks.

An event is a message on the source subject whose payload is the JSON object of features; its key is the
stream sequence, the same on every redelivery. Answers are published to the sink subject with the header
``Nats-Msg-Id`` set to the answer's id, so JetStream's duplicate window drops a batch written again after a
crash.

Redelivery after a crash takes up to ``ack_wait``: a short one brings a killed process's events back soon,
but a batch that takes longer than ``ack_wait`` to score is delivered to a second process meanwhile (the
sink drops the duplicate answers, the work is done twice). ``close`` hands back (naks) what was read and not
acknowledged, so a graceful stop or restart does not wait at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import ssl
from collections.abc import Sequence
from typing import Any

from mloop.errors import StreamError
from mloop.serve.stream.brokers.base import Event, Output
from mloop.serve.stream.uris import StreamTarget

log = logging.getLogger(__name__)

ACK_WAIT_SECONDS = 30.0  # longer than any batch takes to score, short enough to recover a crash soon
MAX_ACK_PENDING = 20_000  # read and not yet acknowledged, across all processes of the group
DEDUP_WINDOW_SECONDS = 24 * 3600  # the sink stream's duplicate window, unless ``dedup_window`` says
CONNECT_SECONDS = 10.0  # the first connection; after it the client reconnects for as long as it takes
REQUEST_SECONDS = 5.0  # a JetStream API call, a flush, a batch of publish acknowledgements (per 10,000)
MIN_FETCH_SECONDS = 0.01  # nats-py refuses a fetch without a timeout
MSG_ID = "Nats-Msg-Id"
STREAM_NAME_IN_USE = 10058  # JetStream's err_code when another process created the stream first
_INVALID = re.compile(r"[^A-Za-z0-9_-]")


def _failed(target: StreamTarget, doing: str, exc: object) -> StreamError:
    return StreamError(f"{target.label}: cannot {doing}: {exc}")


def durable_name(group: str) -> str:
    """``group`` as a durable consumer name: characters NATS rejects (``.``, ``*``, ``>``, spaces, slashes…)
    become ``_``, with a hash of the group so that ``a.b`` and ``a_b`` stay two consumers."""
    name = _INVALID.sub("_", group)[:200]
    if name != group or not name:
        name = f"{name}_{hashlib.sha256(group.encode()).hexdigest()[:8]}".lstrip("_")
    return name


class _Connection:
    """One NATS connection and its JetStream context, reconnecting on its own once connected."""

    def __init__(self, target: StreamTarget, name: str, connect_seconds: float) -> None:
        self.target = target
        self.name = name
        self.connect_seconds = connect_seconds
        self.nc: Any = None
        self.js: Any = None
        self._connected = False
        self._down = False  # between a disconnection and the reconnection: one warning, not one per retry
        self._errors: list[Exception] = []

    async def open(self) -> None:
        try:
            import nats
            from nats.aio.client import Client
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise StreamError("NATS JetStream needs the nats-py package: pip install 'mloop[stream]'") from None
        scheme = "tls" if self.target.scheme == "tls" else "nats"
        options: dict[str, Any] = {}
        if self.target.username:
            options["user"] = self.target.username
            options["password"] = self.target.password
        if scheme == "tls":
            options["tls"] = ssl.create_default_context()
        self.nc = Client()
        try:
            # nats-py retries the first connection like a reconnect (forever here), so bound it.
            await asyncio.wait_for(
                self.nc.connect(
                    servers=[f"{scheme}://{self.target.host}:{self.target.port}"],
                    name=self.name,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    connect_timeout=int(min(self.connect_seconds, REQUEST_SECONDS)) or 1,
                    reconnect_time_wait=2,
                    max_reconnect_attempts=-1,
                    **options,
                ),
                self.connect_seconds,
            )
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            await self.nc.close()
            reason = self._errors[-1] if self._errors else (str(exc) or type(exc).__name__)
            raise _failed(self.target, "connect", f"{reason} (gave up after {self.connect_seconds:g} s)") from None
        self._connected = True
        self.js = self.nc.jetstream(timeout=REQUEST_SECONDS)

    async def ensure_stream(self, subject: str, duplicate_window: float | None = None) -> None:
        """Create the stream on ``subject`` if it is missing; an existing one is left as it is."""
        import nats
        from nats.js.errors import APIError, NotFoundError

        name = self.target.name
        try:
            info = await self.js.stream_info(name)
        except NotFoundError:
            info = None
        except (nats.errors.Error, OSError) as exc:
            raise _failed(self.target, f"look up stream {name!r}", exc) from None
        if info is None:
            options: dict[str, Any] = {"name": name, "subjects": [subject]}
            if duplicate_window is not None:
                options["duplicate_window"] = duplicate_window
            try:
                await self.js.add_stream(**options)
            except APIError as exc:
                if exc.err_code != STREAM_NAME_IN_USE:  # not a concurrent start of another process
                    raise _failed(self.target, f"create stream {name!r} on subject {subject!r}", exc) from None
            except (nats.errors.Error, OSError) as exc:
                raise _failed(self.target, f"create stream {name!r} on subject {subject!r}", exc) from None
            return
        window = float(info.config.duplicate_window or 0)
        if duplicate_window is not None and window < duplicate_window:
            log.warning(
                "%s: the stream keeps message ids for %g s only, not %g s: an answer written again later is "
                "stored twice",
                self.target.label,
                window,
                duplicate_window,
            )

    def require_connected(self, doing: str) -> None:
        """Fail now rather than let nats-py buffer the request until it reconnects and time out later."""
        if not self.nc.is_connected:
            raise _failed(self.target, doing, "not connected to the server (reconnecting)")

    async def flush(self) -> None:
        await self.nc.flush(timeout=int(REQUEST_SECONDS))

    async def close(self) -> None:
        self._connected = False  # nats-py reports the disconnection of a close too: not worth a warning
        if self.nc is not None:
            await self.nc.close()

    async def _on_error(self, exc: Exception) -> None:
        if not self._connected:
            self._errors.append(exc)
        elif not self._down:
            log.warning("%s: %s", self.target.label, exc or type(exc).__name__)
        else:
            log.debug("%s: still reconnecting: %s", self.target.label, exc)

    async def _on_disconnected(self) -> None:
        if self._connected and not self._down:
            self._down = True
            log.warning("%s: disconnected, reconnecting", self.target.label)

    async def _on_reconnected(self) -> None:
        self._down = False
        log.warning("%s: reconnected", self.target.label)


class NatsSource:
    """Reads ``target``'s subject through the durable consumer of ``group``; ``consumer`` names the
    connection (JetStream consumers are shared by the group, not one per process)."""

    def __init__(
        self,
        target: StreamTarget,
        group: str,
        consumer: str,
        ack_wait: float | None = None,
        max_ack_pending: int = MAX_ACK_PENDING,
        connect_seconds: float = CONNECT_SECONDS,
    ) -> None:
        self.target = target
        self.group = group
        self.consumer = consumer
        self.durable = durable_name(group)
        self.ack_wait = ack_wait if ack_wait is not None else float(target.options.get("ack_wait", ACK_WAIT_SECONDS))
        self.max_ack_pending = max_ack_pending
        self._conn = _Connection(target, f"mloop-stream {group}/{consumer}", connect_seconds)
        self._sub: Any = None
        self._unacked: dict[str, Any] = {}  # key -> message, naked at close so it comes back at once

    async def open(self) -> None:
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        await self._conn.open()
        subject = self.target.subject or self.target.name
        try:
            await self._conn.ensure_stream(subject)
            config = ConsumerConfig(
                name=self.durable,
                durable_name=self.durable,
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self.ack_wait,
                max_ack_pending=self.max_ack_pending,
                filter_subject=subject,
            )
            # Create, or update an existing one's ack_wait and max_ack_pending (that applies to what is
            # pending already): every process of the group runs with the same settings.
            await self._conn.js.add_consumer(self.target.name, config)
            self._sub = await self._conn.js.pull_subscribe_bind(self.durable, stream=self.target.name)
        except StreamError:
            await self._conn.close()
            raise
        except (nats.errors.Error, OSError) as exc:
            await self._conn.close()
            raise _failed(self.target, f"create durable consumer {self.durable!r} on {subject!r}", exc) from None

    async def read(self, max_events: int, wait_seconds: float) -> list[Event]:
        import nats

        self._conn.require_connected("read")
        try:
            messages = await self._sub.fetch(max_events, timeout=max(wait_seconds, MIN_FETCH_SECONDS))
        except TimeoutError:  # nats-py's fetch timeouts subclass it: nothing arrived in time
            if not self._conn.nc.is_connected:
                raise _failed(self.target, "read", "not connected to the server (reconnecting)") from None
            return []
        except (nats.errors.Error, OSError) as exc:
            raise _failed(self.target, "read", exc) from None
        events = []
        for message in messages:
            key = str(message.metadata.sequence.stream)
            self._unacked[key] = message
            events.append(Event(key, message.data, handle=message))
        return events

    async def ack(self, events: Sequence[Event]) -> None:
        """Acknowledge each message without waiting, then the last one with a reply: the server applies a
        connection's acks in order, so when it answers, all of them count (``lag`` included)."""
        import nats

        messages = [event.handle for event in events if event.handle is not None]
        if not messages:
            return
        self._conn.require_connected("acknowledge")
        try:
            for message in messages[:-1]:
                try:
                    await message.ack()
                except nats.errors.MsgAlreadyAckdError:
                    pass
            try:
                await messages[-1].ack_sync(timeout=REQUEST_SECONDS)
            except nats.errors.MsgAlreadyAckdError:
                await self._conn.flush()
        except (nats.errors.Error, OSError) as exc:
            raise _failed(self.target, "acknowledge", exc) from None
        for event in events:
            self._unacked.pop(event.key, None)

    async def lag(self) -> int | None:
        """Messages not yet delivered to the group plus those delivered and not acknowledged."""
        import nats

        if not self._conn.nc.is_connected:
            return None
        try:
            info = await self._conn.js.consumer_info(self.target.name, self.durable, timeout=REQUEST_SECONDS)
        except (nats.errors.Error, OSError):
            return None
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def close(self) -> None:
        import nats

        if self._unacked and self._conn.nc is not None and self._conn.nc.is_connected:
            try:
                for message in self._unacked.values():
                    try:
                        await message.nak()
                    except nats.errors.MsgAlreadyAckdError:  # acked while the reply was lost
                        pass
                await self._conn.flush()
            except (nats.errors.Error, OSError) as exc:  # they come back after ack_wait instead
                log.warning("%s: cannot hand back %d event(s): %s", self.target.label, len(self._unacked), exc)
        self._unacked.clear()
        await self._conn.close()


class NatsSink:
    """Publishes answers to ``target``'s subject, each id stored once within the duplicate window."""

    def __init__(self, target: StreamTarget, connect_seconds: float = CONNECT_SECONDS) -> None:
        self.target = target
        self.subject = target.subject or target.name
        self.window = float(target.options.get("dedup_window", DEDUP_WINDOW_SECONDS))
        self._conn = _Connection(target, f"mloop-stream sink {target.name}", connect_seconds)

    async def open(self) -> None:
        await self._conn.open()
        try:
            await self._conn.ensure_stream(self.subject, duplicate_window=self.window)
        except StreamError:
            await self._conn.close()
            raise

    async def write(self, outputs: Sequence[Output]) -> int:
        import nats
        from nats.js.errors import NoStreamResponseError

        if not outputs:
            return 0
        self._conn.require_connected("write")
        futures: list[asyncio.Future[Any]] = []
        timeout = REQUEST_SECONDS * (1 + len(outputs) // 10_000)
        try:
            # One deadline for the batch: nats-py also holds a publish back while 4,000 await their ack.
            acks = await asyncio.wait_for(self._publish(outputs, futures), timeout)
        except NoStreamResponseError:
            self._cancel(futures)
            raise _failed(self.target, "write", f"no stream captures subject {self.subject!r}") from None
        except TimeoutError:
            self._cancel(futures)
            raise _failed(self.target, "write", f"no acknowledgement within {timeout:g} s") from None
        except (nats.errors.Error, OSError) as exc:
            self._cancel(futures)
            raise _failed(self.target, "write", exc) from None
        return sum(1 for ack in acks if not ack.duplicate)

    async def _publish(self, outputs: Sequence[Output], futures: list[asyncio.Future[Any]]) -> list[Any]:
        for output in outputs:
            # ``stream=`` makes JetStream refuse the message if another stream captures the subject.
            headers = {MSG_ID: output.id}
            futures.append(
                await self._conn.js.publish_async(self.subject, output.data, stream=self.target.name, headers=headers)
            )
        return list(await asyncio.gather(*futures))

    @staticmethod
    def _cancel(futures: Sequence[asyncio.Future[Any]]) -> None:
        for future in futures:
            future.cancel()

    async def close(self) -> None:
        await self._conn.close()


__all__ = ["NatsSink", "NatsSource", "durable_name"]

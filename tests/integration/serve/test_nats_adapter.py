"""The NATS JetStream adapter against a real server on 127.0.0.1:4222: a round trip of 1,000 events, the
events of a consumer that stopped (gracefully, or killed) delivered again with the same keys, answers
written twice stored once, and an unreachable server named in the error."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.helpers.brokers import NATS, require_port

from mloop.errors import StreamError
from mloop.serve.stream.brokers.base import Event, Output
from mloop.serve.stream.brokers.nats_jetstream import NatsSink, NatsSource, durable_name
from mloop.serve.stream.uris import StreamTarget, parse_stream_uri

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def names() -> Iterator[Callable[..., StreamTarget]]:
    """Targets on uniquely named streams, deleted afterwards."""
    require_port(NATS, "NATS (JetStream)")
    prefix = f"T{uuid.uuid4().hex[:8]}"
    made: list[str] = []

    def target(stream: str, query: str = "") -> StreamTarget:
        made.append(f"{prefix}_{stream}")
        return parse_stream_uri(f"nats://{NATS[0]}:{NATS[1]}?stream={prefix}_{stream}&subject={prefix}.{stream}{query}")

    yield target

    async def delete(nc: Any, js: Any) -> None:
        from nats.js.errors import NotFoundError

        for name in made:
            try:
                await js.delete_stream(name)
            except NotFoundError:
                pass

    _with_js(delete)


def _with_js(work: Callable[[Any, Any], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        import nats

        nc = await nats.connect(f"nats://{NATS[0]}:{NATS[1]}")
        try:
            return await work(nc, nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(go())


def _publish(target: StreamTarget, count: int) -> None:
    async def work(nc: Any, js: Any) -> None:
        from nats.js.errors import NotFoundError

        assert target.subject is not None
        try:
            await js.stream_info(target.name)
        except NotFoundError:
            await js.add_stream(name=target.name, subjects=[target.subject])
        for start in range(0, count, 500):
            futures = [
                await js.publish_async(target.subject, orjson.dumps({"Gr_Liv_Area": 1000 + i, "n": i}))
                for i in range(start, min(start + 500, count))
            ]
            await asyncio.gather(*futures)

    _with_js(work)


def _stored(target: StreamTarget) -> int:
    async def work(nc: Any, js: Any) -> int:
        return int((await js.stream_info(target.name)).state.messages)

    return int(_with_js(work))


async def _read_all(source: NatsSource, count: int, batch: int, seconds: float = 30.0) -> list[Event]:
    events: list[Event] = []
    deadline = time.monotonic() + seconds
    while len(events) < count and time.monotonic() < deadline:
        events += await source.read(batch, 1.0)
    return events


def test_round_trip_of_1000_events_then_no_lag(names: Callable[..., StreamTarget]) -> None:
    target = names("events")

    async def create() -> None:  # the source creates the stream and the consumer before any event exists
        source = NatsSource(target, "scorers", "c1")
        await source.open()
        assert await source.lag() == 0
        assert await source.read(10, 0.2) == []  # a fetch that times out is no events, not an error
        await source.close()

    async def consume() -> tuple[list[Event], int | None, int | None]:
        source = NatsSource(target, "scorers", "c1")
        await source.open()
        try:
            lag_before = await source.lag()
            events: list[Event] = []
            while len(events) < 1000:
                batch = await source.read(300, 2.0)
                assert batch, f"nothing more after {len(events)} events"
                await source.ack(batch)
                events += batch
            assert await source.read(10, 0.2) == []
            return events, lag_before, await source.lag()
        finally:
            await source.close()

    asyncio.run(create())
    _publish(target, 1000)
    events, lag_before, lag_after = asyncio.run(consume())
    assert lag_before == 1000 and lag_after == 0
    assert [int(e.key) for e in events] == list(range(1, 1001))  # keys are the stream sequences
    assert [orjson.loads(e.data)["n"] for e in events] == list(range(1000))
    assert all(e.problem is None for e in events)


def test_a_gracefully_closed_consumer_hands_its_events_back_at_once(names: Callable[..., StreamTarget]) -> None:
    target = names("events")
    _publish(target, 50)  # the stream exists already: the source binds to it without changing it

    async def run() -> tuple[list[Event], list[Event], float, int | None]:
        first = NatsSource(target, "scorers", "c1")  # default ack_wait of 30 s: only the nak can be fast
        await first.open()
        read = await _read_all(first, 50, 20)
        await first.close()
        second = NatsSource(target, "scorers", "c2")
        await second.open()
        try:
            started = time.monotonic()
            again = await _read_all(second, 50, 100, seconds=10)
            took = time.monotonic() - started
            await second.ack(again)
            return read, again, took, await second.lag()
        finally:
            await second.close()

    read, again, took, lag = asyncio.run(run())
    assert sorted(e.key for e in again) == sorted(e.key for e in read) and len(read) == 50
    assert {e.key: e.data for e in again} == {e.key: e.data for e in read}
    assert took < 5 and lag == 0


_CRASHING = """
import asyncio, os, sys
from mloop.serve.stream.brokers.nats_jetstream import NatsSource
from mloop.serve.stream.uris import parse_stream_uri

async def main() -> None:
    source = NatsSource(parse_stream_uri(sys.argv[1]), "scorers", "doomed")
    await source.open()
    events = []
    while len(events) < int(sys.argv[2]):
        events += await source.read(100, 1.0)
    print(" ".join(e.key for e in events), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_events_of_a_killed_consumer_come_back_after_ack_wait(names: Callable[..., StreamTarget]) -> None:
    target = names("events")
    uri = f"nats://{target.host}:{target.port}?stream={target.name}&subject={target.subject}"
    _publish(target, 120)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    # S603: a fixed script run by this interpreter.
    crashing = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", _CRASHING, uri, "120"], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    try:
        assert crashing.stdout is not None
        keys = crashing.stdout.readline().split()
        assert len(keys) == 120, f"the consumer read {len(keys)} events"
    finally:
        crashing.send_signal(signal.SIGKILL)  # no close, no nak: the server alone brings them back
        crashing.wait(timeout=10)
        if crashing.stdout is not None:
            crashing.stdout.close()

    async def run() -> tuple[list[Event], float, int | None]:
        # The killed process ran with ack_wait 30 s; opening with 2 s updates the shared durable consumer,
        # and the server applies the new ack_wait to what is pending already.
        source = NatsSource(target, "scorers", "revived", ack_wait=2.0)
        await source.open()
        try:
            started = time.monotonic()
            again = await _read_all(source, 120, 100, seconds=20)
            took = time.monotonic() - started
            await source.ack(again)
            return again, took, await source.lag()
        finally:
            await source.close()

    again, took, lag = asyncio.run(run())
    assert sorted(e.key for e in again) == sorted(keys)
    assert all(orjson.loads(e.data)["n"] == int(e.key) - 1 for e in again)
    assert took < 10 and lag == 0


def test_two_processes_of_a_group_share_the_durable_consumer(names: Callable[..., StreamTarget]) -> None:
    target = names("events")
    _publish(target, 400)

    async def run() -> tuple[list[Event], list[Event], int | None]:
        one, two = NatsSource(target, "a.b c", "one"), NatsSource(target, "a.b c", "two")
        await one.open()
        await two.open()
        try:
            first: list[Event] = []
            second: list[Event] = []
            while len(first) + len(second) < 400:
                a, b = await asyncio.gather(one.read(50, 1.0), two.read(50, 1.0))
                assert a or b
                await asyncio.gather(one.ack(a), two.ack(b))
                first, second = first + a, second + b
            return first, second, await one.lag()
        finally:
            await one.close()
            await two.close()

    first, second, lag = asyncio.run(run())
    keys = [e.key for e in first + second]
    assert len(keys) == len(set(keys)) == 400 and first and second and lag == 0


def test_durable_names_replace_what_nats_rejects() -> None:
    assert durable_name("scorers-1_a") == "scorers-1_a"
    odd = durable_name("a.b c>*/x")
    assert odd.startswith("a_b_c___x_") and all(c.isalnum() or c in "_-" for c in odd)
    assert durable_name("a.b") != durable_name("a_b")


def test_ack_wait_comes_from_the_uri_unless_given() -> None:
    target = parse_stream_uri("nats://h:4222?stream=S&ack_wait=2.5")
    assert NatsSource(target, "g", "c").ack_wait == 2.5
    assert NatsSource(target, "g", "c", ack_wait=7).ack_wait == 7
    assert NatsSource(parse_stream_uri("nats://h:4222?stream=S"), "g", "c").ack_wait == 30


def test_the_sink_stores_each_answer_once(names: Callable[..., StreamTarget]) -> None:
    target = names("answers", "&dedup_window=600")
    outputs = [Output(f"req-{i}", orjson.dumps({"request_id": f"req-{i}", "prediction": i})) for i in range(100)]

    async def run() -> tuple[int, int, int]:
        sink = NatsSink(target)
        await sink.open()
        try:
            first = await sink.write(outputs)
            second = await sink.write(outputs)
            mixed = await sink.write([*outputs[:10], Output("req-new", b"{}")])
            return first, second, mixed
        finally:
            await sink.close()

    assert asyncio.run(run()) == (100, 0, 1)
    assert _stored(target) == 101

    async def window(nc: Any, js: Any) -> float:
        return float((await js.stream_info(target.name)).config.duplicate_window)

    assert _with_js(window) == 600


def test_a_sink_on_a_subject_no_stream_captures_says_so(names: Callable[..., StreamTarget]) -> None:
    target = names("answers")

    async def run() -> None:
        sink = NatsSink(target)
        await sink.open()
        try:

            async def drop(nc: Any, js: Any) -> None:
                await js.delete_stream(target.name)

            await asyncio.to_thread(_with_js, drop)
            await sink.write([Output("req-1", b"{}")])
        finally:
            await sink.close()

    with pytest.raises(StreamError, match=rf"{re.escape(target.label)}: cannot write: no stream captures subject"):
        asyncio.run(run())


@pytest.mark.parametrize("host", ["no-such-host.invalid", "127.0.0.1"])
def test_an_unreachable_server_is_a_stream_error_naming_the_target(host: str) -> None:
    port = 1 if host == "127.0.0.1" else 4222  # nothing listens on port 1
    target = parse_stream_uri(f"nats://{host}:{port}?stream=events&subject=houses.in")

    async def run(opened: NatsSource | NatsSink) -> None:
        try:
            await opened.open()
        finally:
            await opened.close()

    for adapter in (NatsSource(target, "scorers", "c1", connect_seconds=1.5), NatsSink(target, connect_seconds=1.5)):
        with pytest.raises(
            StreamError, match=rf"^{re.escape(target.label)}: cannot connect: .+ \(gave up after 1.5 s\)"
        ):
            asyncio.run(run(adapter))

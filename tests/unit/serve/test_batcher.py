"""The micro-batcher: both bounds (rows, wait), answers delivered to the right request, failures isolated."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from mloop.serve.batcher import BatchRecord, MicroBatcher

# An idle event loop fires a timer within a few milliseconds of its deadline; this bounds how late
# a busy test machine may be, not how long the batcher chooses to wait.
TIMER_SLACK = 0.25


class Model:
    """Scores a record as ``record["x"] * factor``; records whose x is "boom" make the call fail."""

    def __init__(self, factor: float = 2.0) -> None:
        self.factor = factor
        self.calls: list[int] = []

    def score(self, records: list[dict[str, Any]]) -> list[float]:
        self.calls.append(len(records))
        if any(r["x"] == "boom" for r in records):
            raise ValueError("cannot score boom")
        return [r["x"] * self.factor for r in records]


def _batcher(
    max_rows: int, max_wait: float, **kwargs: Any
) -> tuple[MicroBatcher[Model, list[float]], list[BatchRecord]]:
    batches: list[BatchRecord] = []
    batcher: MicroBatcher[Model, list[float]] = MicroBatcher(
        score=lambda model, records: model.score(records),
        split=lambda result, start, stop: result[start:stop],
        max_rows=max_rows,
        max_wait=max_wait,
        on_batch=batches.append,
        **kwargs,
    )
    return batcher, batches


def test_concurrent_requests_share_batches_that_never_exceed_max_rows() -> None:
    async def scenario() -> None:
        model = Model()
        batcher, batches = _batcher(max_rows=4, max_wait=0.5)
        answers = await asyncio.gather(*(batcher.submit(model, [{"x": float(i)}]) for i in range(10)))
        assert answers == [[2.0 * i] for i in range(10)]  # each request gets its own prediction
        assert [b.rows for b in batches] == [4, 4, 2] and model.calls == [4, 4, 2]
        assert [b.reason for b in batches] == ["full", "full", "wait"]

    asyncio.run(scenario())


def test_a_request_that_would_overflow_the_batch_starts_the_next_one() -> None:
    async def scenario() -> None:
        model = Model()
        batcher, batches = _batcher(max_rows=4, max_wait=0.5)
        three = batcher.submit(model, [{"x": 1.0}, {"x": 2.0}, {"x": 3.0}])
        two = batcher.submit(model, [{"x": 4.0}, {"x": 5.0}])
        assert await asyncio.gather(three, two) == [[2.0, 4.0, 6.0], [8.0, 10.0]]
        assert [(b.rows, b.reason) for b in batches] == [(3, "next"), (2, "wait")]
        assert all(b.rows <= 4 for b in batches)

    asyncio.run(scenario())


def test_a_request_larger_than_a_batch_is_scored_alone_and_whole() -> None:
    async def scenario() -> None:
        model = Model()
        batcher, batches = _batcher(max_rows=4, max_wait=0.5)
        answer = await batcher.submit(model, [{"x": float(i)} for i in range(9)])
        assert answer == [2.0 * i for i in range(9)]
        assert [(b.rows, b.requests, b.reason) for b in batches] == [(9, 1, "alone")]

    asyncio.run(scenario())


def test_no_request_waits_longer_than_max_wait() -> None:
    max_wait = 0.05

    async def scenario() -> None:
        model = Model()
        batcher, batches = _batcher(max_rows=1000, max_wait=max_wait)
        tasks = []
        for i in range(12):  # a request every 20 ms: each batch closes on its deadline, not on size
            tasks.append(asyncio.create_task(batcher.submit(model, [{"x": float(i)}])))
            await asyncio.sleep(0.02)
        answers = await asyncio.gather(*tasks)
        assert answers == [[2.0 * i] for i in range(12)]
        assert sum(b.rows for b in batches) == 12 and len(batches) >= 3
        for batch in batches:
            assert batch.reason == "wait"
            # Closed on the deadline of its oldest request: not before (it waited for company), and after
            # it only by the event loop's timer slack.
            assert max_wait - 0.005 <= batch.longest_wait <= max_wait + TIMER_SLACK
            assert batch.last_arrival - batch.first_arrival <= max_wait + TIMER_SLACK

    asyncio.run(scenario())


def test_zero_wait_batches_only_what_arrived_together_and_adds_no_delay() -> None:
    async def scenario() -> None:
        model = Model()
        batcher, batches = _batcher(max_rows=100, max_wait=0.0)
        started = time.monotonic()
        assert await batcher.submit(model, [{"x": 1.0}]) == [2.0]  # alone: scored in the same loop pass
        assert time.monotonic() - started < TIMER_SLACK
        await asyncio.gather(*(batcher.submit(model, [{"x": float(i)}]) for i in range(5)))
        assert [b.rows for b in batches] == [1, 5]

    asyncio.run(scenario())


def test_a_failing_record_fails_only_its_own_request() -> None:
    async def scenario() -> None:
        model = Model()
        batcher, batches = _batcher(max_rows=8, max_wait=0.5)
        results = await asyncio.gather(
            batcher.submit(model, [{"x": 1.0}]),
            batcher.submit(model, [{"x": "boom"}]),
            batcher.submit(model, [{"x": 3.0}]),
            return_exceptions=True,
        )
        assert results[0] == [2.0] and results[2] == [6.0]
        assert isinstance(results[1], ValueError)
        assert model.calls == [3, 1, 1, 1]  # the batch, then each request alone
        assert len(batches) == 1

    asyncio.run(scenario())


def test_a_new_model_closes_the_batch_of_the_old_one() -> None:
    async def scenario() -> None:
        old, new = Model(2.0), Model(10.0)
        batcher, batches = _batcher(max_rows=8, max_wait=0.5)
        answers = await asyncio.gather(
            batcher.submit(old, [{"x": 1.0}]), batcher.submit(new, [{"x": 1.0}]), batcher.submit(new, [{"x": 2.0}])
        )
        assert answers == [[2.0], [10.0], [20.0]]
        assert [(b.rows, b.reason) for b in batches] == [(1, "next"), (2, "wait")]

    asyncio.run(scenario())


def test_slow_batches_are_scored_in_a_thread_while_the_loop_goes_on() -> None:
    async def scenario() -> None:
        model = Model()
        threads: list[str] = []

        async def to_thread(function: Any) -> Any:
            threads.append("thread")
            return await asyncio.to_thread(function)

        batcher, batches = _batcher(max_rows=4, max_wait=0.0, inline=lambda _m, _rows: False, to_thread=to_thread)
        answers = await asyncio.gather(*(batcher.submit(model, [{"x": float(i)}]) for i in range(6)))
        assert answers == [[2.0 * i] for i in range(6)]
        assert [b.rows for b in batches] == [4, 2] and threads == ["thread", "thread"]

    asyncio.run(scenario())


@pytest.mark.parametrize(("max_rows", "max_wait"), [(0, 0.0), (1, -0.1)])
def test_bounds_must_make_sense(max_rows: int, max_wait: float) -> None:
    with pytest.raises(ValueError, match="max_rows"):
        _batcher(max_rows=max_rows, max_wait=max_wait)

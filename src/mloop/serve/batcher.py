"""Adaptive micro-batching: concurrent requests' records scored together, in one call of the model.

Requests hand their validated records to the batcher of their worker process and await their share
of the predictions. A batch closes when one of two bounds is reached:

- ``max_rows``: a batch never holds more records; a request that would overflow the open batch
  closes it and opens the next one, and a request larger than ``max_rows`` is scored on its own
  (never split, never merged);
- ``max_wait``: no request waits longer than this in the batcher for others to join; the batch
  closes at the latest ``max_wait`` after its oldest request arrived. With ``max_wait=0`` a batch
  takes exactly the requests that arrived while the event loop was busy (one loop pass), so an idle
  server adds no delay at all.

It is adaptive because nothing else decides the size: under light load a batch is one request, and
the busier the server, the more requests arrive while a batch is scored, the larger the next batch and
the lower the cost per record (the model's fixed cost per call is paid once per batch).

The batcher lives on the event loop: requests, closing and scoring happen there, with no thread
hand-over per request. Small batches on the compiled path are scored inline (tens of microseconds per
record); anything slower (the plain pipeline, large batches) goes to a worker thread so the loop keeps
reading requests. If a batch fails to score, each of its requests is scored on its own, so one bad
record fails only its own request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

M = TypeVar("M")  # the model a batch is scored with: a batch never mixes models (a hot reload splits it)
R = TypeVar("R")  # what scoring one batch returns

ScoreFunction = Callable[[M, list[dict[str, Any]]], R]
SplitFunction = Callable[[R, int, int], R]


@dataclass(frozen=True)
class BatchRecord:
    """What happened to one batch: its size and the times of its requests (``time.monotonic``)."""

    rows: int
    requests: int
    first_arrival: float  # when its oldest request reached the batcher
    last_arrival: float
    closed: float  # when the batcher stopped accepting requests into it and started scoring it
    scored: float  # when its predictions were ready
    reason: str  # "full", "wait" (max_wait reached), "next" (the next request would overflow it), "alone"

    @property
    def longest_wait(self) -> float:
        """How long its oldest request waited in the batcher before scoring began."""
        return self.closed - self.first_arrival


@dataclass
class _Pending(Generic[M]):
    model: M
    records: list[dict[str, Any]]
    future: asyncio.Future[Any]
    arrival: float


@dataclass
class _Batch(Generic[M]):
    model: M
    items: list[_Pending[M]] = field(default_factory=list)
    rows: int = 0
    timer: asyncio.TimerHandle | asyncio.Handle | None = None


class MicroBatcher(Generic[M, R]):
    """Coalesces concurrent ``submit`` calls of one event loop into batches bounded by rows and wait.

    ``score(model, records)`` scores a batch; ``split(result, start, stop)`` cuts one request's share
    out of it. ``inline(model, rows)`` says whether a batch is cheap enough to score on the loop.
    ``on_batch`` receives a ``BatchRecord`` for every batch scored (metrics, tests).
    """

    def __init__(
        self,
        score: ScoreFunction[M, R],
        split: SplitFunction[R],
        max_rows: int,
        max_wait: float,
        inline: Callable[[M, int], bool] = lambda _model, _rows: True,
        on_batch: Callable[[BatchRecord], None] | None = None,
        to_thread: Callable[[Callable[[], R]], Awaitable[R]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_rows < 1 or max_wait < 0:
            raise ValueError("max_rows must be at least 1 and max_wait not negative")
        self.max_rows = max_rows
        self.max_wait = max_wait
        self._score = score
        self._split = split
        self._inline = inline
        self._on_batch = on_batch
        self._to_thread = to_thread or _to_thread
        self._clock = clock
        self._open: _Batch[M] | None = None

    @property
    def open_rows(self) -> int:
        """Records waiting in the open batch."""
        return self._open.rows if self._open else 0

    async def submit(self, model: M, records: Sequence[dict[str, Any]]) -> R:
        """Score ``records`` with ``model``, together with whatever other requests join the same batch."""
        loop = asyncio.get_running_loop()
        records = list(records)
        if not records:
            raise ValueError("nothing to score")
        now = self._clock()
        if len(records) > self.max_rows:  # larger than any batch: on its own, as it came
            item = _Pending(model, records, loop.create_future(), now)
            self._close(_Batch(model, [item], len(records)), "alone")
            return await item.future  # type: ignore[no-any-return]
        batch = self._open
        if batch is not None and (batch.model is not model or batch.rows + len(records) > self.max_rows):
            self._close(batch, "next")
            batch = None
        if batch is None:
            batch = self._open = _Batch(model)
        item = _Pending(model, records, loop.create_future(), now)
        batch.items.append(item)
        batch.rows += len(records)
        if batch.rows >= self.max_rows:
            self._close(batch, "full")
        elif batch.timer is None:
            # Zero wait still defers to the end of this loop pass, so requests already read join in.
            batch.timer = (
                loop.call_later(self.max_wait, self._expire, batch)
                if self.max_wait > 0
                else loop.call_soon(self._expire, batch)
            )
        return await item.future  # type: ignore[no-any-return]

    def _expire(self, batch: _Batch[M]) -> None:
        if self._open is batch:
            self._close(batch, "wait")

    def _close(self, batch: _Batch[M], reason: str) -> None:
        if self._open is batch:
            self._open = None
        if batch.timer is not None:
            batch.timer.cancel()
            batch.timer = None
        closed = self._clock()
        if self._inline(batch.model, batch.rows):
            self._run(batch, reason, closed)
        else:
            asyncio.get_running_loop().create_task(self._run_in_thread(batch, reason, closed))

    def _run(self, batch: _Batch[M], reason: str, closed: float) -> None:
        records = batch.items[0].records if len(batch.items) == 1 else [r for i in batch.items for r in i.records]
        try:
            result = self._score(batch.model, records)
        except Exception:  # noqa: BLE001 - each request is retried alone, so only the culprit fails
            self._one_by_one(batch)
        else:
            self._deliver(batch, result)
        self._record(batch, reason, closed)

    async def _run_in_thread(self, batch: _Batch[M], reason: str, closed: float) -> None:
        records = batch.items[0].records if len(batch.items) == 1 else [r for i in batch.items for r in i.records]
        try:
            result = await self._to_thread(lambda: self._score(batch.model, records))
        except Exception:  # noqa: BLE001 - as in _run
            for item in batch.items:
                try:
                    one = await self._to_thread(lambda item=item: self._score(batch.model, item.records))  # type: ignore[misc]
                except Exception as exc:  # noqa: BLE001 - this request's own failure
                    _set(item.future, exception=exc)
                else:
                    _set(item.future, result=one)
        else:
            self._deliver(batch, result)
        self._record(batch, reason, closed)

    def _deliver(self, batch: _Batch[M], result: R) -> None:
        if len(batch.items) == 1:
            _set(batch.items[0].future, result=result)
            return
        start = 0
        for item in batch.items:
            stop = start + len(item.records)
            _set(item.future, result=self._split(result, start, stop))
            start = stop

    def _one_by_one(self, batch: _Batch[M]) -> None:
        for item in batch.items:
            try:
                result = self._score(batch.model, item.records)
            except Exception as exc:  # noqa: BLE001 - handed to the request that owns it
                _set(item.future, exception=exc)
            else:
                _set(item.future, result=result)

    def _record(self, batch: _Batch[M], reason: str, closed: float) -> None:
        if self._on_batch is None:
            return
        arrivals = [item.arrival for item in batch.items]
        self._on_batch(
            BatchRecord(
                rows=batch.rows,
                requests=len(batch.items),
                first_arrival=min(arrivals),
                last_arrival=max(arrivals),
                closed=closed,
                scored=self._clock(),
                reason=reason,
            )
        )


def _set(future: asyncio.Future[Any], result: Any = None, exception: BaseException | None = None) -> None:
    if future.done():  # its request was cancelled (the client went away)
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)


async def _to_thread(function: Callable[[], R]) -> R:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function)


__all__ = ["BatchRecord", "MicroBatcher"]

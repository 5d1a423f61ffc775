"""The non-blocking prediction log writer: requests hand rows over, one thread writes them in batches.

A request never waits for SQLite: ``log`` appends to a bounded in-memory buffer and returns. The
writer thread takes whatever has accumulated (up to ``batch_size`` rows) and stores it in one
transaction, so under load batches grow by themselves and the per-row cost falls. If the buffer is full
the rows are dropped and counted (``mloop_prediction_log_dropped_total``) rather than slowing requests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from mloop.data.predictions import PredictionRow, PredictionStore

log = logging.getLogger(__name__)

# 50k rows is several maximum-size batches and minutes of single-row traffic; SQLite in WAL mode
# stores tens of thousands of rows per second, so the buffer only fills if the disk stalls.
DEFAULT_CAPACITY = 50_000
DEFAULT_BATCH_SIZE = 2_000
DROP_WARNING_INTERVAL = 10.0  # seconds between warnings about dropped rows


class PredictionLogWriter:
    """Buffers prediction rows and writes them to a ``PredictionStore`` from one background thread."""

    def __init__(
        self,
        store: PredictionStore,
        on_drop: Callable[[int], None] | None = None,
        capacity: int = DEFAULT_CAPACITY,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if capacity < 1 or batch_size < 1:
            raise ValueError("capacity and batch_size must be positive")
        self.store = store
        self.capacity = capacity
        self.batch_size = batch_size
        self._on_drop = on_drop
        self._buffer: deque[PredictionRow] = deque()
        self._cond = threading.Condition()
        self._accepted = 0  # rows taken into the buffer so far
        self._done = 0  # rows the thread has finished with (written or failed)
        self._dropped = 0
        self._closing = False
        self._last_drop_warning = -DROP_WARNING_INTERVAL
        self._thread: threading.Thread | None = None

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def pending(self) -> int:
        with self._cond:
            return self._accepted - self._done

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="mloop-prediction-log", daemon=True)
        self._thread.start()

    # --------------------------------------------------------------------------- request side

    def log(self, row: PredictionRow) -> bool:
        """Queue one row without blocking; False if it was dropped."""
        return self.log_many([row]) == 1

    def log_many(self, rows: Sequence[PredictionRow]) -> int:
        """Queue rows without blocking; returns how many were accepted (the rest are dropped)."""
        with self._cond:
            room = 0 if self._closing else self.capacity - (self._accepted - self._done)
            accepted = rows if len(rows) <= room else rows[: max(room, 0)]
            self._buffer.extend(accepted)
            self._accepted += len(accepted)
            self._cond.notify_all()
        lost = len(rows) - len(accepted)
        if lost:
            self._count_drop(lost)
        return len(accepted)

    def _count_drop(self, n: int) -> None:
        with self._cond:  # request threads and the writer thread both count
            self._dropped += n
            now = time.monotonic()
            warn = now - self._last_drop_warning >= DROP_WARNING_INTERVAL  # one line, not one per request
            if warn:
                self._last_drop_warning = now
        if self._on_drop is not None:
            self._on_drop(n)
        if warn:
            log.warning("prediction log: %d row(s) dropped so far; the writer is behind or closed", self._dropped)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every row queued before this call is stored; False if ``timeout`` ran out first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._accepted
            while self._done < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._thread is None or not self._thread.is_alive():
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Stop accepting rows, write everything already queued, and stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("prediction log: %d row(s) still unwritten after %.0fs at shutdown", self.pending, timeout)
            self._thread = None

    # ---------------------------------------------------------------------------- writer side

    def _take(self) -> list[PredictionRow] | None:
        """The next batch, waiting for one; None once closing and everything has been taken."""
        with self._cond:
            while not self._buffer:
                if self._closing:
                    return None
                self._cond.wait()
            n = min(len(self._buffer), self.batch_size)
            return [self._buffer.popleft() for _ in range(n)]

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            self._write(batch)
            with self._cond:
                self._done += len(batch)
                self._cond.notify_all()

    def _write(self, batch: list[PredictionRow]) -> None:
        try:
            self.store.write_many(batch)
            return
        except Exception as exc:  # the thread must outlive any bad batch
            log.warning("prediction log: batch of %d rows failed (%s); writing them one by one", len(batch), exc)
        # One bad row (say, a repeated request_id) must not cost the whole batch.
        failed = 0
        for row in batch:
            try:
                self.store.write_many([row])
            except Exception as exc:
                failed += 1
                log.error("prediction log: row %s not stored: %s", row.request_id, exc)
        if failed:
            self._count_drop(failed)


__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_CAPACITY", "PredictionLogWriter"]

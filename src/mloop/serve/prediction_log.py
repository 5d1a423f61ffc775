"""The non-blocking prediction log writer: requests hand rows over, one thread writes them in batches.

A request never waits for SQLite: ``log`` appends to a bounded in-memory buffer and returns. The
writer thread lets rows gather for up to ``linger`` seconds (less if a batch fills, or when someone
waits in ``flush``) and stores them in one transaction, so the cost of a commit is shared by every row
of the batch and under load batches grow by themselves. If the buffer is full
the rows are dropped and counted (``mloop_prediction_log_dropped_total``) rather than slowing requests.

When the store fails (down, locked, a broken file) a batch is appended to a local spill file instead
(JSON lines, one file per process in ``spill_dir``) and replayed, idempotently, once the store takes
writes again; a spill file left by a process that died is adopted and replayed too. Closing writes the
queue and tries a last replay; what the store still refuses stays on disk for the next start.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from mloop.data.predictions import PredictionLog, PredictionRow
from mloop.errors import DuplicateRequestId

log = logging.getLogger(__name__)

# 50k rows is several maximum-size batches and minutes of single-row traffic; SQLite in WAL mode
# stores tens of thousands of rows per second, so the buffer only fills if the disk stalls.
DEFAULT_CAPACITY = 50_000
DEFAULT_BATCH_SIZE = 2_000
DROP_WARNING_INTERVAL = 10.0  # seconds between warnings about dropped rows
REPLAY_INTERVAL = 1.0  # seconds between attempts to replay spilled rows
REPLAY_CHUNK = 5_000
# The writer lets rows gather this long before a transaction (unless a batch is full, or someone is
# waiting in ``flush``): one commit per row would cost more CPU than the requests that made them.
DEFAULT_LINGER_SECONDS = 0.05
SPILL_SUFFIX = ".jsonl"


class PredictionLogWriter:
    """Buffers prediction rows and writes them to a ``PredictionLog`` from one background thread."""

    def __init__(
        self,
        store: PredictionLog,
        on_drop: Callable[[int], None] | None = None,
        capacity: int = DEFAULT_CAPACITY,
        batch_size: int = DEFAULT_BATCH_SIZE,
        spill_dir: Path | None = None,
        on_spill: Callable[[int], None] | None = None,
        on_replay: Callable[[int], None] | None = None,
        linger: float = DEFAULT_LINGER_SECONDS,
        skip_existing: bool = False,
    ) -> None:
        if capacity < 1 or batch_size < 1 or linger < 0:
            raise ValueError("capacity and batch_size must be positive, linger not negative")
        self.linger = linger
        # A row whose request_id is stored already is skipped, not an error: a stream consumer logs again
        # what it scored before a crash, and the row written then is the same row.
        self.skip_existing = skip_existing
        self._flushing = 0  # callers waiting in flush(): the writer does not linger for them
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
        self.spill_dir = spill_dir
        self._on_spill = on_spill
        self._on_replay = on_replay
        self._spilled = 0  # rows currently waiting in spill files
        self._next_replay = 0.0

    @property
    def spilled(self) -> int:
        """Rows waiting in spill files of this process for the store to come back."""
        return self._spilled

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def accepted(self) -> int:
        """Rows taken into the buffer so far: a mark for ``flush(upto=...)``."""
        with self._cond:
            return self._accepted

    @property
    def pending(self) -> int:
        with self._cond:
            return self._accepted - self._done

    def start(self) -> None:
        if self._thread is not None:
            return
        self._adopt_orphans()
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
            was_empty = not self._buffer
            self._buffer.extend(accepted)
            self._accepted += len(accepted)
            # The writer needs waking only for a first row or a full batch; it lingers for the rest.
            if was_empty or len(self._buffer) >= self.batch_size:
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

    def flush(self, timeout: float = 5.0, upto: int | None = None) -> bool:
        """Wait until every row queued before this call (or the first ``upto`` rows ever accepted, a mark
        read from ``accepted``) is stored; False if ``timeout`` ran out first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._accepted if upto is None else min(upto, self._accepted)
            self._flushing += 1
            self._cond.notify_all()  # a lingering writer writes now
            try:
                while self._done < target:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._thread is None or not self._thread.is_alive():
                        return False
                    self._cond.wait(remaining)
            finally:
                self._flushing -= 1
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
        """The next batch, waiting for one; [] when spilled rows are due a replay; None once closed."""
        with self._cond:
            while not self._buffer:
                if self._closing:
                    return None
                if self._spilled_files():
                    wait = self._next_replay - time.monotonic()
                    if wait <= 0:
                        return []
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
            deadline = time.monotonic() + self.linger
            while len(self._buffer) < self.batch_size and not self._closing and not self._flushing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            n = min(len(self._buffer), self.batch_size)
            return [self._buffer.popleft() for _ in range(n)]

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            if batch:
                self._write(batch)
                with self._cond:
                    self._done += len(batch)
                    self._cond.notify_all()
            if self._spilled_files() and time.monotonic() >= self._next_replay:
                self._replay()
        if self._spilled_files():
            self._replay()  # shutdown: a last chance; what stays on disk is replayed at the next start

    def _write(self, batch: list[PredictionRow]) -> None:
        if self._spilled and time.monotonic() < self._next_replay:
            # The store failed moments ago: straight to disk until the next replay tries it again. A store
            # that fails slowly (connections that hang until a timeout) would otherwise cost each batch that
            # timeout, and the queue behind the writer would fill up and drop rows.
            self._spill_or_drop(batch, None)
            return
        try:
            self.store.write_many(batch, skip_existing=self.skip_existing)
            return
        except DuplicateRequestId as exc:
            log.warning("prediction log: batch of %d rows failed (%s); writing them one by one", len(batch), exc)
        except Exception as exc:  # the store is down or refusing writes: keep the rows on disk
            self._spill_or_drop(batch, exc)
            return
        # One bad row (a repeated request_id) must not cost the whole batch.
        failed = 0
        for index, row in enumerate(batch):
            try:
                self.store.write_many([row], skip_existing=self.skip_existing)
            except DuplicateRequestId as exc:
                failed += 1
                log.error("prediction log: row %s not stored: %s", row.request_id, exc)
            except Exception as exc:
                self._spill_or_drop(batch[index:], exc)
                break
        if failed:
            self._count_drop(failed)

    # ----------------------------------------------------------------------------- spill files

    def _own_prefix(self) -> str:
        return f"{os.getpid()}-"

    def _spilled_files(self) -> list[Path]:
        if self.spill_dir is None or not self._spilled:
            return []
        return sorted(self.spill_dir.glob(f"{self._own_prefix()}*{SPILL_SUFFIX}"))

    def _spill_or_drop(self, rows: list[PredictionRow], exc: Exception | None) -> None:
        """Keep ``rows`` in a spill file (``exc``: the store's failure; None when it was not tried)."""
        if self.spill_dir is None:
            log.error("prediction log: %d row(s) not stored: %s", len(rows), exc)
            self._count_drop(len(rows))
            return
        path = self.spill_dir / f"{self._own_prefix()}{uuid.uuid4().hex}{SPILL_SUFFIX}"
        try:
            self.spill_dir.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as file:
                file.write(b"".join(row.to_json() + b"\n" for row in rows))
                file.flush()
                os.fsync(file.fileno())
        except OSError as spill_error:
            log.error("prediction log: store failed (%s) and the spill file too (%s)", exc, spill_error)
            self._count_drop(len(rows))
            return
        if not self._spilled:
            log.warning("prediction log: the store fails (%s); spilling rows to %s until it is back", exc, path.parent)
        self._spilled += len(rows)
        if exc is not None:  # only a real failure postpones the next try
            self._next_replay = time.monotonic() + REPLAY_INTERVAL
        if self._on_spill is not None:
            self._on_spill(len(rows))

    def _replay(self) -> None:
        """Write spilled files back in order; a file is deleted only once all its rows are stored."""
        for path in self._spilled_files():
            try:
                rows = [PredictionRow.from_json(line) for line in path.read_bytes().splitlines() if line.strip()]
                for start in range(0, len(rows), REPLAY_CHUNK):
                    self.store.write_many(rows[start : start + REPLAY_CHUNK], skip_existing=True)
                path.unlink()
            except Exception as exc:  # still down: try again later
                self._next_replay = time.monotonic() + REPLAY_INTERVAL
                log.debug("prediction log: replay of %s postponed: %s", path, exc)
                return
            self._spilled = max(0, self._spilled - len(rows))
            if self._on_replay is not None:
                self._on_replay(len(rows))
            log.info("prediction log: replayed %d spilled row(s) from %s", len(rows), path.name)
        self._spilled = 0

    def _adopt_orphans(self) -> None:
        """Take over spill files of processes that are gone (a crash, an earlier run) to replay them."""
        if self.spill_dir is None or not self.spill_dir.is_dir():
            return
        for path in self.spill_dir.glob(f"*{SPILL_SUFFIX}"):
            owner = path.name.split("-", 1)[0]
            if owner == str(os.getpid()):  # an earlier writer of this process (an app restarted in place)
                self._spilled += sum(1 for line in path.read_bytes().splitlines() if line.strip())
                continue
            if owner.isdigit() and _alive(int(owner)):
                continue
            target = path.with_name(f"{self._own_prefix()}{uuid.uuid4().hex}{SPILL_SUFFIX}")
            try:
                path.rename(target)  # atomic: of several workers starting, one adopts each file
                lines = sum(1 for line in target.read_bytes().splitlines() if line.strip())
            except OSError:
                continue
            self._spilled += lines
        if self._spilled:
            log.warning("prediction log: %d row(s) from an earlier run are waiting to be replayed", self._spilled)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_CAPACITY", "SPILL_SUFFIX", "PredictionLogWriter"]

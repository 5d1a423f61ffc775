"""Shadow scoring: the challenger scores a sampled fraction of requests, off the response path.

The request thread only samples and enqueues (a bounded queue: when the challenger falls behind,
shadow work is skipped and counted, never the caller slowed). One background thread scores and logs
the challenger's predictions in the prediction log as ``<request_id>:shadow`` with the challenger's
version, so champion and challenger can be compared row by row on live traffic.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from mloop.data.predictions import PredictionRow, utc_now
from mloop.serve.model_holder import LoadedModel
from mloop.serve.prediction_log import PredictionLogWriter

log = logging.getLogger(__name__)

SHADOW_SUFFIX = ":shadow"
QUEUE_CAPACITY = 1_000  # requests waiting for the challenger

_Item = tuple[LoadedModel, list[dict[str, Any]], list[str]]


class ShadowScorer:
    def __init__(
        self,
        fraction: float,
        writer: Callable[[], PredictionLogWriter],
        on_scored: Callable[[int], None] | None = None,
        on_skipped: Callable[[int], None] | None = None,
    ) -> None:
        self.fraction = fraction
        self._writer = writer
        self._on_scored = on_scored
        self._on_skipped = on_skipped
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=QUEUE_CAPACITY)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.fraction > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mloop-shadow", daemon=True)
            self._thread.start()

    def offer(self, challenger: LoadedModel | None, records: list[dict[str, Any]], ids: list[str]) -> None:
        """Maybe enqueue a request for the challenger; never blocks."""
        if challenger is None or self._thread is None or random.random() >= self.fraction:  # noqa: S311 - sampling
            return
        try:
            self._queue.put_nowait((challenger, records, ids))
        except queue.Full:
            if self._on_skipped is not None:
                self._on_skipped(len(records))

    def close(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            challenger, records, ids = item
            started = time.perf_counter()
            try:
                scored = challenger.score_records(records)
            except Exception:  # a broken challenger must not take the thread down
                log.exception("shadow scoring with challenger version %s failed", challenger.version)
                continue
            latency_ms = (time.perf_counter() - started) * 1000
            ts = utc_now()
            rows = [
                PredictionRow(f"{request_id}{SHADOW_SUFFIX}", ts, challenger.version, record, prediction, latency_ms)
                for request_id, record, prediction in zip(ids, records, scored.predictions, strict=True)
            ]
            self._writer().log_many(rows)
            if self._on_scored is not None:
                self._on_scored(len(rows))


__all__ = ["SHADOW_SUFFIX", "ShadowScorer"]

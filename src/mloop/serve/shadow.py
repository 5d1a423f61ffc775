"""Shadow scoring: the challenger scores a sampled fraction of requests, off the response path.

The request thread only samples and enqueues (a bounded queue: when the challenger falls behind,
shadow work is skipped and counted, never the caller slowed). One background thread scores and logs
the challenger's predictions in the prediction log as ``<request_id>:shadow`` with the challenger's
version, so champion and challenger can be compared row by row on live traffic. Given the champion's
answers to the same records, it also counts how many of the challenger's agree with them
(:func:`mloop.core.shadow.agreeing`), for the server's ``mloop_shadow_agreement`` gauges.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from mloop.core.shadow import DEFAULT_TOLERANCE, agreeing
from mloop.data.predictions import SHADOW_SUFFIX, PredictionRow, utc_now
from mloop.serve.model_holder import LoadedModel
from mloop.serve.prediction_log import PredictionLogWriter

log = logging.getLogger(__name__)

QUEUE_CAPACITY = 1_000  # requests waiting for the challenger

#: (challenger, records, request ids, the champion's predictions of them and its version, if given)
_Item = tuple[LoadedModel, list[dict[str, Any]], list[str], Sequence[Any] | None, str | None]
#: Called with (challenger version, champion version, records compared, records that agreed).
OnCompared = Callable[[str, str, int, int], None]


class ShadowScorer:
    def __init__(
        self,
        fraction: float,
        writer: Callable[[], PredictionLogWriter],
        on_scored: Callable[[int], None] | None = None,
        on_skipped: Callable[[int], None] | None = None,
        on_compared: OnCompared | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> None:
        self.fraction = fraction
        self.tolerance = tolerance
        self._writer = writer
        self._on_scored = on_scored
        self._on_skipped = on_skipped
        self._on_compared = on_compared
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=QUEUE_CAPACITY)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.fraction > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mloop-shadow", daemon=True)
            self._thread.start()

    def offer(
        self,
        challenger: LoadedModel | None,
        records: list[dict[str, Any]],
        ids: list[str],
        served: Sequence[Any] | None = None,
        served_by: str | None = None,
    ) -> None:
        """Maybe enqueue a request for the challenger; never blocks.

        ``served`` are the champion's predictions of ``records`` (version ``served_by``): the challenger's
        are then compared with them as they are scored.
        """
        if challenger is None or self._thread is None or random.random() >= self.fraction:  # noqa: S311 - sampling
            return
        try:
            self._queue.put_nowait((challenger, records, ids, served, served_by))
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
            challenger, records, ids, served, served_by = item
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
            if self._on_compared is not None and served is not None and served_by is not None:
                try:
                    agreed = agreeing(served, scored.predictions, challenger.task, self.tolerance)
                except ValueError:  # answers that cannot be compared are logged, never the thread's end
                    log.exception("cannot compare challenger version %s with the champion", challenger.version)
                    continue
                self._on_compared(challenger.version, served_by, len(agreed), int(agreed.sum()))


__all__ = ["SHADOW_SUFFIX", "ShadowScorer"]

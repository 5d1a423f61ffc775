"""The consumer loop of ``mloop stream``: read a micro-batch → validate → score → log → write → ack.

Each batch is scored by the version loaded when it was read (the same ``ModelHolder`` as the server:
hot reload when the alias moves, the compiled path where it verified). Its answers and dead letters are
written (idempotently), its prediction rows handed to the log and flushed, and only then are its events
acknowledged: a crash at any point leaves them to be read again, and writing them again adds nothing.
While one batch's rows are being stored and its events acknowledged, the next is read and scored (two
batches in flight at most, so a slow log or sink slows reading: backpressure).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from mloop.data.predictions import PredictionRow, utc_now
from mloop.errors import StreamError
from mloop.project import Project
from mloop.serve.model_holder import LoadedModel, ModelHolder, Scored
from mloop.serve.prediction_log import PredictionLogWriter
from mloop.serve.service import SPILL_DIR
from mloop.serve.stream.brokers import Event, Output, Sink, Source
from mloop.serve.stream.events import Decoded, answers, dead_letter, decode
from mloop.serve.stream.metrics import DEAD_LETTER, READ, WRITTEN, StreamMetrics

log = logging.getLogger(__name__)

LOG_FLUSH_SECONDS = 30.0  # a batch is acknowledged only once its rows are in the log (or spilled to disk)
LAG_EVERY_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
MODEL_WAIT_SECONDS = 1.0


@dataclass(frozen=True)
class StreamSettings:
    """How the consumer batches: ``batch_size`` events at most, waiting ``linger`` seconds for more after the
    first; ``idle_exit`` stops it after that many seconds without events (None: run until stopped)."""

    batch_size: int = 500
    linger: float = 0.005
    idle_exit: float | None = None
    poll: float = 1.0  # longest wait for a first event: how quickly a stop request is noticed

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise StreamError(f"--batch-size must be at least 1, not {self.batch_size}")
        if self.linger < 0:
            raise StreamError(f"--linger-ms must not be negative, not {self.linger * 1000:g}")
        if self.idle_exit is not None and self.idle_exit <= 0:
            raise StreamError(f"--idle-exit must be a positive number of seconds, not {self.idle_exit:g}")


@dataclass
class StreamSummary:
    """What a consumer did until it stopped."""

    read: int = 0
    written: int = 0
    dead_letters: int = 0
    labels: int = 0
    batches: int = 0
    versions: list[str] = field(default_factory=list)
    seconds: float = 0.0
    busy_seconds: float = 0.0  # from the first event read to the last acknowledged
    # The same two moments as Unix times, so the work of several consumers of one group can be added up.
    first_event_at: float | None = None
    last_ack_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "written": self.written,
            "dead_letters": self.dead_letters,
            "labels": self.labels,
            "batches": self.batches,
            "versions": self.versions,
            "seconds": round(self.seconds, 3),
            "busy_seconds": round(self.busy_seconds, 3),
            "events_per_second": round(self.read / self.busy_seconds, 1) if self.busy_seconds > 0 else None,
            "first_event_at": self.first_event_at,
            "last_ack_at": self.last_ack_at,
        }


@dataclass(frozen=True)
class Endpoints:
    """The broker adapters one consumer uses; ``name`` labels the source in metrics and derived ids."""

    name: str
    source: Source
    sink: Sink
    dead: Sink
    labels: Source | None = None
    labels_dead: Sink | None = None


@dataclass(frozen=True)
class _Batch:
    """A scored batch whose answers are written, waiting for its log rows (up to ``mark``) and its ack."""

    events: list[Event]
    mark: int
    scored: int
    written: int
    dead: int
    version: str
    started: float


class StreamConsumer:
    """Scores ``endpoints.source`` into ``endpoints.sink`` with ``project``'s champion until stopped."""

    def __init__(
        self, project: Project, endpoints: Endpoints, settings: StreamSettings, metrics: StreamMetrics | None = None
    ) -> None:
        self.project = project
        self.endpoints = endpoints
        self.settings = settings
        self.metrics = metrics or StreamMetrics(endpoints.name)
        self.summary = StreamSummary()
        self.holder = ModelHolder(project, on_swap=self._on_swap)
        self.writer: PredictionLogWriter | None = None
        self._stop = asyncio.Event()
        self._first_event: float | None = None

    def stop(self) -> None:
        """Finish the batch in hand, acknowledge it and return from ``run`` (SIGTERM's handler)."""
        self._stop.set()

    def _on_swap(self, old: LoadedModel | None, new: LoadedModel) -> None:
        self.metrics.set_model(new.version, new.alias, previous=old.version if old else None)
        log.info("scoring with version %s", new.version)

    # ------------------------------------------------------------------------------ lifecycle

    async def run(self) -> StreamSummary:
        started = time.monotonic()
        await asyncio.to_thread(self.holder.refresh)
        await self._wait_for_model()
        store = self.project.prediction_store()
        self.writer = PredictionLogWriter(
            store,
            on_drop=self.metrics.log_dropped.inc,
            spill_dir=self.project.predictions_db.parent / SPILL_DIR,
            skip_existing=True,
        )
        self.writer.start()
        self.holder.start()
        opened: list[Source | Sink] = []
        try:
            for part in self._parts():
                await part.open()
                opened.append(part)
            consume = asyncio.create_task(self._consume())
            labels = None
            if self.endpoints.labels is not None:
                labels = asyncio.create_task(self._consume_labels(self.endpoints.labels))
            try:
                await consume
            finally:
                self._stop.set()  # the label reader stops with the event reader (SIGTERM or --idle-exit)
                if labels is not None:
                    await labels
        finally:
            self.holder.stop()
            await asyncio.to_thread(self.writer.close)
            for part in opened:
                try:
                    await part.close()
                except Exception as exc:  # noqa: BLE001 - closing must not hide what stopped the consumer
                    log.warning("closing %s: %s", type(part).__name__, exc)
        self.summary.seconds = time.monotonic() - started
        return self.summary

    def _parts(self) -> list[Source | Sink]:
        e = self.endpoints
        parts: list[Source | Sink] = [e.sink, e.dead, e.source]
        if e.labels is not None and e.labels_dead is not None:
            parts += [e.labels_dead, e.labels]
        return parts

    async def _wait_for_model(self) -> None:
        """Read nothing until a champion is loaded; with ``idle_exit``, give up after that long."""
        waited = 0.0
        while self.holder.current is None:
            limit = self.settings.idle_exit
            if limit is not None and waited >= limit:
                raise StreamError(f"no model to score with after {waited:.0f} s: {self.holder.reason}")
            if waited == 0:
                log.warning("waiting for a model: %s", self.holder.reason)
            await asyncio.sleep(MODEL_WAIT_SECONDS)
            waited += MODEL_WAIT_SECONDS
            await asyncio.to_thread(self.holder.refresh)

    # ------------------------------------------------------------------------------ the loop

    async def _consume(self) -> None:
        source = self.endpoints.source
        last_event = time.monotonic()
        next_lag = 0.0
        failures = 0
        finishing: asyncio.Task[None] | None = None  # the last batch's flush and ack, running meanwhile
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_lag:
                next_lag = now + LAG_EVERY_SECONDS
                lag = await source.lag()
                if lag is not None:
                    self.metrics.lag.labels(self.endpoints.name).set(lag)
            idle = self.settings.idle_exit
            if idle is not None and now - last_event >= idle:
                log.info("no event for %.0f s: stopping (--idle-exit)", idle)
                break
            try:
                events = await self._collect(source)
                if finishing is not None and (not events or finishing.done()):
                    task, finishing = finishing, None
                    await task
                if events:
                    last_event = time.monotonic()
                    batch = await self._handle(events)
                    if finishing is not None:  # two batches in flight at most
                        task, finishing = finishing, None
                        await task
                    finishing = asyncio.create_task(self._finish(batch))
                failures = 0
            except StreamError as exc:
                # A broker outage: what was in hand is not acknowledged and comes back; wait and go on.
                failures += 1
                backoff = min(MAX_BACKOFF_SECONDS, 2 ** min(failures - 1, 5))
                log.error("%s; retrying in %.0f s", exc, backoff)
                await self._sleep(backoff)
        if finishing is not None:
            try:
                await finishing
            except StreamError as exc:  # not acknowledged: read again by the next consumer of the group
                log.error("%s; the last batch is left unacknowledged", exc)
        lag = await source.lag()
        if lag is not None:
            self.metrics.lag.labels(self.endpoints.name).set(lag)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def _collect(self, source: Source) -> list[Event]:
        """A batch: the first events within ``poll`` seconds, then more for up to ``linger`` seconds."""
        size, linger = self.settings.batch_size, self.settings.linger
        wait = self.settings.poll
        if self.settings.idle_exit is not None:
            wait = min(wait, self.settings.idle_exit)
        events = await source.read(size, wait)
        if not events or len(events) >= size or linger <= 0:
            return events
        deadline = time.monotonic() + linger
        while len(events) < size:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            more = await source.read(size - len(events), left)
            if not more:
                break
            events.extend(more)
        return events

    async def _handle(self, events: list[Event]) -> _Batch:
        """Score ``events`` and write their answers and dead letters; what is left is ``_finish``'s."""
        started = time.perf_counter()
        if self._first_event is None:
            self._first_event = started
            self.summary.first_event_at = time.time()
        model = self.holder.current
        assert model is not None  # noqa: S101 - run() loads one before reading and the holder never unloads
        decoded, outputs, dead, rows = await asyncio.to_thread(self._process, model, events, started)
        writer = self.writer
        assert writer is not None  # noqa: S101 - opened in run()
        writer.log_many(rows)
        mark = writer.accepted
        written = await self.endpoints.sink.write(outputs)
        await self.endpoints.dead.write(dead)
        return _Batch(events, mark, len(outputs), written, len(dead), model.version, started)

    async def _finish(self, batch: _Batch) -> None:
        """Acknowledge ``batch`` once its rows are in the log (or spilled to disk)."""
        writer = self.writer
        assert writer is not None  # noqa: S101 - opened in run()
        if not await asyncio.to_thread(writer.flush, LOG_FLUSH_SECONDS, batch.mark):
            # Not acknowledged: the events come back (claimed once idle) and are logged then.
            log.warning("prediction log: %d rows not flushed in %.0f s", writer.pending, LOG_FLUSH_SECONDS)
            return
        await self.endpoints.source.ack(batch.events)
        self._counted(len(batch.events), batch.scored, batch.written, batch.dead, batch.version)
        done = time.perf_counter()
        self.metrics.batch_duration.labels(self.endpoints.name).observe(done - batch.started)
        assert self._first_event is not None  # noqa: S101 - set by _handle
        self.summary.busy_seconds = done - self._first_event
        self.summary.last_ack_at = time.time()

    def _counted(self, read: int, scored: int, written: int, dead: int, version: str) -> None:
        s = self.summary
        s.read += read
        s.written += scored
        s.dead_letters += dead
        s.batches += 1
        if version not in s.versions:
            s.versions.append(version)
        self.metrics.count(READ, read)
        self.metrics.count(WRITTEN, scored)
        self.metrics.count(DEAD_LETTER, dead)
        self.metrics.batch_events.labels(self.endpoints.name).observe(read)
        if written < scored:
            log.info("%d answer(s) were in the sink already (redelivered events)", scored - written)

    def _process(
        self, model: LoadedModel, events: list[Event], started: float
    ) -> tuple[Decoded, list[Output], list[Output], list[PredictionRow]]:
        """CPU work of a batch, off the event loop: decode, validate, score, build answers and log rows."""
        name = self.endpoints.name
        decoded = decode(events, model.request_model, name)
        dead = list(decoded.dead)
        ids, records = decoded.ids, decoded.records
        scored = _score(model, records)
        if scored is None:  # the model failed on the batch: find the events it fails on, score the rest
            ids, records, scored, failed = _score_each(model, decoded)
            dead += failed
        outputs = answers(ids, model.version, scored)
        ts = utc_now()
        latency_ms = (time.perf_counter() - started) * 1000
        rows = [
            PredictionRow(request_id, ts, model.version, record, prediction, latency_ms)
            for request_id, record, prediction in zip(ids, records, scored.predictions, strict=True)
        ]
        return decoded, outputs, [dead_letter(name, event, reason) for event, reason in dead], rows

    # ------------------------------------------------------------------------------ labels

    async def _consume_labels(self, source: Source) -> None:
        """Labels as events ``{"request_id": …, "label": …}``, attached to logged predictions."""
        dead_sink = self.endpoints.labels_dead
        assert dead_sink is not None  # noqa: S101 - set with labels
        name = f"{self.endpoints.name}:labels"
        failures = 0
        while not self._stop.is_set():
            try:
                events = await source.read(self.settings.batch_size, self.settings.poll)
                if events:
                    dead = await asyncio.to_thread(self._attach, events)
                    await dead_sink.write([dead_letter(name, event, reason) for event, reason in dead])
                    await source.ack(events)
                    self.summary.labels += len(events) - len(dead)
                    self.metrics.labels_attached.labels(name, "attached").inc(len(events) - len(dead))
                    self.metrics.labels_attached.labels(name, DEAD_LETTER).inc(len(dead))
                failures = 0
            except StreamError as exc:
                failures += 1
                backoff = min(MAX_BACKOFF_SECONDS, 2 ** min(failures - 1, 5))
                log.error("labels: %s; retrying in %.0f s", exc, backoff)
                await self._sleep(backoff)

    def _attach(self, events: Sequence[Event]) -> list[tuple[Event, str]]:
        writer = self.writer
        assert writer is not None  # noqa: S101 - opened in run()
        labels: list[tuple[str, Any]] = []
        owners: dict[str, Event] = {}
        dead: list[tuple[Event, str]] = []
        for event in events:
            reason = event.problem
            item: Any = None
            if reason is None:
                try:
                    item = orjson.loads(event.data)
                except orjson.JSONDecodeError as exc:
                    reason = f"not JSON: {exc}"
            if reason is None and not (
                isinstance(item, dict) and isinstance(item.get("request_id"), str) and "label" in item
            ):
                reason = "expected a JSON object with a string 'request_id' and a 'label'"
            if reason is not None:
                dead.append((event, reason))
                continue
            labels.append((item["request_id"], item["label"]))
            owners[item["request_id"]] = event
        if labels:
            writer.flush(LOG_FLUSH_SECONDS)  # a label for a just-scored event must find its row
            unknown = set(writer.store.attach_labels(labels))  # all or none: then again without the unknown
            if unknown:
                writer.store.attach_labels([item for item in labels if item[0] not in unknown])
            for request_id in sorted(unknown):
                dead.append((owners[request_id], f"no prediction with request_id {request_id!r} is in the log"))
        return dead


def _score(model: LoadedModel, records: list[dict[str, Any]]) -> Scored | None:
    if not records:
        return Scored([], [] if model.classes is not None else None)
    try:
        return model.score_records(records)
    except Exception as exc:  # noqa: BLE001 - valid input the model fails on: found event by event
        log.error("version %s failed to score a batch of %d: %s", model.version, len(records), exc)
        return None


def _score_each(
    model: LoadedModel, decoded: Decoded
) -> tuple[list[str], list[dict[str, Any]], Scored, list[tuple[Event, str]]]:
    ids: list[str] = []
    records: list[dict[str, Any]] = []
    predictions: list[Any] = []
    probabilities: list[dict[str, float]] = []
    failed: list[tuple[Event, str]] = []
    for event, request_id, record in zip(decoded.events, decoded.ids, decoded.records, strict=True):
        try:
            one = model.score_records([record])
        except Exception as exc:  # noqa: BLE001 - this event goes to the dead letters with the model's error
            failed.append((event, f"version {model.version} failed to score it: {exc}"))
            continue
        ids.append(request_id)
        records.append(record)
        predictions += one.predictions
        probabilities += one.probabilities or []
    return ids, records, Scored(predictions, probabilities if model.classes is not None else None), failed


__all__ = ["Endpoints", "StreamConsumer", "StreamSettings", "StreamSummary"]

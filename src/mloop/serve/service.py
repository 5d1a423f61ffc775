"""One model's inference service: every route and protocol validates → scores → logs through it.

A ``Service`` owns what serving one registered model needs: its ``ModelHolder`` (the loaded version and
its reloader), the prediction log writer, the shadow scorer, the micro-batcher and the metrics. A second
model is a second ``Service``. Records of every protocol go through one path, ``score``: validated by
the loaded version's request model, scored (by the micro-batcher with concurrent requests, or on their
own), then logged, counted and offered to the challenger. Errors are ``mloop.errors`` classes; only the
HTTP layer (``mloop.serve.asgi.error_answer``) turns them into answers.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import time
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from mloop.data.predictions import PredictionRow, utc_now
from mloop.errors import InvalidInput, ModelUnavailable, PayloadTooLarge, ServeError, UnknownRequestIds
from mloop.project import Project
from mloop.serve.answers import predict_answer
from mloop.serve.batcher import BatchRecord, MicroBatcher
from mloop.serve.fastpath import SMALL_BATCH_ROWS
from mloop.serve.http import parse_json, problem, validation_details
from mloop.serve.metrics import ServeMetrics, prediction_buckets
from mloop.serve.model_holder import LoadedModel, ModelHolder, Scored
from mloop.serve.prediction_log import PredictionLogWriter
from mloop.serve.request_ids import request_ids
from mloop.serve.schemas import FeedbackItem, RefusalInfo, ReloadResponse, record_of
from mloop.serve.shadow import ShadowScorer

log = logging.getLogger(__name__)

MAX_REPORTED_ERRORS = 100  # a 10,000-record batch of garbage gets a readable answer, not megabytes
FEEDBACK_FLUSH_SECONDS = 5.0
SPILL_DIR = "predictions-spill"  # beside the prediction log: rows kept while the store is down
# Bodies up to this size (a couple of dozen records) are parsed and validated on the event loop and
# join a micro-batch; larger ones are handled whole in a worker thread, so the loop never stalls.
INLINE_BODY_BYTES = 64 * 1024
INLINE_RECORDS = 32  # requests of more records are validated, scored and logged in a worker thread
BATCH_TRACE_ENV = "MLOOP_BATCH_TRACE"  # a file to append one JSON line per micro-batch to (tests, tuning)

Records = list[dict[str, Any]]


def _items(payload: Any, max_batch: int, what: str) -> tuple[list[Any], bool]:
    """The records of a body (one object or an array of them) and whether it was a single object."""
    if isinstance(payload, dict):
        return [payload], True
    if not isinstance(payload, list):
        raise InvalidInput([problem(["body"], f"expected a JSON object ({what}) or an array of them", "model_type")])
    if not payload:
        raise InvalidInput([problem(["body"], "the array is empty; send at least one object", "too_short")])
    if len(payload) > max_batch:
        raise PayloadTooLarge(
            f"batch of {len(payload)} records exceeds serve.max_batch_size={max_batch}; split it into smaller requests"
        )
    return payload, False


M = TypeVar("M", bound=BaseModel)


def _validate_all(items: list[Any], single: bool, model: type[M], prefix: tuple[str | int, ...] = ("body",)) -> list[M]:
    valid: list[M] = []
    problems: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            valid.append(model.model_validate(item))
        except ValidationError as exc:
            problems.extend(validation_details(exc, list(prefix) if single else [*prefix, index]))
            if len(problems) >= MAX_REPORTED_ERRORS:
                break
    if problems:
        raise InvalidInput(problems[:MAX_REPORTED_ERRORS])
    return valid


class Service:
    """One registered model served: its holder, prediction log, shadow, batcher and metrics.

    ``micro_batching`` chooses how ``/v1/predict`` scores small bodies: in micro-batches on the event
    loop (on), or inline in a worker thread like every other request (off).
    """

    def __init__(self, project: Project, *, micro_batching: bool = True) -> None:
        self.project = project
        self.settings = project.config.serve
        self.micro_batching = micro_batching
        self.metrics = ServeMetrics(project.monitor_dir)
        self.holder = ModelHolder(project, on_swap=self._on_swap, on_refuse=self._on_refuse)
        self.writer: PredictionLogWriter | None = None
        self.shadow = ShadowScorer(
            self.settings.shadow_fraction,
            self.log_writer,
            on_scored=self.metrics.shadow_scored.inc,
            on_skipped=self.metrics.shadow_skipped.inc,
            on_compared=self.metrics.observe_shadow,
            tolerance=project.config.gate.shadow.tolerance,
        )
        self.startup_model: LoadedModel | None = None
        self.batcher: MicroBatcher[LoadedModel, Scored] = MicroBatcher(
            score=_score,
            split=_split,
            max_rows=self.settings.micro_batch_max_rows,
            max_wait=self.settings.micro_batch_max_wait_ms / 1000,
            inline=_cheap,
            on_batch=self._on_batch,
        )
        self._batch_trace = os.environ.get(BATCH_TRACE_ENV) or None

    # ---------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        store = self.project.prediction_store()  # a foreign table or an unreachable database stops startup here
        self.writer = PredictionLogWriter(
            store,
            on_drop=self.metrics.log_dropped.inc,
            spill_dir=self.project.predictions_db.parent / SPILL_DIR,
            on_spill=self.metrics.log_spilled.inc,
            on_replay=self.metrics.log_replayed.inc,
        )
        self.writer.start()
        self.holder.refresh()
        self.holder.refresh_challenger()
        self.startup_model = self.holder.current
        self.shadow.start()
        self.holder.start()
        _freeze_heap()

    def stop(self) -> None:
        self.holder.stop()
        self.shadow.close()  # its rows reach the writer before the writer closes
        if self.writer is not None:
            self.writer.close()

    def _on_swap(self, old: LoadedModel | None, new: LoadedModel) -> None:
        if self.startup_model is not None:  # a hot reload: the new model's objects join the frozen heap
            _freeze_heap()
        self.metrics.set_model(new.version, new.alias, previous=old.version if old else None)
        self.metrics.fast_path.labels(new.version).set(1 if new.fast_path.enabled else 0)
        if new.task == "regression":
            self.metrics.enable_prediction_histogram(prediction_buckets(new.contract.columns.get(new.contract.target)))

    def _on_refuse(self, version: str, _reason: str) -> None:
        self.metrics.model_refused.labels(version).inc()

    def _on_batch(self, batch: BatchRecord) -> None:
        self.metrics.observe_batch(batch.rows, batch.longest_wait)
        if self._batch_trace:
            with open(self._batch_trace, "ab") as trace:
                trace.write(orjson.dumps({"pid": os.getpid(), **dataclasses.asdict(batch)}) + b"\n")

    def reload(self) -> dict[str, Any]:
        """Check the alias now and load its target if it changed (retrying a refused one)."""
        changed = self.holder.refresh(force=True)
        self.holder.refresh_challenger()
        current = self.holder.current
        refused = self.holder.refused
        return ReloadResponse(
            changed=changed,
            version=current.version if current else None,
            refused=RefusalInfo(**dataclasses.asdict(refused)) if refused else None,
        ).model_dump(mode="json")

    def model(self) -> LoadedModel:
        current = self.holder.current
        if current is None:
            raise ModelUnavailable(
                f"no model is loaded: {self.holder.reason}",
                headers={"Retry-After": str(max(1, round(self.settings.reload_interval_seconds)))},
            )
        return current

    def log_writer(self) -> PredictionLogWriter:
        if self.writer is None:
            raise ModelUnavailable("the prediction log is not open; the server is starting or stopping")
        return self.writer

    # ------------------------------------------------------------------- validate → score → log

    async def predict(self, body: bytes, started: float) -> tuple[LoadedModel, dict[str, Any]]:
        """``POST /v1/predict``: one JSON object or an array of them; the model that answered and the answer.

        A small body is parsed on the event loop and, with micro-batching on, scored in a batch with
        concurrent requests; a large one is parsed in a worker thread and scored on its own.
        """
        small = len(body) <= INLINE_BODY_BYTES
        model = self.model()
        payload = parse_json(body) if small else await run_in_threadpool(parse_json, body)
        items, single = _items(payload, self.settings.max_batch_size, "of features")
        scored, ids = await self.score(model, items, single, started, batched=small and self.micro_batching)
        return model, predict_answer(model, single, scored.predictions, scored.probabilities, ids)

    async def score(
        self,
        model: LoadedModel,
        items: list[Any],
        single: bool,
        started: float,
        prefix: tuple[str | int, ...] = ("body",),
        *,
        batched: bool = False,
    ) -> tuple[Scored, list[str]]:
        """Validate, score and log records of any protocol; the scores and their request ids.

        ``batched``: scored by the micro-batcher with concurrent requests; otherwise on their own. Each
        step runs on the event loop for a few records and in a worker thread for more, so the loop never
        stalls on a large request.
        """
        large = len(items) > INLINE_RECORDS
        # Written out rather than through a helper: this is the hot path, and each await costs.
        if large:
            records = await run_in_threadpool(self._validated, model, items, single, prefix)
        else:
            records = self._validated(model, items, single, prefix)
        try:
            if batched:
                scored = await self.batcher.submit(model, records)
            elif _cheap(model, len(records)):
                scored = model.score_records(records)
            else:
                scored = await run_in_threadpool(model.score_records, records)
        except Exception as exc:  # input passed the contract, so this is the model's fault, not the caller's
            raise _scoring_failed(model, records, exc) from None
        if large:
            return scored, await run_in_threadpool(self._logged, model, records, scored, started)
        return scored, self._logged(model, records, scored, started)

    def _validated(self, model: LoadedModel, items: list[Any], single: bool, prefix: tuple[str | int, ...]) -> Records:
        if len(items) > self.settings.max_batch_size:
            raise PayloadTooLarge(
                f"batch of {len(items)} records exceeds serve.max_batch_size={self.settings.max_batch_size}; "
                "split it into smaller requests"
            )
        return [record_of(v) for v in _validate_all(items, single, model.request_model, prefix)]

    def _logged(self, model: LoadedModel, records: Records, scored: Scored, started: float) -> list[str]:
        """Request ids for scored records, which are logged, counted and offered to the challenger."""
        ids = request_ids(len(records))
        ts = utc_now()
        # Every row carries the latency of the request that produced it, as the caller experienced it.
        latency_ms = (time.perf_counter() - started) * 1000
        rows = [
            PredictionRow(request_id, ts, model.version, record, prediction, latency_ms)
            for request_id, record, prediction in zip(ids, records, scored.predictions, strict=True)
        ]
        self.log_writer().log_many(rows)
        self.metrics.observe_predictions(scored.predictions, model.task)
        self.shadow.offer(self.holder.challenger, records, ids, scored.predictions, model.version)
        return ids

    # ---------------------------------------------------------------------------------- feedback

    def feedback(self, body: bytes) -> int:
        items, single = _items(parse_json(body), self.settings.max_batch_size, "with request_id and label")
        labels = [(item.request_id, item.label) for item in _validate_all(items, single, FeedbackItem)]
        writer = self.log_writer()
        # Labels mostly come long after their predictions were stored: attach first (all or none), and only
        # if an id is not in the log yet wait for the writer's queue and try again. Flushing on every call
        # queued each feedback request behind every worker's writer (seconds under load, on SQLite).
        unknown = writer.store.attach_labels(labels)
        if unknown and writer.pending:
            writer.flush(FEEDBACK_FLUSH_SECONDS)  # a label for a just-served request must find its row
            unknown = writer.store.attach_labels(labels)
        if unknown:
            shown = ", ".join(unknown[:20]) + (f" and {len(unknown) - 20} more" if len(unknown) > 20 else "")
            raise UnknownRequestIds(
                f"unknown request_id(s): {shown}. No prediction with these ids is in the log, so no label "
                "was attached; send the request_id a /v1/predict answer returned."
            )
        return len(labels)


def service_of(request: Request) -> Service:
    """The ``Service`` of the app answering ``request``."""
    service: Service = request.app.state.service
    return service


def _freeze_heap() -> None:
    """Exempt what is loaded now (MLflow, scikit-learn, the model: millions of objects) from the GC.

    The garbage collector's full collections walk every tracked object; with the whole stack loaded
    that took hundreds of milliseconds, an answer delayed that long every few thousand requests. Frozen
    objects are never scanned again; requests' own short-lived objects are collected as before.
    """
    gc.collect()
    gc.freeze()


def _score(model: LoadedModel, records: Records) -> Scored:
    return model.score_records(records)


def _split(scored: Scored, start: int, stop: int) -> Scored:
    probabilities = scored.probabilities[start:stop] if scored.probabilities is not None else None
    return Scored(scored.predictions[start:stop], probabilities)


def _cheap(model: LoadedModel, rows: int) -> bool:
    """Score on the event loop: the compiled path on a small batch takes well under a millisecond."""
    return model.fast is not None and rows <= SMALL_BATCH_ROWS


def _scoring_failed(model: LoadedModel, records: Records, exc: Exception) -> ServeError:
    log.error("version %s failed to score %d record(s)", model.version, len(records), exc_info=exc)
    return ServeError(f"model version {model.version} failed to score the request: {exc}")


__all__ = ["Service", "service_of"]

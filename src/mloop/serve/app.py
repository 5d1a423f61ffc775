"""The inference service: ``create_app(project)`` builds the FastAPI app of one project.

The lifespan opens the prediction log, loads the champion and starts the reloader; without a champion
the app still starts (``/health`` is 200, ``/ready`` and ``/v1/predict`` are 503 with the reason) and
begins serving as soon as one is promoted. Requests are validated against the request model of the
version loaded *now*, so a hot-reloaded champion with another schema is enforced at once; ``/docs``
shows the schema of the version loaded at startup.

The hot path, ``POST /v1/predict``, is answered by ``HotPredictRoute`` in plain ASGI: validated on
the event loop and scored in micro-batches (``mloop.serve.batcher``) by the compiled pipeline, with
the same validation, errors and answers as the FastAPI route that documents it.

Only this layer turns errors into HTTP answers: every error body is ``{"detail": ...}``, a string, or
for invalid input a list of ``{"loc", "msg", "type"}`` whose ``loc`` names the field (and the record
index in a batch). Bad input is a 4xx, never a 500 or a stack trace.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import time
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mloop.data.predictions import PredictionRow, utc_now
from mloop.errors import (
    HTTPProblem,
    InvalidInput,
    MloopError,
    ModelUnavailable,
    PayloadTooLarge,
    ServeError,
    UnknownRequestIds,
)
from mloop.project import Project
from mloop.registry.versions import CHAMPION, VersionInfo
from mloop.serve.batcher import BatchRecord, MicroBatcher
from mloop.serve.dashboard import dashboard_router
from mloop.serve.fastpath import SMALL_BATCH_ROWS
from mloop.serve.http import (
    BodyLimitMiddleware,
    OrjsonResponse,
    parse_json,
    problem,
    status_of,
    validation_details,
)
from mloop.serve.metrics import ServeMetrics, prediction_buckets
from mloop.serve.model_holder import LoadedModel, ModelHolder, Refusal, Scored
from mloop.serve.prediction_log import PredictionLogWriter
from mloop.serve.protocols import invocations_router, protocol_bodies, protocol_schemas, v2_router
from mloop.serve.schemas import (
    BatchPredictResponse,
    ErrorResponse,
    FastPathInfo,
    FeatureInfo,
    FeedbackItem,
    FeedbackResponse,
    HealthResponse,
    ModelResponse,
    PredictResponse,
    ReadyResponse,
    RefusalInfo,
    ReloadResponse,
    record_of,
)
from mloop.serve.security import ApiKeyMiddleware, ApiKeys
from mloop.serve.shadow import ShadowScorer

log = logging.getLogger(__name__)

MAX_REPORTED_ERRORS = 100  # a 10,000-record batch of garbage gets a readable answer, not megabytes
FEEDBACK_FLUSH_SECONDS = 5.0
SPILL_DIR = "predictions-spill"  # beside the prediction log: rows kept while the store is down
PREDICT_PATH = "/v1/predict"
FEEDBACK_PATH = "/v1/feedback"
# Bodies up to this size (a couple of dozen records) are parsed and validated on the event loop and
# join a micro-batch; larger ones are handled whole in a worker thread, so the loop never stalls.
INLINE_BODY_BYTES = 64 * 1024
BATCH_TRACE_ENV = "MLOOP_BATCH_TRACE"  # a file to append one JSON line per micro-batch to (tests, tuning)


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


# ---------------------------------------------------------------------------------- service


class Service:
    """What the routes share: the model holder, the prediction log and the metrics."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.settings = project.config.serve
        self.metrics = ServeMetrics(project.monitor_dir)
        self.holder = ModelHolder(project, on_swap=self._on_swap, on_refuse=self._on_refuse)
        self.writer: PredictionLogWriter | None = None
        self.shadow = ShadowScorer(
            self.settings.shadow_fraction,
            self.log_writer,
            on_scored=self.metrics.shadow_scored.inc,
            on_skipped=self.metrics.shadow_skipped.inc,
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

    def _on_batch(self, batch: BatchRecord) -> None:
        self.metrics.observe_batch(batch.rows, batch.longest_wait)
        if self._batch_trace:
            with open(self._batch_trace, "ab") as trace:
                trace.write(orjson.dumps({"pid": os.getpid(), **dataclasses.asdict(batch)}) + b"\n")

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

    # ------------------------------------------------------------------------ predict, in a thread

    def predict(self, body: bytes, started: float) -> tuple[LoadedModel, dict[str, Any]]:
        model = self.model()
        items, single = _items(parse_json(body), self.settings.max_batch_size, "of features")
        scored, ids = self.score_items(model, items, single, started)
        return model, _predict_answer(model, single, scored.predictions, scored.probabilities, ids)

    def score_items(
        self,
        model: LoadedModel,
        items: list[Any],
        single: bool,
        started: float,
        prefix: tuple[str | int, ...] = ("body",),
    ) -> tuple[Scored, list[str]]:
        """Validate, score and log records of any protocol; the answers and their request ids."""
        if len(items) > self.settings.max_batch_size:
            raise PayloadTooLarge(
                f"batch of {len(items)} records exceeds serve.max_batch_size={self.settings.max_batch_size}; "
                "split it into smaller requests"
            )
        records = [record_of(v) for v in _validate_all(items, single, model.request_model, prefix)]
        try:
            scored = model.score_records(records)
        except Exception as exc:  # input passed the contract, so this is the model's fault, not the caller's
            raise _scoring_failed(model, records, exc) from None
        return scored, self._scored(model, records, scored, started)

    def _scored(self, model: LoadedModel, records: list[dict[str, Any]], scored: Scored, started: float) -> list[str]:
        """Request ids for scored records, which are logged, counted and offered to the challenger."""
        ids = request_ids(len(records))
        self._log(model, records, scored.predictions, ids, started)
        self.metrics.observe_predictions(scored.predictions, model.task)
        self.shadow.offer(self.holder.challenger, records, ids)
        return ids

    # ------------------------------------------------------------------- predict, on the event loop

    async def predict_batched(self, body: bytes, started: float) -> tuple[LoadedModel, dict[str, Any]]:
        """``predict`` for a small body: validated here, scored in a micro-batch with concurrent requests."""
        model = self.model()
        items, single = _items(parse_json(body), self.settings.max_batch_size, "of features")
        records = [record_of(v) for v in _validate_all(items, single, model.request_model)]
        try:
            scored = await self.batcher.submit(model, records)
        except Exception as exc:  # as in score_items: the model's fault
            raise _scoring_failed(model, records, exc) from None
        ids = self._scored(model, records, scored, started)
        return model, _predict_answer(model, single, scored.predictions, scored.probabilities, ids)

    def _log(
        self, model: LoadedModel, records: list[dict[str, Any]], predictions: list[Any], ids: list[str], started: float
    ) -> None:
        ts = utc_now()
        # Every row carries the latency of the request that produced it, as the caller experienced it.
        latency_ms = (time.perf_counter() - started) * 1000
        rows = [
            PredictionRow(request_id, ts, model.version, record, prediction, latency_ms)
            for request_id, record, prediction in zip(ids, records, predictions, strict=True)
        ]
        self.log_writer().log_many(rows)

    def feedback(self, body: bytes) -> int:
        items, single = _items(parse_json(body), self.settings.max_batch_size, "with request_id and label")
        labels = [(item.request_id, item.label) for item in _validate_all(items, single, FeedbackItem)]
        writer = self.log_writer()
        writer.flush(FEEDBACK_FLUSH_SECONDS)  # a label for a just-served request must find its row
        unknown = writer.store.attach_labels(labels)
        if unknown:
            shown = ", ".join(unknown[:20]) + (f" and {len(unknown) - 20} more" if len(unknown) > 20 else "")
            raise UnknownRequestIds(
                f"unknown request_id(s): {shown}. No prediction with these ids is in the log, so no label "
                "was attached; send the request_id a /v1/predict answer returned."
            )
        return len(labels)


def _freeze_heap() -> None:
    """Exempt what is loaded now (MLflow, scikit-learn, the model: millions of objects) from the GC.

    The garbage collector's full collections walk every tracked object; with the whole stack loaded
    that took hundreds of milliseconds, an answer delayed that long every few thousand requests. Frozen
    objects are never scanned again; requests' own short-lived objects are collected as before.
    """
    gc.collect()
    gc.freeze()


def request_ids(n: int) -> list[str]:
    """``n`` new request ids: UUIDs of version 7 (RFC 9562), a millisecond timestamp then 74 random bits.

    Unique like version 4, and ordered by time, so the prediction log's primary-key index grows at its
    end: a random id per row dirtied a random index page per row, which the log then wrote out (and
    checkpointed) on every commit, several kilobytes of disk writes per prediction.
    """
    millis = time.time_ns() // 1_000_000
    stamp = millis.to_bytes(6, "big")
    noise = os.urandom(10 * n)
    ids = []
    for i in range(n):
        raw = bytearray(stamp + noise[10 * i : 10 * i + 10])
        raw[6] = 0x70 | (raw[6] & 0x0F)  # version 7
        raw[8] = 0x80 | (raw[8] & 0x3F)  # RFC 4122 variant
        h = raw.hex()
        ids.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return ids


def _score(model: LoadedModel, records: list[dict[str, Any]]) -> Scored:
    return model.score_records(records)


def _split(scored: Scored, start: int, stop: int) -> Scored:
    probabilities = scored.probabilities[start:stop] if scored.probabilities is not None else None
    return Scored(scored.predictions[start:stop], probabilities)


def _cheap(model: LoadedModel, rows: int) -> bool:
    """Score on the event loop: the compiled path on a small batch takes well under a millisecond."""
    return model.fast is not None and rows <= SMALL_BATCH_ROWS


def _scoring_failed(model: LoadedModel, records: list[dict[str, Any]], exc: Exception) -> ServeError:
    log.error("version %s failed to score %d record(s)", model.version, len(records), exc_info=exc)
    return ServeError(f"model version {model.version} failed to score the request: {exc}")


def _predict_answer(
    model: LoadedModel,
    single: bool,
    predictions: list[Any],
    probabilities: list[dict[str, float]] | None,
    ids: list[str],
) -> dict[str, Any]:
    if single:
        answer: dict[str, Any] = {"prediction": predictions[0], "request_id": ids[0], "model_version": model.version}
        if probabilities is not None:
            answer["probabilities"] = probabilities[0]
        return answer
    answer = {"predictions": predictions, "request_ids": ids, "model_version": model.version}
    if probabilities is not None:
        answer["probabilities"] = probabilities
    return answer


def _metrics_of(info: VersionInfo) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in info.tags.items():
        if key.startswith("mloop.metric."):
            try:
                out[key.removeprefix("mloop.metric.")] = float(value)
            except ValueError:
                continue
    return out


def _describe(model: LoadedModel, name: str, refused: Refusal | None = None) -> dict[str, Any]:
    contract = model.contract
    features = [
        FeatureInfo(name=c, dtype=s.dtype, nullable=s.nullable, categories=s.categories)
        for c, s in ((c, contract.columns[c]) for c in contract.features)
    ]
    return ModelResponse(
        name=name,
        version=model.version,
        alias=model.alias,
        run_id=model.info.run_id,
        task=model.task,
        metrics=_metrics_of(model.info),
        contract_hash=contract.hash(),
        loaded_at=model.loaded_at,
        classes=model.classes,
        features=features,
        fast_path=FastPathInfo(**dataclasses.asdict(model.fast_path)),
        artifact_sha256=model.artifact_sha256,
        refused=RefusalInfo(**dataclasses.asdict(refused)) if refused else None,
    ).model_dump(mode="json")


# ----------------------------------------------------------------------------------- routes


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        413: "Batch larger than serve.max_batch_size.",
        422: "Invalid JSON or a missing, unknown or wrongly typed field; `loc` names it.",
        503: "No model is loaded yet.",
    }.items()
}

predict_router = APIRouter(tags=["predict"])


@predict_router.post(
    PREDICT_PATH,
    summary="Predict for one record or a batch",
    response_model=PredictResponse | BatchPredictResponse,
    responses=_ERRORS,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {}}}}},
)
async def predict(request: Request, service: ServiceDep) -> Response:
    """One JSON object of features answers one prediction; a JSON array answers one per record."""
    started = time.perf_counter()
    body = await request.body()
    model, answer = await run_in_threadpool(service.predict, body, started)
    request.state.model_version = model.version
    return OrjsonResponse(answer)


feedback_router = APIRouter(tags=["feedback"])


@feedback_router.post(
    FEEDBACK_PATH,
    summary="Attach true labels to earlier predictions",
    response_model=FeedbackResponse,
    responses={404: {"model": ErrorResponse, "description": "A request_id is not in the log."}, **_ERRORS},
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {}}}}},
)
async def feedback(request: Request, service: ServiceDep) -> Response:
    """`{"request_id", "label"}` or an array of them; all are attached, or none if an id is unknown."""
    body = await request.body()
    attached = await run_in_threadpool(service.feedback, body)
    return OrjsonResponse({"attached": attached})


model_router = APIRouter(tags=["model"])


@model_router.get("/v1/model", response_model=ModelResponse, responses={503: _ERRORS[503]})
async def describe_model(service: ServiceDep) -> Response:
    """The loaded model: version, alias, run, task, holdout metrics and input features."""
    return OrjsonResponse(_describe(service.model(), service.project.name, service.holder.refused))


admin_router = APIRouter(tags=["admin"])


@admin_router.post("/admin/reload", response_model=ReloadResponse, responses={401: {"model": ErrorResponse}})
async def reload_model(service: ServiceDep) -> Response:
    """Load the alias's target now (always needs an API key); a version that fails is refused."""
    return OrjsonResponse(await run_in_threadpool(service.reload))


ops_router = APIRouter(tags=["operations"])


@ops_router.get("/health", response_model=HealthResponse)
async def health() -> Response:
    """Liveness: the process answers, with or without a model."""
    return OrjsonResponse({"status": "ok"})


@ops_router.get("/ready", response_model=ReadyResponse, responses={503: _ERRORS[503]})
async def ready(service: ServiceDep) -> Response:
    """Readiness: 200 once a model is loaded, 503 with the reason before."""
    current = service.holder.current
    if current is None:
        return OrjsonResponse({"status": "unavailable", "detail": service.holder.reason}, status_code=503)
    return OrjsonResponse({"status": "ready", "model_version": current.version})


@ops_router.get("/metrics", response_class=Response)
async def metrics(service: ServiceDep) -> Response:
    """Prometheus metrics in the text exposition format."""
    content = await run_in_threadpool(service.metrics.render)
    return Response(content, media_type=service.metrics.content_type)


# ------------------------------------------------------------------------------ middleware


class InstrumentMiddleware:
    """Counts and times every request by route, status and the model version that answered it."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: MutableMapping[str, Any], status: int, seconds: float) -> None:
        endpoint = getattr(scope.get("route"), "path", "unmatched")
        version = (scope.get("state") or {}).get("model_version")
        if version is None:
            current = self.service.holder.current
            version = current.version if current else "none"
        self.service.metrics.requests.labels(endpoint, str(status), str(version)).inc()
        self.service.metrics.duration.labels(endpoint).observe(seconds)


_JSON_HEADERS = [(b"content-type", b"application/json")]
# The FastAPI route of the path: metrics label requests by route, for this layer's answers too.
_PREDICT_ROUTE = next(r for r in predict_router.routes if getattr(r, "path", None) == PREDICT_PATH)


class HotPredictRoute:
    """``POST /v1/predict`` answered in plain ASGI, before FastAPI's request machinery.

    The FastAPI route of the same path stays registered, so ``/docs`` shows its request and answer
    schemas; this layer answers first, with the same validation (the version's request model), the
    same errors (``{"detail": ...}`` with the same statuses and headers) and the same answers, and
    without a dependency resolution, a request object or a thread hand-over per request. Small bodies
    are validated on the event loop and scored in a micro-batch; large ones go whole to a thread. It
    sits inside the API-key, body-limit and metrics middleware, so those apply unchanged.
    """

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PREDICT_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers: dict[str, str] | None = None
        try:
            body = await _read_body(receive)
            if body is None:
                return  # the client went away before sending its request
            if len(body) > INLINE_BODY_BYTES:
                model, answer = await run_in_threadpool(self.service.predict, body, started)
            else:
                model, answer = await self.service.predict_batched(body, started)
            scope.setdefault("state", {})["model_version"] = model.version
            status, content = 200, answer
        except HTTPProblem as exc:
            status, content, headers = status_of(exc), {"detail": exc.detail}, exc.headers
        except MloopError as exc:
            status, content = 500, {"detail": str(exc)}
        except Exception as exc:  # as the app's handler: a 500 without internals, the traceback in the log
            log.exception("unexpected error answering %s", PREDICT_PATH)
            status, content = 500, {"detail": f"internal error ({type(exc).__name__}); see the server log"}
        scope["route"] = _PREDICT_ROUTE
        payload = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
        raw_headers = [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode())]
        if headers:
            raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": payload})


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


# ------------------------------------------------------------------------------------- app


def _json_body(ref: str) -> dict[str, Any]:
    item = {"$ref": f"#/components/schemas/{ref}"}
    return {"oneOf": [item, {"type": "array", "items": item}]}


class InferenceApp(FastAPI):
    """FastAPI whose OpenAPI document shows the request schema of the model loaded at startup."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = get_openapi(
                title=self.title, version=self.version, description=self.description, routes=self.routes
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            service: Service = self.state.service
            model = service.startup_model or service.holder.current
            if model is not None:
                components.update(_component(model.request_model, "PredictRecord"))
            else:
                components["PredictRecord"] = {
                    "type": "object",
                    "description": "Features of one record; no model was loaded at startup, see GET /v1/model.",
                }
            components.update(_component(FeedbackItem, "FeedbackItem"))
            for path, ref in ((PREDICT_PATH, "PredictRecord"), (FEEDBACK_PATH, "FeedbackItem")):
                content = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
                content["schema"] = _json_body(ref)
            components.update(protocol_schemas("PredictRecord"))
            for (path, method), bodies in protocol_bodies("PredictRecord").items():
                operation = schema["paths"].get(path, {}).get(method)
                if operation is not None:
                    operation["requestBody"] = bodies["requestBody"]
                    operation.setdefault("responses", {}).update(bodies["responses"])
            self.openapi_schema = schema
        return self.openapi_schema


def _component(model: type[BaseModel], name: str) -> dict[str, Any]:
    schema = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
    defs: dict[str, Any] = schema.pop("$defs", {})
    return {**defs, name: schema}


def _install_error_handlers(app: FastAPI) -> None:
    async def problem(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPProblem)  # noqa: S101 - registered for HTTPProblem only
        return OrjsonResponse({"detail": exc.detail}, status_code=status_of(exc), headers=exc.headers)

    async def mloop_error(_: Request, exc: Exception) -> Response:
        return OrjsonResponse({"detail": str(exc)}, status_code=500)

    async def unexpected(_: Request, exc: Exception) -> Response:
        # Starlette re-raises after this answer, so uvicorn logs the traceback; the client never sees it.
        return OrjsonResponse({"detail": f"internal error ({type(exc).__name__}); see the server log"}, status_code=500)

    app.add_exception_handler(HTTPProblem, problem)
    app.add_exception_handler(MloopError, mloop_error)
    app.add_exception_handler(Exception, unexpected)


def _package_version() -> str:
    try:
        return version("mloop")
    except PackageNotFoundError:
        return "0+unknown"


def _api_keys(project: Project) -> ApiKeys:
    settings = project.config.serve
    file = None
    if settings.api_keys_file:
        file = Path(settings.api_keys_file)
        file = file if file.is_absolute() else project.root / file
    return ApiKeys.load(settings.api_keys_env, file)


def create_app(project: Project) -> FastAPI:
    """The inference app of ``project``; nothing is loaded until the app starts (its lifespan)."""
    service = Service(project)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(service.start)
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)

    app = InferenceApp(
        title=f"mloop · {project.name}",
        version=_package_version(),
        description=f"Predictions of the `{CHAMPION}` version of the registered model `{project.name}`.",
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
    )
    app.state.service = service
    app.state.project = project  # what the dashboard router reads; the dashboard-only app sets it too
    routers = (predict_router, feedback_router, model_router, ops_router, invocations_router, v2_router, admin_router)
    for router in routers:
        app.include_router(router)
    app.include_router(dashboard_router)
    _install_error_handlers(app)
    app.add_middleware(HotPredictRoute, service=service)  # first added: the innermost of mloop's layers
    app.add_middleware(InstrumentMiddleware, service=service)
    app.add_middleware(BodyLimitMiddleware, max_bytes=project.config.serve.max_body_bytes)
    # Outermost, so a refused request costs nothing else; keys are read here, in the entry point.
    app.add_middleware(ApiKeyMiddleware, keys=_api_keys(project))
    return app


__all__ = ["InferenceApp", "Service", "create_app"]

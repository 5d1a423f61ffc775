"""``POST /invocations`` and ``GET /ping``: MLflow's scoring server and SageMaker's container contract.

The path is MLflow's, so the body decides: MLflow's JSON formats or CSV with a header are MLflow's;
JSON that is a record or a list of records, or CSV without a header (features in the contract's
order), is SageMaker's; ``Accept: text/csv`` answers one prediction per line. The request ids are in
the ``x-request-ids`` header, for up to ``MAX_HEADER_IDS`` records (``x-request-ids-omitted: N`` beyond:
send large batches that need ids for feedback to ``/v1/predict``, whose answer carries them).
"""

from __future__ import annotations

import math
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from mloop.errors import InconsistentInput, InvalidInput, UnsupportedMediaType
from mloop.serve.http import OrjsonResponse, parse_json, problem
from mloop.serve.model_holder import LoadedModel
from mloop.serve.protocols.mlflow import MLFLOW_KEYS, columnar, csv_records, mlflow_records
from mloop.serve.schemas import ReadyResponse
from mloop.serve.service import Service, service_of

REQUEST_IDS_HEADER = "x-request-ids"
OMITTED_HEADER = "x-request-ids-omitted"
# Ids of up to this many records go in the header (37 bytes each: under the 8 KiB that proxies allow a
# header); a larger batch's would not pass them, so its answer says how many were left out instead.
MAX_HEADER_IDS = 200


def _json_or_csv(request: Request) -> str:
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type in ("application/json", ""):
        return "json"
    if content_type in ("text/csv", "application/csv"):
        return "csv"
    raise UnsupportedMediaType(f"content-type {content_type!r} is not supported; send application/json or text/csv")


def _invocation_items(service: Service, body: bytes, kind: str) -> tuple[LoadedModel, list[Any], bool]:
    """The model, the records of the body, and whether they came as records (whose schema is exact)."""
    model = service.model()
    exact = kind != "csv"
    if kind == "csv":
        items, _ = csv_records(body, model)
    else:
        payload = parse_json(body)
        if isinstance(payload, dict) and any(k in payload for k in MLFLOW_KEYS):
            items = mlflow_records(payload)
            exact = not columnar(payload)
        elif isinstance(payload, dict):
            items = [payload]  # SageMaker JSON: one record
        elif isinstance(payload, list):
            items = payload
        else:
            raise InvalidInput([problem(["body"], "expected a JSON object or an array of records", "model_type")])
    if not items:
        raise InvalidInput([problem(["body"], "no records; send at least one", "too_short")])
    return model, items, exact


invocations_router = APIRouter(tags=["protocols"])


@invocations_router.post("/invocations", summary="MLflow scoring server and SageMaker inference")
async def invocations(request: Request) -> Response:
    """MLflow's JSON formats or CSV with a header; SageMaker's records or CSV without a header."""
    started = time.perf_counter()
    kind = _json_or_csv(request)
    body = await request.body()
    service = service_of(request)
    model, items, exact = await run_in_threadpool(_invocation_items, service, body, kind)
    try:
        scored, ids = await service.score(model, items, False, started)
    except InvalidInput as exc:
        if exact or isinstance(exc, InconsistentInput):
            raise
        raise InconsistentInput(exc.detail, exc.headers) from None  # columns and CSV: names/types not in the schema
    predictions = scored.predictions
    request.state.model_version = model.version
    if len(ids) <= MAX_HEADER_IDS:
        headers = {REQUEST_IDS_HEADER: ",".join(ids)}
    else:
        headers = {OMITTED_HEADER: str(len(ids))}
    if "text/csv" in request.headers.get("accept", ""):
        text = "".join(f"{'' if _is_nan(p) else p}\n" for p in predictions)
        return Response(text, media_type="text/csv", headers=headers)
    return OrjsonResponse({"predictions": predictions}, headers=headers)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


@invocations_router.get("/ping", summary="SageMaker health check", response_model=ReadyResponse)
async def ping(request: Request) -> Response:
    """200 once a model is loaded (SageMaker sends traffic only then), 503 with the reason before."""
    holder = service_of(request).holder
    if holder.current is None:
        return OrjsonResponse({"status": "unavailable", "detail": holder.reason}, status_code=503)
    return OrjsonResponse({"status": "ready", "model_version": holder.current.version})


__all__ = ["MAX_HEADER_IDS", "OMITTED_HEADER", "REQUEST_IDS_HEADER", "invocations_router"]

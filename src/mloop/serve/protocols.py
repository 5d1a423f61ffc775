"""The protocols platforms already speak, on the same server and the same scoring path as ``/v1/predict``.

- MLflow's scoring server: ``POST /invocations`` with JSON ``dataframe_split``, ``dataframe_records``,
  ``inputs``/``instances`` (records or columns), or CSV with a header; answers ``{"predictions": [...]}``.
- SageMaker's container contract: ``GET /ping`` and ``POST /invocations``. The path is MLflow's, so the
  body decides: JSON that is a record or a list of records, or CSV without a header (features in the
  contract's order), is SageMaker's; ``Accept: text/csv`` answers one prediction per line.
- The Open Inference Protocol v2 (KServe): ``/v2/health/live|ready``, ``/v2/models/{name}[/ready]`` and
  ``/v2/models/{name}[/versions/{v}]/infer`` with one input tensor per feature.

Every record is validated by the version's request model, scored by the (compiled) model and logged
with its request id, which is returned in the ``x-request-ids`` header (and V2's ``parameters``).
"""

from __future__ import annotations

import io
import math
import time
from typing import TYPE_CHECKING, Any

import pandas as pd
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from mloop.errors import HTTPProblem, InvalidInput, NotFound, UnsupportedMediaType
from mloop.serve.fastpath import records_of
from mloop.serve.http import OrjsonResponse, parse_json, problem, status_of
from mloop.serve.model_holder import LoadedModel

if TYPE_CHECKING:
    from mloop.serve.app import Service

MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "inputs", "instances")
REQUEST_IDS_HEADER = "x-request-ids"
V2_NUMERIC = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"}
V2_TYPES = V2_NUMERIC | {"BYTES"}


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


# ---------------------------------------------------------------------------------- parsing


def _rows_to_records(columns: Any, data: Any, where: list[str | int]) -> list[Any]:
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InvalidInput([problem([*where, "columns"], "expected a list of column names", "list_type")])
    if not isinstance(data, list):
        raise InvalidInput([problem([*where, "data"], "expected a list of rows", "list_type")])
    records = []
    for index, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            msg = f"expected a list of {len(columns)} values, one per column"
            raise InvalidInput([problem([*where, "data", index], msg, "list_length")])
        records.append(dict(zip(columns, row, strict=True)))
    return records


def _columns_to_records(columns: dict[str, Any], where: list[str | int]) -> list[Any]:
    """``{"col": [v, ...]}`` (or scalars, for one record) as records."""
    if all(not isinstance(v, list) for v in columns.values()):
        return [columns]
    lengths = {name: len(v) if isinstance(v, list) else -1 for name, v in columns.items()}
    n = max(lengths.values())
    for name, length in lengths.items():
        if length != n:
            raise InvalidInput(
                [problem([*where, name], f"expected a list of {n} values like the other columns", "list_length")]
            )
    return [{name: values[i] for name, values in columns.items()} for i in range(n)]


def mlflow_records(payload: dict[str, Any]) -> list[Any]:
    """The records of an MLflow scoring-server JSON body (exactly one input key, optional ``params``)."""
    keys = [k for k in MLFLOW_KEYS if k in payload]
    extra = sorted(set(payload) - set(MLFLOW_KEYS) - {"params"})
    if len(keys) != 1 or extra:
        got = ", ".join(sorted(payload))
        msg = f"expected exactly one of {', '.join(MLFLOW_KEYS)} (and optionally params); got {got}"
        raise InvalidInput([problem(["body"], msg, "mlflow_format")])
    key = keys[0]
    value = payload[key]
    if key == "dataframe_split":
        if not isinstance(value, dict):
            raise InvalidInput([problem(["body", key], "expected an object with columns and data", "dict_type")])
        unknown = sorted(set(value) - {"columns", "data", "index"})
        if unknown:  # the index (pandas' orient="split") is accepted and not needed
            msg = "dataframe_split takes columns, data and optionally index"
            raise InvalidInput([problem(["body", key, unknown[0]], msg, "extra_forbidden")])
        return _rows_to_records(value.get("columns"), value.get("data"), ["body", key])
    if key == "dataframe_records":
        if not isinstance(value, list):
            raise InvalidInput([problem(["body", key], "expected a list of records", "list_type")])
        return value
    if isinstance(value, dict):
        return _columns_to_records(value, ["body", key])
    if isinstance(value, list):
        return value
    raise InvalidInput([problem(["body", key], "expected a list of records or an object of columns", "model_type")])


def _read_csv(body: bytes, model: LoadedModel, header: bool) -> pd.DataFrame:
    contract = model.contract
    text_columns = {c: str for c, s in contract.columns.items() if s.dtype in ("string", "datetime")}
    try:
        return pd.read_csv(
            io.BytesIO(body),
            header=0 if header else None,
            names=None if header else contract.features,
            dtype=text_columns,
        )
    except (ValueError, pd.errors.ParserError) as exc:
        raise InvalidInput([problem(["body"], f"the body is not readable CSV: {exc}", "csv_invalid")]) from None


def csv_records(body: bytes, model: LoadedModel) -> tuple[list[Any], str]:
    """Records of a CSV body and its flavour: ``mlflow`` (a header row) or ``sagemaker`` (no header)."""
    first = body.lstrip().split(b"\n", 1)[0].decode("utf-8", errors="replace")
    names = {n.strip().strip('"') for n in first.split(",")}
    known = set(model.contract.features) | set(model.contract.with_role("time", "id"))
    has_header = bool(names) and names <= known
    if not has_header and len(first.split(",")) != len(model.contract.features):
        msg = (
            f"a CSV without a header needs {len(model.contract.features)} values per row, the features in the "
            f"order of GET /v1/model; or start with a header row of feature names"
        )
        raise InvalidInput([problem(["body", 0], msg, "csv_columns")])
    frame = _read_csv(body, model, has_header)
    if frame.empty:
        raise InvalidInput([problem(["body"], "the CSV has no rows", "too_short")])
    return records_of(frame), "mlflow" if has_header else "sagemaker"


def _json_or_csv(request: Request) -> str:
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type in ("application/json", ""):
        return "json"
    if content_type in ("text/csv", "application/csv"):
        return "csv"
    raise UnsupportedMediaType(f"content-type {content_type!r} is not supported; send application/json or text/csv")


# ---------------------------------------------------------------------------- /invocations


def _invocations(service: Service, body: bytes, kind: str, started: float) -> tuple[LoadedModel, list[Any], list[str]]:
    model = service.model()
    if kind == "csv":
        items, _ = csv_records(body, model)
    else:
        payload = parse_json(body)
        if isinstance(payload, dict) and any(k in payload for k in MLFLOW_KEYS):
            items = mlflow_records(payload)
        elif isinstance(payload, dict):
            items = [payload]  # SageMaker JSON: one record
        elif isinstance(payload, list):
            items = payload
        else:
            raise InvalidInput([problem(["body"], "expected a JSON object or an array of records", "model_type")])
    if not items:
        raise InvalidInput([problem(["body"], "no records; send at least one", "too_short")])
    scored, ids = service.score_items(model, items, False, started)
    return model, scored.predictions, ids


invocations_router = APIRouter(tags=["protocols"])


@invocations_router.post("/invocations", summary="MLflow scoring server and SageMaker inference")
async def invocations(request: Request) -> Response:
    """MLflow's JSON formats or CSV with a header; SageMaker's records or CSV without a header."""
    started = time.perf_counter()
    kind = _json_or_csv(request)
    body = await request.body()
    model, predictions, ids = await run_in_threadpool(_invocations, _service(request), body, kind, started)
    request.state.model_version = model.version
    headers = {REQUEST_IDS_HEADER: ",".join(ids)}
    if "text/csv" in request.headers.get("accept", ""):
        text = "".join(f"{'' if _is_nan(p) else p}\n" for p in predictions)
        return Response(text, media_type="text/csv", headers=headers)
    return OrjsonResponse({"predictions": predictions}, headers=headers)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


@invocations_router.get("/ping", summary="SageMaker health check")
async def ping(request: Request) -> Response:
    """200 once a model is loaded (SageMaker sends traffic only then), 503 before."""
    return Response(status_code=200 if _service(request).holder.current is not None else 503)


# ------------------------------------------------------------------------------------- V2


def _v2_error(exc: HTTPProblem) -> Response:
    """V2 errors are ``{"error": "..."}``; ``detail`` keeps mloop's field-level problems."""
    message = exc.detail if isinstance(exc.detail, str) else str(exc)
    return OrjsonResponse({"error": message, "detail": exc.detail}, status_code=status_of(exc), headers=exc.headers)


def _v2_model(service: Service, name: str, version: str | None = None) -> LoadedModel:
    model = service.model()
    if name != service.project.name:
        raise NotFound(f"model {name!r} is not served here; this server serves {service.project.name!r}")
    if version is not None and version != model.version:
        raise NotFound(f"version {version} of {name!r} is not loaded; version {model.version} is")
    return model


def _v2_datatype(model: LoadedModel, column: str) -> str:
    dtype = model.contract.columns[column].dtype
    return {"integer": "INT64", "float": "FP64", "boolean": "BOOL"}.get(dtype, "BYTES")


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    out: list[Any] = []
    for item in data:
        out.extend(_flatten(item) if isinstance(item, list) else [item])
    return out


def v2_records(payload: Any) -> list[dict[str, Any]]:
    """Records of a V2 inference request: one tensor per feature, all with the same first dimension."""
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list) or not payload["inputs"]:
        raise InvalidInput([problem(["body", "inputs"], "expected a non-empty list of input tensors", "list_type")])
    columns: dict[str, list[Any]] = {}
    rows: int | None = None
    for index, tensor in enumerate(payload["inputs"]):
        where: list[str | int] = ["body", "inputs", index]
        if not isinstance(tensor, dict):
            raise InvalidInput([problem(where, "expected an object with name, shape, datatype and data", "dict_type")])
        missing = [k for k in ("name", "shape", "datatype", "data") if k not in tensor]
        if missing:
            raise InvalidInput([problem([*where, missing[0]], "field required", "missing")])
        name, shape, datatype = tensor["name"], tensor["shape"], tensor["datatype"]
        if datatype not in V2_TYPES:
            raise InvalidInput([problem([*where, "datatype"], f"unknown datatype {datatype!r}", "enum")])
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape) or not shape:
            raise InvalidInput([problem([*where, "shape"], "expected a list of non-negative sizes", "list_type")])
        data = _flatten(tensor["data"])
        if math.prod(shape) != len(data) or math.prod(shape[1:]) != 1:
            msg = f"input {name!r}: shape {shape} must be [n] or [n, 1] and match the {len(data)} values of data"
            raise InvalidInput([problem([*where, "shape"], msg, "shape")])
        if rows is not None and shape[0] != rows:
            msg = f"input {name!r} has {shape[0]} rows, the other inputs {rows}"
            raise InvalidInput([problem([*where, "shape"], msg, "shape")])
        rows = shape[0]
        columns[str(name)] = data
    return [{name: values[i] for name, values in columns.items()} for i in range(rows or 0)]


def _v2_infer(service: Service, name: str, version: str | None, body: bytes, started: float) -> dict[str, Any]:
    model = _v2_model(service, name, version)
    payload = parse_json(body)
    items = v2_records(payload)
    scored, ids = service.score_items(model, items, False, started, ("body", "inputs"))
    predictions = scored.predictions
    outputs: list[dict[str, Any]] = [
        {
            "name": "predict",
            "shape": [len(predictions)],
            "datatype": "BYTES" if model.task == "classification" else "FP64",
            "data": predictions,
        }
    ]
    if scored.probabilities is not None and model.classes is not None:
        flat = [row[c] for row in scored.probabilities for c in model.classes]
        outputs.append(
            {
                "name": "predict_proba",
                "shape": [len(predictions), len(model.classes)],
                "datatype": "FP64",
                "data": flat,
                "parameters": {"classes": ",".join(model.classes)},
            }
        )
    wanted = payload.get("outputs")
    if isinstance(wanted, list) and wanted:
        names = {o.get("name") for o in wanted if isinstance(o, dict)}
        outputs = [o for o in outputs if o["name"] in names]
    answer: dict[str, Any] = {
        "model_name": service.project.name,
        "model_version": model.version,
        "outputs": outputs,
        "parameters": {"request_ids": ",".join(ids)},
    }
    if isinstance(payload.get("id"), str):
        answer["id"] = payload["id"]
    return answer


v2_router = APIRouter(prefix="/v2", tags=["open inference protocol v2"])


@v2_router.get("", summary="V2 server metadata")
async def v2_server(request: Request) -> Response:
    return OrjsonResponse({"name": "mloop", "version": request.app.version, "extensions": []})


@v2_router.get("/health/live", summary="V2 liveness")
async def v2_live() -> Response:
    return OrjsonResponse({"live": True})


@v2_router.get("/health/ready", summary="V2 readiness")
async def v2_ready(request: Request) -> Response:
    ready = _service(request).holder.current is not None
    return OrjsonResponse({"ready": ready}, status_code=200 if ready else 503)


@v2_router.get("/models/{name}", summary="V2 model metadata")
@v2_router.get("/models/{name}/versions/{version}", summary="V2 model metadata of a version")
async def v2_metadata(request: Request, name: str, version: str | None = None) -> Response:
    try:
        model = _v2_model(_service(request), name, version)
    except HTTPProblem as exc:
        return _v2_error(exc)
    inputs = [{"name": c, "datatype": _v2_datatype(model, c), "shape": [-1]} for c in model.contract.features]
    outputs = [{"name": "predict", "datatype": "BYTES" if model.task == "classification" else "FP64", "shape": [-1]}]
    return OrjsonResponse(
        {"name": name, "versions": [model.version], "platform": "mloop-sklearn", "inputs": inputs, "outputs": outputs}
    )


@v2_router.get("/models/{name}/ready", summary="V2 model readiness")
async def v2_model_ready(request: Request, name: str) -> Response:
    try:
        _v2_model(_service(request), name)
    except HTTPProblem as exc:
        return _v2_error(exc)
    return OrjsonResponse({"name": name, "ready": True})


@v2_router.post("/models/{name}/infer", summary="V2 inference")
@v2_router.post("/models/{name}/versions/{version}/infer", summary="V2 inference on a version")
async def v2_infer(request: Request, name: str, version: str | None = None) -> Response:
    """One input tensor per feature (shape ``[n]``); the ``predict`` output has one value per row."""
    started = time.perf_counter()
    body = await request.body()
    service = _service(request)
    try:
        answer = await run_in_threadpool(_v2_infer, service, name, version, body, started)
    except HTTPProblem as exc:
        return _v2_error(exc)
    request.state.model_version = answer["model_version"]
    return OrjsonResponse(answer)


# ------------------------------------------------------------------------------ /docs schemas


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def protocol_schemas(record: str) -> dict[str, dict[str, Any]]:
    """OpenAPI components of the protocol bodies; ``record`` names the component of one record of features.

    The routes read their bodies themselves (one path, several formats), so FastAPI cannot infer these;
    they document exactly what ``mlflow_records``, ``csv_records`` and ``v2_records`` accept.
    """
    records = {"type": "array", "items": _ref(record), "minItems": 1}
    columns = {
        "type": "object",
        "description": "Column-oriented: each feature name maps to a list of values, one per record.",
        "additionalProperties": {"type": "array", "items": {}},
    }
    params = {"type": "object", "description": "Accepted and ignored (MLflow inference parameters)."}
    v2_input = {
        "type": "object",
        "title": "V2RequestInput",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string", "description": "A feature name (GET /v2/models/{name} lists them)."},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}, "description": "[n] or [n, 1]"},
            "datatype": {"type": "string", "enum": sorted(V2_TYPES)},
            "data": {"type": "array", "items": {}, "description": "n values (null for a missing value)."},
            "parameters": {"type": "object"},
        },
    }
    v2_output = {
        "type": "object",
        "title": "V2ResponseOutput",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string", "enum": ["predict", "predict_proba"]},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {"type": "string"},
            "data": {"type": "array", "items": {}},
            "parameters": {"type": "object"},
        },
    }
    return {
        "MlflowDataframeSplit": {
            "type": "object",
            "title": "MlflowDataframeSplit",
            "description": "MLflow scoring server: pandas' split orientation.",
            "required": ["dataframe_split"],
            "additionalProperties": False,
            "properties": {
                "dataframe_split": {
                    "type": "object",
                    "required": ["columns", "data"],
                    "additionalProperties": False,
                    "properties": {
                        "columns": {"type": "array", "items": {"type": "string"}},
                        "data": {"type": "array", "items": {"type": "array", "items": {}}},
                        "index": {"type": "array", "items": {}, "description": "Accepted and not needed."},
                    },
                },
                "params": params,
            },
        },
        "MlflowDataframeRecords": {
            "type": "object",
            "title": "MlflowDataframeRecords",
            "description": "MLflow scoring server: a list of records.",
            "required": ["dataframe_records"],
            "additionalProperties": False,
            "properties": {"dataframe_records": records, "params": params},
        },
        "MlflowInputs": {
            "type": "object",
            "title": "MlflowInputs",
            "description": "MLflow scoring server (tensor input): records, or columns of values.",
            "required": ["inputs"],
            "additionalProperties": False,
            "properties": {"inputs": {"oneOf": [records, columns]}, "params": params},
        },
        "MlflowInstances": {
            "type": "object",
            "title": "MlflowInstances",
            "description": "MLflow scoring server (TF-serving style): records, or columns of values.",
            "required": ["instances"],
            "additionalProperties": False,
            "properties": {"instances": {"oneOf": [records, columns]}, "params": params},
        },
        "InvocationsResponse": {
            "type": "object",
            "title": "InvocationsResponse",
            "required": ["predictions"],
            "properties": {
                "predictions": {
                    "type": "array",
                    "items": {"oneOf": [{"type": "number"}, {"type": "string"}]},
                    "description": "One per record, in order; the request ids are in the x-request-ids header.",
                }
            },
        },
        "V2InferenceRequest": {
            "type": "object",
            "title": "V2InferenceRequest",
            "description": "Open Inference Protocol v2 (KServe): one input tensor per feature.",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "parameters": {"type": "object"},
                "inputs": {"type": "array", "items": v2_input, "minItems": 1},
                "outputs": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                    "description": "Outputs wanted (predict, predict_proba); all by default.",
                },
            },
        },
        "V2InferenceResponse": {
            "type": "object",
            "title": "V2InferenceResponse",
            "required": ["model_name", "outputs"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "parameters": {
                    "type": "object",
                    "properties": {"request_ids": {"type": "string", "description": "Comma-separated, one per row."}},
                },
                "outputs": {"type": "array", "items": v2_output},
            },
        },
    }


def protocol_bodies(record: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The request and 200 bodies of each protocol route, keyed by (path, method), for the OpenAPI document."""
    invocations = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            _ref("MlflowDataframeSplit"),
                            _ref("MlflowDataframeRecords"),
                            _ref("MlflowInputs"),
                            _ref("MlflowInstances"),
                            _ref(record),
                            {"type": "array", "items": _ref(record)},
                        ]
                    }
                },
                "text/csv": {
                    "schema": {
                        "type": "string",
                        "description": "With a header row of feature names (MLflow), or without one, the features "
                        "in the order of GET /v1/model (SageMaker).",
                    }
                },
            },
        },
        "responses": {
            "200": {
                "description": "One prediction per record (CSV lines with Accept: text/csv).",
                "content": {
                    "application/json": {"schema": _ref("InvocationsResponse")},
                    "text/csv": {"schema": {"type": "string"}},
                },
            }
        },
    }
    infer = {
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("V2InferenceRequest")}}},
        "responses": {
            "200": {
                "description": "The predict output (and predict_proba for classification).",
                "content": {"application/json": {"schema": _ref("V2InferenceResponse")}},
            }
        },
    }
    return {
        ("/invocations", "post"): invocations,
        ("/v2/models/{name}/infer", "post"): infer,
        ("/v2/models/{name}/versions/{version}/infer", "post"): infer,
    }


__all__ = [
    "csv_records",
    "invocations_router",
    "mlflow_records",
    "protocol_bodies",
    "protocol_schemas",
    "v2_records",
    "v2_router",
]

"""The Open Inference Protocol v2 (KServe): ``/v2/health/live|ready``, ``/v2/models/{name}[/ready]`` and
``/v2/models/{name}[/versions/{v}]/infer`` with one input tensor per feature; the request ids are in
the answer's ``parameters``.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from mloop.errors import HTTPProblem, InconsistentInput, InvalidInput, NotFound
from mloop.serve.http import OrjsonResponse, parse_json, problem, status_of
from mloop.serve.model_holder import LoadedModel
from mloop.serve.service import Service, service_of

V2_NUMERIC = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"}
V2_TYPES = V2_NUMERIC | {"BYTES"}


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


V2_OUTPUTS = ("predict", "predict_proba")


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    out: list[Any] = []
    for item in data:
        out.extend(_flatten(item) if isinstance(item, list) else [item])
    return out


def _sizes(shape: Any) -> list[int] | None:
    """``shape`` as integers; JSON Schema's integers include 2.0, booleans are not numbers."""
    if not isinstance(shape, list) or not 1 <= len(shape) <= 2:
        return None
    sizes = []
    for size in shape:
        if isinstance(size, float) and size.is_integer():
            size = int(size)
        if type(size) is not int:
            return None
        sizes.append(size)
    return sizes


def _envelope(payload: Any) -> None:
    """422 for a body outside the V2InferenceRequest schema (what JSON Schema can say about it)."""
    if not isinstance(payload, dict):
        raise InvalidInput([problem(["body"], "expected a JSON object with inputs", "dict_type")])
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput([problem(["body", "inputs"], "expected a non-empty list of input tensors", "list_type")])
    for key, kind in (("id", str), ("parameters", dict)):
        if key in payload and not isinstance(payload[key], kind):
            expected = "a string" if kind is str else "an object"
            raise InvalidInput([problem(["body", key], f"expected {expected}", f"{kind.__name__}_type")])
    for index, tensor in enumerate(inputs):
        where: list[str | int] = ["body", "inputs", index]
        if not isinstance(tensor, dict):
            raise InvalidInput([problem(where, "expected an object with name, shape, datatype and data", "dict_type")])
        missing = [k for k in ("name", "shape", "datatype", "data") if k not in tensor]
        if missing:
            raise InvalidInput([problem([*where, missing[0]], "field required", "missing")])
        if not isinstance(tensor["name"], str):
            raise InvalidInput([problem([*where, "name"], "expected a feature name (a string)", "string_type")])
        if tensor["datatype"] not in V2_TYPES:
            msg = f"unknown datatype {tensor['datatype']!r}; one of {', '.join(sorted(V2_TYPES))}"
            raise InvalidInput([problem([*where, "datatype"], msg, "enum")])
        shape = _sizes(tensor["shape"])
        if shape is None or shape[0] < 1 or shape[1:] not in ([], [1]):
            msg = "expected [n] or [n, 1] with n >= 1 rows"
            raise InvalidInput([problem([*where, "shape"], msg, "list_type")])
        tensor["shape"] = shape
        if not isinstance(tensor["data"], list):
            raise InvalidInput([problem([*where, "data"], "expected a list of values", "list_type")])
        if "parameters" in tensor and not isinstance(tensor["parameters"], dict):
            raise InvalidInput([problem([*where, "parameters"], "expected an object", "dict_type")])
    outputs = payload.get("outputs")
    if outputs is None:
        return
    if not isinstance(outputs, list):
        raise InvalidInput([problem(["body", "outputs"], "expected a list of {name}", "list_type")])
    for index, output in enumerate(outputs):
        if not isinstance(output, dict) or output.get("name") not in V2_OUTPUTS:
            msg = f"expected an object whose name is one of {', '.join(V2_OUTPUTS)}"
            raise InvalidInput([problem(["body", "outputs", index, "name"], msg, "enum")])


def v2_records(payload: Any) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Records of a V2 inference request (one tensor per feature, all with the same first dimension), and
    the index of each feature's tensor. 422 outside the schema, 400 for what only its description says."""
    _envelope(payload)
    columns: dict[str, list[Any]] = {}
    tensors: dict[str, int] = {}
    rows: int | None = None
    for index, tensor in enumerate(payload["inputs"]):
        where: list[str | int] = ["body", "inputs", index]
        name, shape = tensor["name"], tensor["shape"]
        if name in tensors:
            msg = f"input {name!r} is sent twice (inputs {tensors[name]} and {index})"
            raise InconsistentInput([problem([*where, "name"], msg, "duplicate")])
        data = _flatten(tensor["data"])
        if shape[0] != len(data):
            msg = f"input {name!r}: shape {shape} says {shape[0]} rows, data has {len(data)} values"
            raise InconsistentInput([problem([*where, "shape"], msg, "shape")])
        if rows is not None and shape[0] != rows:
            msg = f"input {name!r} has {shape[0]} rows, the other inputs {rows}"
            raise InconsistentInput([problem([*where, "shape"], msg, "shape")])
        rows = shape[0]
        columns[name] = data
        tensors[name] = index
    return [{name: values[i] for name, values in columns.items()} for i in range(rows or 0)], tensors


def _tensor_problems(problems: list[dict[str, Any]], tensors: dict[str, int]) -> list[dict[str, Any]]:
    """Record-level problems (``body.inputs.<row>.<feature>``) located at the tensor that holds the value."""
    located = []
    for item in problems:
        loc = item["loc"]
        if len(loc) >= 4 and isinstance(loc[2], int) and isinstance(loc[3], str):
            row, feature = loc[2], loc[3]
            if feature in tensors:
                item = {**item, "loc": ["body", "inputs", tensors[feature], "data", row]}
            elif item["type"] == "missing":
                item = {**item, "loc": ["body", "inputs"], "msg": f"no input tensor named {feature!r}"}
            else:
                item = {**item, "loc": ["body", "inputs", feature]}
        located.append(item)
    return located


def _v2_items(
    service: Service, name: str, version: str | None, body: bytes
) -> tuple[LoadedModel, Any, list[Any], dict[str, int]]:
    model = _v2_model(service, name, version)
    payload = parse_json(body)
    records, tensors = v2_records(payload)
    return model, payload, records, tensors


async def _v2_infer(service: Service, name: str, version: str | None, body: bytes, started: float) -> dict[str, Any]:
    model, payload, items, tensors = await run_in_threadpool(_v2_items, service, name, version, body)
    try:
        scored, ids = await service.score(model, items, False, started, ("body", "inputs"))
    except InconsistentInput:
        raise
    except InvalidInput as exc:  # the schema cannot say which names and types each tensor takes: 400
        detail = _tensor_problems(exc.detail, tensors) if isinstance(exc.detail, list) else exc.detail
        raise InconsistentInput(detail, exc.headers) from None
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
    if wanted:  # checked by _envelope: objects named predict or predict_proba
        names = {o["name"] for o in wanted}
        outputs = [o for o in outputs if o["name"] in names]
    answer: dict[str, Any] = {
        "model_name": service.project.name,
        "model_version": model.version,
        "outputs": outputs,
        "parameters": {"request_ids": ",".join(ids)},
    }
    if "id" in payload:
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
    ready = service_of(request).holder.current is not None
    return OrjsonResponse({"ready": ready}, status_code=200 if ready else 503)


@v2_router.get("/models/{name}", summary="V2 model metadata")
@v2_router.get("/models/{name}/versions/{version}", summary="V2 model metadata of a version")
async def v2_metadata(request: Request, name: str, version: str | None = None) -> Response:
    try:
        model = _v2_model(service_of(request), name, version)
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
        _v2_model(service_of(request), name)
    except HTTPProblem as exc:
        return _v2_error(exc)
    return OrjsonResponse({"name": name, "ready": True})


@v2_router.post("/models/{name}/infer", summary="V2 inference")
@v2_router.post("/models/{name}/versions/{version}/infer", summary="V2 inference on a version")
async def v2_infer(request: Request, name: str, version: str | None = None) -> Response:
    """One input tensor per feature (shape ``[n]``); the ``predict`` output has one value per row."""
    started = time.perf_counter()
    body = await request.body()
    service = service_of(request)
    try:
        answer = await _v2_infer(service, name, version, body, started)
    except HTTPProblem as exc:
        return _v2_error(exc)
    request.state.model_version = answer["model_version"]
    return OrjsonResponse(answer)


__all__ = ["V2_OUTPUTS", "V2_TYPES", "v2_records", "v2_router"]

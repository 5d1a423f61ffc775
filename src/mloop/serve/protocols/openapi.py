"""The OpenAPI document of the inference app: the request schema of the model loaded at startup, and the
bodies of the protocol routes, which read their bodies themselves (one path, several formats), so
FastAPI cannot infer them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, TypeAdapter

from mloop.serve.protocols.v2 import V2_OUTPUTS, V2_TYPES


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


# What a 400 means on the routes whose formats JSON Schema cannot fully describe (columns, tensors, CSV).
RULES_IN_WORDS = (
    "The schema cannot check these rules, so a body that fits it but breaks one is answered 400 (not 422) "
    "with the field named: "
)


def _records(record: str, max_items: int) -> dict[str, Any]:
    return {"type": "array", "items": _ref(record), "minItems": 1, "maxItems": max_items}


def protocol_schemas(record: str, max_items: int) -> dict[str, dict[str, Any]]:
    """OpenAPI components of the protocol bodies; ``record`` names the component of one record of features,
    ``max_items`` is serve.max_batch_size.

    The routes read their bodies themselves (one path, several formats), so FastAPI cannot infer these;
    they document exactly what ``mlflow_records``, ``csv_records`` and ``v2_records`` accept, and say in
    words what JSON Schema cannot (answered 400, see ``InconsistentInput``).
    """
    records = _records(record, max_items)
    columns = {
        "type": "object",
        "description": "Column-oriented: each feature name maps to a list of values, one per record (or every "
        "feature to one value, for one record). "
        + RULES_IN_WORDS
        + "the names are the features of GET /v1/model, every required one present; the lists are of equal "
        "length; the values have the features' types.",
        "additionalProperties": {},
    }
    params = {"type": "object", "description": "Accepted and ignored (MLflow inference parameters)."}
    v2_input = {
        "type": "object",
        "title": "V2RequestInput",
        "description": RULES_IN_WORDS
        + "one tensor per feature of GET /v2/models/{name}, each named once; data holds n values (nested "
        "lists are flattened) of the feature's type; every tensor has the same n.",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string", "description": "A feature name (GET /v2/models/{name} lists them)."},
            "shape": {
                "type": "array",
                "description": "[n] or [n, 1]: n rows, at least one.",
                "prefixItems": [{"type": "integer", "minimum": 1}, {"const": 1}],
                "items": False,
                "minItems": 1,
                "maxItems": 2,
            },
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
                        "data": {"type": "array", "items": {"type": "array", "items": {}}, "minItems": 1},
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
            "properties": {"inputs": {"anyOf": [records, columns]}, "params": params},
        },
        "MlflowInstances": {
            "type": "object",
            "title": "MlflowInstances",
            "description": "MLflow scoring server (TF-serving style): records, or columns of values.",
            "required": ["instances"],
            "additionalProperties": False,
            "properties": {"instances": {"anyOf": [records, columns]}, "params": params},
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
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string", "enum": list(V2_OUTPUTS)},
                            "parameters": {"type": "object"},
                        },
                    },
                    "description": "Outputs wanted (predict, predict_proba); all by default.",
                },
            },
        },
        "V2ErrorResponse": {
            "type": "object",
            "title": "V2ErrorResponse",
            "required": ["error"],
            "properties": {
                "error": {"type": "string"},
                "detail": {"description": "mloop's field-level problems ({loc, msg, type}), or the message."},
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


def protocol_bodies(record: str, max_items: int) -> dict[tuple[str, str], dict[str, Any]]:
    """The request and 200 bodies of each protocol route, keyed by (path, method), for the OpenAPI document."""
    invocations = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            _ref("MlflowDataframeSplit"),
                            _ref("MlflowDataframeRecords"),
                            _ref("MlflowInputs"),
                            _ref("MlflowInstances"),
                            _ref(record),
                            _records(record, max_items),
                        ]
                    }
                },
                "text/csv": {
                    "schema": {
                        "type": "string",
                        "description": "With a header row of feature names (MLflow), or without one, the features "
                        "in the order of GET /v1/model (SageMaker). "
                        + RULES_IN_WORDS
                        + "at least one row; every row has a value per column; the values have the features' types.",
                    }
                },
            },
        },
        "responses": {
            "200": {
                "description": "One prediction per record (CSV lines with Accept: text/csv).",
                "headers": {
                    "x-request-ids": {
                        "description": "The request ids, comma-separated, for up to 200 records.",
                        "schema": {"type": "string"},
                    },
                    "x-request-ids-omitted": {
                        "description": "For more than 200 records: how many ids were left out (send large "
                        "batches that need ids to /v1/predict).",
                        "schema": {"type": "string"},
                    },
                },
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


# Every status each route can answer besides 200, and why; /v2 answers its errors as V2ErrorResponse.
_WHY = {
    "400": "The body fits the schema but breaks a rule its description states in words; `loc` names the field.",
    "401": "No or a wrong API key (when keys are configured; always for /admin).",
    "403": "The API key lacks this route's scope (predict, feedback or admin).",
    "404": "No such model, version or request id here.",
    "413": "Body larger than serve.max_body_bytes, or more records than serve.max_batch_size.",
    "415": "A content type the route cannot read.",
    "429": "Over serve.rate_limit for this key, token subject or client address; see Retry-After.",
    "422": "The body breaks the schema: invalid JSON, a missing, unknown or wrongly typed field; `loc` names it.",
    "503": "No model is loaded yet (or the prediction log is not open, or the token's JWKS cannot be fetched).",
}
_POSTED = ("401", "403", "413", "422", "429", "503")
_ANSWERS: dict[tuple[str, str], tuple[str, ...]] = {
    ("/v1/predict", "post"): _POSTED,
    ("/v1/feedback", "post"): (*_POSTED, "404"),
    ("/v1/model", "get"): ("503",),
    ("/ready", "get"): ("503",),
    ("/ping", "get"): ("503",),
    ("/invocations", "post"): (*_POSTED, "400", "415"),
    ("/v2/health/ready", "get"): ("503",),
    ("/v2/models/{name}", "get"): ("404", "503"),
    ("/v2/models/{name}/versions/{version}", "get"): ("404", "503"),
    ("/v2/models/{name}/ready", "get"): ("404", "503"),
    ("/v2/models/{name}/infer", "post"): (*_POSTED, "400", "404"),
    ("/v2/models/{name}/versions/{version}/infer", "post"): (*_POSTED, "400", "404"),
    ("/admin/reload", "post"): ("401", "403", "429", "503"),
}


def _document_errors(schema: dict[str, Any]) -> None:
    for (path, method), statuses in _ANSWERS.items():
        operation = schema["paths"].get(path, {}).get(method)
        if operation is None:
            continue
        body = _ref("V2ErrorResponse" if path.startswith("/v2/") else "ErrorResponse")
        responses = operation.setdefault("responses", {})
        for status in statuses:
            responses.setdefault(status, {"description": _WHY[status]})
            responses[status]["content"] = {"application/json": {"schema": body}}


def _json_body(ref: str, max_items: int) -> dict[str, Any]:
    item = _ref(ref)
    return {"anyOf": [item, {"type": "array", "items": item, "minItems": 1, "maxItems": max_items}]}


def _component(model: type[BaseModel], name: str) -> dict[str, Any]:
    schema = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
    defs: dict[str, Any] = schema.pop("$defs", {})
    return {**defs, name: schema}


def complete_document(
    schema: dict[str, Any],
    record: type[BaseModel] | None,
    bodies: Mapping[str, tuple[str, type[BaseModel] | None]],
    max_items: int,
) -> dict[str, Any]:
    """``schema`` (FastAPI's document) with the bodies FastAPI cannot see and every error status.

    ``record`` is the request model of the version loaded at startup (None: no model yet); ``bodies``
    maps a POST path to the component name of one record of its body and its model (None: ``record``).
    Each of those bodies is one record or an array of 1 to ``max_items`` (serve.max_batch_size) of
    them; the protocol routes get their own formats.
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for path, (name, model) in bodies.items():
        model = model or record
        if model is not None:
            components.update(_component(model, name))
        else:
            components[name] = {
                "type": "object",
                "description": "Features of one record; no model was loaded at startup, see GET /v1/model.",
            }
        content = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        content["schema"] = _json_body(name, max_items)
    components.update(protocol_schemas("PredictRecord", max_items))
    if record is not None:  # the loaded version's features: the names its V2 tensors take
        names = components["V2InferenceRequest"]["properties"]["inputs"]["items"]["properties"]["name"]
        names["enum"] = [field.alias or name for name, field in record.model_fields.items()]
    for (path, method), protocol in protocol_bodies("PredictRecord", max_items).items():
        operation = schema["paths"].get(path, {}).get(method)
        if operation is not None:
            operation["requestBody"] = protocol["requestBody"]
            operation.setdefault("responses", {}).update(protocol["responses"])
    _document_errors(schema)
    return schema


__all__ = ["complete_document", "protocol_bodies", "protocol_schemas"]

"""The OpenAPI document of the inference app: the request schema of the model loaded at startup, and the
bodies of the protocol routes, which read their bodies themselves (one path, several formats), so
FastAPI cannot infer them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, TypeAdapter

from mloop.serve.protocols.v2 import V2_TYPES


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


def _json_body(ref: str) -> dict[str, Any]:
    item = _ref(ref)
    return {"oneOf": [item, {"type": "array", "items": item}]}


def _component(model: type[BaseModel], name: str) -> dict[str, Any]:
    schema = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
    defs: dict[str, Any] = schema.pop("$defs", {})
    return {**defs, name: schema}


def complete_document(
    schema: dict[str, Any],
    record: type[BaseModel] | None,
    bodies: Mapping[str, tuple[str, type[BaseModel] | None]],
) -> dict[str, Any]:
    """``schema`` (FastAPI's document) with the bodies FastAPI cannot see.

    ``record`` is the request model of the version loaded at startup (None: no model yet); ``bodies``
    maps a POST path to the component name of one record of its body and its model (None: ``record``).
    Each of those bodies is one record or an array of them; the protocol routes get their own formats.
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
        content["schema"] = _json_body(name)
    components.update(protocol_schemas("PredictRecord"))
    for (path, method), protocol in protocol_bodies("PredictRecord").items():
        operation = schema["paths"].get(path, {}).get(method)
        if operation is not None:
            operation["requestBody"] = protocol["requestBody"]
            operation.setdefault("responses", {}).update(protocol["responses"])
    return schema


__all__ = ["complete_document", "protocol_bodies", "protocol_schemas"]

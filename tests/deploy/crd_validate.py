"""Strict validation of the custom resources the chart makes, which kubernetes-validate has no schema for.

Run by the tools venv's python (``.tools/venv/bin/python crd_validate.py FILE...``):

- Prometheus Operator objects (ServiceMonitor, PrometheusRule) against ``cloudcoil-models-prometheus-operator``,
  pydantic models generated from the operator's CRDs, which scripts/deploy-tools.sh installs. pydantic checks
  the types; unknown keys, which those models ignore, are reported here too (as ``kubernetes-validate
  --strict`` does).
- KEDA's ScaledObject against ``schemas/keda-scaledobject-v1alpha1.json`` beside this file: the CRD's own
  openAPIV3Schema (KEDA v2.20.2) made strict, checked with jsonschema (a dependency of kubernetes-validate in
  the same venv). KEDA reads a trigger's ``metadata`` as free strings and ignores keys it does not know (a
  misspelt ``lagCount`` silently falls back to a default), so the metadata keys of the triggers the chart uses
  are checked against the names KEDA's scalers read.

Prints one line per problem and exits 1 if there was any.
"""

from __future__ import annotations

import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import yaml
from cloudcoil.models.prometheus_operator import v1

KINDS = {"ServiceMonitor": v1.ServiceMonitor, "PrometheusRule": v1.PrometheusRule}
SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): Path(__file__).with_name("schemas") / "keda-scaledobject-v1alpha1.json"
}
# The trigger metadata KEDA v2.20.2 reads (the keda:"name=..." tags of pkg/scalers/redis_streams_scaler.go,
# redis_scaler.go and prometheus_scaler.go; "...FromEnv" names a variable of the scale target's container).
_REDIS_FROM_ENV = {"address", "addresses", "host", "hosts", "port", "ports", "username", "password"}
TRIGGER_METADATA = {
    "redis-streams": _REDIS_FROM_ENV
    | {f"{name}FromEnv" for name in _REDIS_FROM_ENV}
    | {
        "stream",
        "consumerGroup",
        "pendingEntriesCount",
        "streamLength",
        "lagCount",
        "activationLagCount",
        "databaseIndex",
        "enableTLS",
        "unsafeSsl",
    },
    "prometheus": {
        "serverAddress",
        "query",
        "queryParameters",
        "threshold",
        "activationThreshold",
        "namespace",
        "customHeaders",
        "ignoreNullValues",
        "unsafeSsl",
        "timeout",
        "awsRegion",
        "identityOwner",
    },
}


def _unknown_keys(value: Any, annotation: Any, path: str) -> list[str]:
    """Keys of `value` that the model type `annotation` (possibly nested in lists and Optionals) lacks."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unknown_keys(value, typing.get_args(annotation)[0], path)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(annotation) if a is not type(None)]
        results = [_unknown_keys(value, arm, path) for arm in arms]
        return min(results, key=len) if results else []
    if origin is list and isinstance(value, list):
        (item,) = typing.get_args(annotation) or (Any,)
        return [p for i, v in enumerate(value) for p in _unknown_keys(v, item, f"{path}[{i}]")]
    if origin is dict and isinstance(value, dict):
        args = typing.get_args(annotation)
        item = args[1] if len(args) == 2 else Any
        return [p for k, v in value.items() for p in _unknown_keys(v, item, f"{path}.{k}")]
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel) and isinstance(value, dict):
        fields = {(f.alias or name): f for name, f in annotation.model_fields.items()}
        problems = []
        for key, item in value.items():
            if key not in fields:
                problems.append(f"{path}.{key}: unknown field of {annotation.__name__}")
            else:
                problems += _unknown_keys(item, fields[key].annotation, f"{path}.{key}")
        return problems
    return []


def _schema_problems(doc: dict[str, Any], name: str) -> list[str]:
    """A ScaledObject against its strict JSON schema, then its triggers' metadata keys."""
    schema = json.loads(SCHEMAS[(doc["apiVersion"], doc["kind"])].read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    problems = [
        f"{name}: {'.'.join(map(str, err.absolute_path)) or '(root)'}: {err.message}"
        for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    ]
    triggers = doc.get("spec", {}).get("triggers", [])
    for i, trigger in enumerate(triggers if isinstance(triggers, list) else []):
        known = TRIGGER_METADATA.get(trigger.get("type")) if isinstance(trigger, dict) else None
        metadata = trigger.get("metadata") if isinstance(trigger, dict) else None
        if known is not None and isinstance(metadata, dict):
            for key in sorted(set(metadata) - known):
                problems.append(
                    f"{name}: spec.triggers[{i}].metadata.{key}: KEDA's {trigger['type']} scaler reads no {key}"
                )
    return problems


def is_checked(doc: dict[str, Any]) -> bool:
    return doc.get("kind") in KINDS or (doc.get("apiVersion"), doc.get("kind")) in SCHEMAS


def validate(doc: dict[str, Any]) -> list[str]:
    name = f"{doc['kind']}/{doc.get('metadata', {}).get('name')}"
    if (doc.get("apiVersion"), doc["kind"]) in SCHEMAS:
        return _schema_problems(doc, name)
    model = KINDS[doc["kind"]]
    try:
        model.model_validate(doc)
    except pydantic.ValidationError as exc:
        return [f"{name}: {err['loc']}: {err['msg']}" for err in exc.errors()]
    return [f"{name}: {problem}" for problem in _unknown_keys(doc, model, "")]


def main(paths: list[str]) -> int:
    problems, checked = [], 0
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for doc in yaml.safe_load_all(handle):
                if doc and is_checked(doc):
                    checked += 1
                    problems += validate(doc)
    for problem in problems:
        print(problem)  # noqa: T201 - the script's report
    print(f"checked {checked} custom resources, {len(problems)} problems")  # noqa: T201
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Strict validation of Prometheus Operator objects, which kubernetes-validate has no schema for.

Run by the tools venv's python (``.tools/venv/bin/python crd_validate.py FILE...``), where
scripts/deploy-tools.sh installs ``cloudcoil-models-prometheus-operator``: pydantic models generated from
the operator's CRDs. pydantic checks the types; unknown keys, which those models ignore, are reported here
too (as ``kubernetes-validate --strict`` does). Prints one line per problem and exits 1 if there was any.
"""

from __future__ import annotations

import sys
import types
import typing
from typing import Any

import pydantic
import yaml
from cloudcoil.models.prometheus_operator import v1

KINDS = {"ServiceMonitor": v1.ServiceMonitor, "PrometheusRule": v1.PrometheusRule}


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


def validate(doc: dict[str, Any]) -> list[str]:
    model = KINDS[doc["kind"]]
    name = f"{doc['kind']}/{doc.get('metadata', {}).get('name')}"
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
                if doc and doc.get("kind") in KINDS:
                    checked += 1
                    problems += validate(doc)
    for problem in problems:
        print(problem)  # noqa: T201 - the script's report
    print(f"checked {checked} Prometheus Operator objects, {len(problems)} problems")  # noqa: T201
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

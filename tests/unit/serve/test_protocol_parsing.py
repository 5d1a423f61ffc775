"""Turning MLflow and Open Inference Protocol payloads into records, and naming what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from mloop.errors import InconsistentInput, InvalidInput
from mloop.serve.protocols.mlflow import mlflow_records
from mloop.serve.protocols.v2 import v2_records


def test_mlflow_formats_give_the_same_records() -> None:
    records = [{"a": 1, "b": "x"}, {"a": None, "b": "y"}]
    split = {"columns": ["a", "b"], "data": [[1, "x"], [None, "y"]], "index": [0, 1]}
    assert mlflow_records({"dataframe_split": split}) == records
    assert mlflow_records({"dataframe_records": records}) == records
    assert mlflow_records({"inputs": records, "params": {}}) == records
    assert mlflow_records({"inputs": {"a": [1, None], "b": ["x", "y"]}}) == records
    assert mlflow_records({"instances": {"a": 1, "b": "x"}}) == [records[0]]


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}, ["body", "dataframe_split", "data", 0]),
        ({"dataframe_split": {"columns": "a", "data": []}}, ["body", "dataframe_split", "columns"]),
        ({"dataframe_records": {"a": 1}}, ["body", "dataframe_records"]),
        ({"inputs": {"a": [1, 2], "b": [1]}}, ["body", "inputs", "b"]),
        ({"inputs": [], "instances": []}, ["body"]),
        ({"inputs": [], "extra": 1}, ["body"]),
    ],
)
def test_mlflow_mistakes_are_named(payload: dict[str, Any], loc: list[Any]) -> None:
    with pytest.raises(InvalidInput) as error:
        mlflow_records(payload)
    assert isinstance(error.value.detail, list) and error.value.detail[0]["loc"] == loc


def test_v2_tensors_become_records() -> None:
    payload = {
        "inputs": [
            {"name": "a", "shape": [2], "datatype": "FP64", "data": [1.5, None]},
            {"name": "b", "shape": [2, 1], "datatype": "BYTES", "data": [["x"], ["y"]]},
        ]
    }
    assert v2_records(payload) == ([{"a": 1.5, "b": "x"}, {"a": None, "b": "y"}], {"a": 0, "b": 1})


SHAPE = ["body", "inputs", 0, "shape"]


@pytest.mark.parametrize(
    ("tensor", "loc", "kind"),
    [
        # outside the V2InferenceRequest schema: 422 (InvalidInput)
        ({"name": "a", "shape": [1], "datatype": "FP64"}, ["body", "inputs", 0, "data"], InvalidInput),
        ({"name": "a", "shape": [1], "datatype": "DOUBLE", "data": [1]}, [*SHAPE[:3], "datatype"], InvalidInput),
        ({"name": "a", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}, SHAPE, InvalidInput),
        ({"name": "a", "shape": "1", "datatype": "FP64", "data": [1]}, SHAPE, InvalidInput),
        ({"name": "a", "shape": [], "datatype": "FP64", "data": []}, SHAPE, InvalidInput),
        ({"name": "a", "shape": [0], "datatype": "FP64", "data": []}, SHAPE, InvalidInput),
        ({"name": "a", "shape": [True], "datatype": "FP64", "data": [1]}, SHAPE, InvalidInput),
        ({"name": 7, "shape": [1], "datatype": "FP64", "data": [1]}, ["body", "inputs", 0, "name"], InvalidInput),
        ({"name": "a", "shape": [1], "datatype": "FP64", "data": 1}, ["body", "inputs", 0, "data"], InvalidInput),
        # inside the schema, against what only its description can say: 400 (InconsistentInput)
        ({"name": "a", "shape": [2], "datatype": "FP64", "data": [1]}, SHAPE, InconsistentInput),
    ],
)
def test_v2_mistakes_are_named(tensor: dict[str, Any], loc: list[Any], kind: type[InvalidInput]) -> None:
    with pytest.raises(InvalidInput) as error:
        v2_records({"inputs": [tensor]})
    assert type(error.value) is kind
    assert isinstance(error.value.detail, list) and error.value.detail[0]["loc"] == loc


@pytest.mark.parametrize(
    "payload",
    [
        {"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}], "outputs": [{"name": []}]},
        {"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}], "outputs": [{"name": "x"}]},
        {"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}], "outputs": {"name": "predict"}},
        {"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}], "id": 5},
    ],
)
def test_v2_envelope_mistakes_are_422_not_500(payload: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as error:  # an unhashable output name was a TypeError (500) before
        v2_records(payload)
    assert type(error.value) is InvalidInput


def test_v2_rows_must_agree_and_names_must_not_repeat() -> None:
    one = {"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}
    two = {"name": "b", "shape": [2], "datatype": "FP64", "data": [1, 2]}
    for inputs, message in (([one, two], "2 rows, the other inputs 1"), ([one, one], "sent twice")):
        with pytest.raises(InconsistentInput) as error:
            v2_records({"inputs": inputs})
        assert isinstance(error.value.detail, list) and message in error.value.detail[0]["msg"]


def test_v2_needs_inputs() -> None:
    with pytest.raises(InvalidInput):
        v2_records({"inputs": []})

"""The request model generated from a data contract, and the fixed API models."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from mloop.data.contract import ColumnSpec, Contract
from mloop.serve.schemas import FeedbackItem, PredictResponse, build_request_model, record_of


def contract(**severity: Any) -> Contract:
    return Contract(
        target="price",
        severity={"categories": "warn", **severity},
        columns={
            "price": ColumnSpec(dtype="float", role="target", nullable=False),
            "year": ColumnSpec(dtype="integer", role="time", nullable=False),
            "rooms": ColumnSpec(dtype="integer", nullable=False, min=0, max=10),
            "area": ColumnSpec(dtype="float", nullable=False, min=10.0, max=500.0),
            "veneer": ColumnSpec(dtype="string", nullable=True, categories=["Brick", "Stone"]),
            "zone": ColumnSpec(dtype="string", nullable=False, categories=["A", "B"]),
            "pool": ColumnSpec(dtype="boolean", nullable=True),
            "model_config": ColumnSpec(dtype="float", nullable=True),
            "2nd Floor": ColumnSpec(dtype="float", nullable=True),
        },
    )


VALID = {"rooms": 3, "area": 120.5, "veneer": "Brick", "zone": "A"}


def errors(model: type[BaseModel], data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [(e["loc"], e["type"]) for e in caught.value.errors()]


@pytest.fixture
def model() -> type[BaseModel]:
    return build_request_model(contract())


def test_every_feature_is_a_field_named_like_its_column(model: type[BaseModel]) -> None:
    schema = model.model_json_schema()
    features = ["rooms", "area", "veneer", "zone", "pool", "model_config", "2nd Floor"]
    assert list(schema["properties"]) == [*features, "year"]  # the time column last, optional
    assert set(schema["required"]) == {"rooms", "area", "zone"}  # not the target, not the time column
    assert schema["additionalProperties"] is False


def test_nullable_fields_may_be_omitted_or_null(model: type[BaseModel]) -> None:
    record = record_of(model.model_validate({**VALID, "veneer": None}))
    assert record == {**VALID, "veneer": None, "pool": None, "model_config": None, "2nd Floor": None, "year": None}


def test_the_time_column_may_be_sent_for_the_log_but_is_not_required(model: type[BaseModel]) -> None:
    assert record_of(model.model_validate({**VALID, "year": 2009}))["year"] == 2009
    assert "not a model input" in model.model_json_schema()["properties"]["year"]["description"]


def test_odd_column_names_are_accepted_by_their_name(model: type[BaseModel]) -> None:
    record = record_of(model.model_validate({**VALID, "model_config": 1.5, "2nd Floor": 80}))
    assert record["model_config"] == 1.5 and record["2nd Floor"] == 80.0


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"rooms": None}, [(("rooms",), "int_type")]),
        ({"zone": None}, [(("zone",), "string_type")]),
        ({"rooms": 3.5}, [(("rooms",), "int_from_float")]),
        ({"rooms": True}, [(("rooms",), "number_type")]),
        ({"area": "120"}, [(("area",), "number_type")]),
        ({"area": float("nan")}, [(("area",), "finite_number")]),
        ({"zone": 7}, [(("zone",), "string_type")]),
        ({"surprise": 1}, [(("surprise",), "extra_forbidden")]),
    ],
)
def test_wrong_values_are_named_by_field(model: type[BaseModel], change: dict[str, Any], expected: Any) -> None:
    assert errors(model, {**VALID, **change}) == expected


def test_missing_required_fields_are_named(model: type[BaseModel]) -> None:
    assert errors(model, {"veneer": "Stone"}) == [
        (("rooms",), "missing"),
        (("area",), "missing"),
        (("zone",), "missing"),
    ]


def test_integral_floats_are_integers(model: type[BaseModel]) -> None:
    assert record_of(model.model_validate({**VALID, "rooms": 3.0}))["rooms"] == 3


def test_unknown_categories_pass_by_default_and_known_ones_are_documented(model: type[BaseModel]) -> None:
    assert record_of(model.model_validate({**VALID, "zone": "Z"}))["zone"] == "Z"
    zone = model.model_json_schema()["properties"]["zone"]
    assert "A, B" in zone["description"] and zone["examples"] == ["A"]


def test_categories_are_an_enum_when_the_contract_says_error() -> None:
    strict = build_request_model(contract(categories="error"))
    assert errors(strict, {**VALID, "zone": "Z"}) == [(("zone",), "literal_error")]
    assert strict.model_json_schema()["properties"]["zone"]["enum"] == ["A", "B"]


def test_booleans_follow_json(model: type[BaseModel]) -> None:
    assert record_of(model.model_validate({**VALID, "pool": True}))["pool"] is True


def test_response_and_feedback_models() -> None:
    assert PredictResponse(prediction="yes", request_id="r", model_version="1").prediction == "yes"
    assert PredictResponse(prediction=1.5, request_id="r", model_version="1").prediction == 1.5
    assert FeedbackItem(request_id="r", label=3).label == 3
    with pytest.raises(ValidationError):
        FeedbackItem.model_validate({"request_id": "r"})
    with pytest.raises(ValidationError):
        FeedbackItem.model_validate({"request_id": "", "label": 1})

"""Request and response models of the inference API; the request model is generated from the contract.

One field per feature, named exactly like the column (a pydantic alias, so any column name works),
typed from the contract: ``integer`` → int (3.0 is accepted, 3.5 is not), ``float`` → a finite number,
``boolean`` → bool, ``string`` → str. JSON booleans and strings are not numbers here, even though
pydantic's lax mode would convert them: a client sending them has a bug worth reporting.

A nullable column (it had missing values in training) may be omitted or null; the model sees NaN, as
it saw for a blank cell in training. Any other column is required and non-null. A field the contract
does not know is an error (422), so a misspelt feature is never silently treated as missing. The
contract's time and id columns are optional fields: logged with the prediction, not fed to the model.

Unknown categories are accepted, because the contract's category check warns by default and the
pipeline encodes an unknown category like a missing one; with ``severity.categories: error`` in the
contract the field becomes an enum of the known categories.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from annotated_types import Interval
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model
from pydantic_core import PydanticCustomError

from mloop.data.contract import ColumnSpec, Contract

MAX_EXAMPLE_CATEGORIES = 5

Scalar = bool | int | float | str


def _numbers_only(value: Any) -> Any:
    if isinstance(value, bool | str):
        raise PydanticCustomError("number_type", "Input should be a number, not {kind}", {"kind": type(value).__name__})
    return value


# 64-bit: what the pipeline's integer columns hold, and what the schema can promise (orjson reads larger
# integers as floats, which pydantic then refuses, so an unbounded "integer" would admit what fails).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_Integer = Annotated[int, Interval(ge=INT64_MIN, le=INT64_MAX), BeforeValidator(_numbers_only)]
_Float = Annotated[float, BeforeValidator(_numbers_only), Field(allow_inf_nan=False)]


def _base_type(spec: ColumnSpec, strict_categories: bool) -> Any:
    if spec.dtype == "integer":
        return _Integer
    if spec.dtype == "float":
        return _Float
    if spec.dtype == "boolean":
        return bool
    if spec.dtype == "string" and strict_categories and spec.categories:
        return Literal[tuple(spec.categories)]
    return str  # string, and datetime as ISO text (the pipeline reads both as text)


def _describe(spec: ColumnSpec, strict_categories: bool) -> str:
    parts = [spec.dtype, "may be null or omitted" if spec.nullable else "required"]
    if spec.min is not None or spec.max is not None:
        parts.append(f"expected range [{spec.min}, {spec.max}]")
    if spec.categories:
        rule = "must be one of" if strict_categories else "known categories (others are accepted)"
        parts.append(f"{rule}: {', '.join(spec.categories)}")
    return "; ".join(parts)


def _example(spec: ColumnSpec) -> Any:
    if spec.categories:
        return spec.categories[0]
    if spec.dtype in ("integer", "float") and spec.min is not None and spec.max is not None:
        middle = (spec.min + spec.max) / 2
        return round(middle) if spec.dtype == "integer" else round(middle, 2)
    return {"integer": 0, "float": 0.0, "boolean": False}.get(spec.dtype)


def _field(name: str, spec: ColumnSpec, strict_categories: bool, note: str = "") -> tuple[Any, Any]:
    annotation = _base_type(spec, strict_categories)
    example = _example(spec)
    info = Field(
        None if spec.nullable else ...,
        alias=name,
        title=name,
        description="; ".join(filter(None, [note, _describe(spec, strict_categories)])),
        examples=None if example is None else [example],
    )
    return (annotation | None if spec.nullable else annotation), info


def build_request_model(contract: Contract, name: str = "PredictRecord") -> type[BaseModel]:
    """The pydantic model of one record of features, generated from ``contract``."""
    strict_categories = contract.severity.get("categories", "warn") == "error"
    # Python names are positional (f0, f1, …) and the column is the alias, so a column may be called
    # anything, even ``model_config`` or ``2nd Floor``.
    fields: dict[str, Any] = {
        f"f{i}": _field(column, contract.columns[column], strict_categories)
        for i, column in enumerate(contract.features)
    }
    # The time and id columns are not model inputs, but a client may send them so the prediction log
    # keeps them: retraining orders production rows in time and joins them back by id.
    for column in contract.with_role("time", "id"):
        spec = contract.columns[column].model_copy(update={"nullable": True})
        note = f"logged but not a model input ({contract.columns[column].role} column)"
        fields[f"f{len(fields)}"] = _field(column, spec, strict_categories, note)
    config = ConfigDict(extra="forbid", populate_by_name=False, protected_namespaces=(), title=name)
    model: type[BaseModel] = create_model(name, __config__=config, **fields)
    return model


_COLUMNS: dict[type[BaseModel], tuple[tuple[str, str], ...]] = {}


def record_of(validated: BaseModel) -> dict[str, Any]:
    """The features of a validated record keyed by column name, omitted nullable ones as None.

    ``model_dump(by_alias=True)`` for the flat models of ``build_request_model`` (scalars only), read
    straight from the instance: it runs once per request on the hot path.
    """
    kind = type(validated)
    columns = _COLUMNS.get(kind)
    if columns is None:
        columns = _COLUMNS[kind] = tuple((name, field.alias or name) for name, field in kind.model_fields.items())
    values = validated.__dict__
    return {column: values[name] for name, column in columns}


# ------------------------------------------------------------------------------------ responses


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictResponse(_Response):
    prediction: float | str = Field(description="The predicted value (regression) or class (classification).")
    request_id: str = Field(description="UUID of this prediction; send it back with /v1/feedback.")
    model_version: str
    probabilities: dict[str, float] | None = Field(
        default=None, description="Classification only: the probability of each class."
    )


class BatchPredictResponse(_Response):
    predictions: list[float | str]
    request_ids: list[str] = Field(description="One UUID per record, in the order of the records.")
    model_version: str
    probabilities: list[dict[str, float]] | None = Field(
        default=None, description="Classification only: per record, the probability of each class."
    )


class FeedbackItem(_Response):
    request_id: str = Field(min_length=1, max_length=200, description="The request_id a prediction answered with.")
    label: Scalar = Field(description="The true value or class, once known.")


class FeedbackResponse(_Response):
    attached: int = Field(description="How many labels were attached.")


class FeatureInfo(_Response):
    name: str
    dtype: str
    nullable: bool
    categories: list[str] | None = None


class FastPathInfo(_Response):
    enabled: bool = Field(description="True if requests are scored by the compiled pipeline.")
    reason: str = Field(description="Why the compiled pipeline is or is not used.")
    max_relative_error: float | None = Field(
        default=None, description="Largest relative difference from the plain pipeline on the holdout."
    )
    verified_rows: int = Field(default=0, description="Holdout rows the compiled pipeline was checked on.")


class RefusalInfo(_Response):
    version: str = Field(description="The alias's target version that is not served.")
    reason: str = Field(description="Why it failed to load or verify.")
    at: str


class ReloadResponse(_Response):
    changed: bool = Field(description="True if a new version was swapped in.")
    version: str | None = Field(description="The version serving now (None: no model loaded).")
    refused: RefusalInfo | None = None


class ModelResponse(_Response):
    name: str = Field(description="Registered model name (the project name).")
    version: str
    alias: str
    run_id: str
    task: str
    metrics: dict[str, float] = Field(description="Holdout metrics recorded when the version was registered.")
    contract_hash: str
    loaded_at: str
    classes: list[str] | None = None
    features: list[FeatureInfo]
    fast_path: FastPathInfo
    artifact_sha256: str | None = Field(
        default=None,
        description="SHA-256 of the model files, checked against the one recorded at registration before loading; "
        "None: the version has no recorded hash.",
    )
    refused: RefusalInfo | None = Field(
        default=None, description="A newer target of the alias that failed to load or verify; this one keeps serving."
    )


class HealthResponse(_Response):
    status: str


class ReadyResponse(_Response):
    status: str
    model_version: str


class ErrorResponse(BaseModel):
    detail: str | list[dict[str, Any]] = Field(
        description="What was wrong; for invalid input a list of {loc, msg, type} naming each field."
    )


__all__ = [
    "BatchPredictResponse",
    "ErrorResponse",
    "FastPathInfo",
    "FeatureInfo",
    "FeedbackItem",
    "FeedbackResponse",
    "HealthResponse",
    "ModelResponse",
    "PredictResponse",
    "ReadyResponse",
    "RefusalInfo",
    "ReloadResponse",
    "build_request_model",
    "record_of",
]

"""From broker messages to validated records and back to answers: the per-event work of ``mloop stream``.

An event's data is a JSON object of features, with an optional ``request_id``. An event without one gets
an id derived from the source and the broker's id of the message (a UUID5), so a redelivered event gets
the same id again and its answer is written once. An event that cannot be scored becomes a dead letter
that says why, with its data as it came.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from mloop.serve.http import validation_details
from mloop.serve.model_holder import Scored
from mloop.serve.schemas import record_of
from mloop.serve.stream.brokers.base import Event, Output

REQUEST_ID = "request_id"
MAX_REQUEST_ID = 128
MAX_REASON_PROBLEMS = 10
_NAMESPACE = uuid.UUID("6d6c6f6f-7073-7472-6561-6d6576656e74")  # fixed: ids must not change between releases


@dataclass(frozen=True)
class Decoded:
    """The events of a batch that can be scored (with their ids and records) and those that cannot."""

    events: list[Event]
    ids: list[str]
    records: list[dict[str, Any]]
    dead: list[tuple[Event, str]]


def request_id_of(source: str, event: Event) -> str:
    """The id of an event that brought none: the same for every delivery of the same message."""
    return str(uuid.uuid5(_NAMESPACE, f"{source}\n{event.key}"))


def decode(events: list[Event], request_model: type[BaseModel], source: str) -> Decoded:
    """Parse and validate each event by ``request_model`` (the served version's); the bad ones with why."""
    good: list[Event] = []
    ids: list[str] = []
    records: list[dict[str, Any]] = []
    dead: list[tuple[Event, str]] = []
    for event in events:
        parsed = _parsed(event, request_model, source)
        if isinstance(parsed, str):
            dead.append((event, parsed))
            continue
        good.append(event)
        ids.append(parsed[0])
        records.append(parsed[1])
    return Decoded(good, ids, records, dead)


def _parsed(event: Event, request_model: type[BaseModel], source: str) -> tuple[str, dict[str, Any]] | str:
    """The request id and validated record of ``event``, or why it has none."""
    if event.problem is not None:
        return event.problem
    try:
        payload = orjson.loads(event.data)
    except orjson.JSONDecodeError as exc:
        return f"not JSON: {exc}"
    if not isinstance(payload, dict):
        kind = "null" if payload is None else type(payload).__name__
        return f"expected a JSON object of features, got {kind}"
    request_id = payload.pop(REQUEST_ID, None)
    if request_id is None:
        request_id = request_id_of(source, event)
    elif not isinstance(request_id, str) or not request_id.strip() or len(request_id) > MAX_REQUEST_ID:
        return f"field {REQUEST_ID!r}: expected a non-empty string of at most {MAX_REQUEST_ID} characters"
    try:
        return request_id, record_of(request_model.model_validate(payload))
    except ValidationError as exc:
        return _reason(exc)


def _reason(exc: ValidationError) -> str:
    problems = validation_details(exc, [])
    shown = "; ".join(
        f"field {'.'.join(str(p) for p in item['loc'])!r}: {item['msg']}" for item in problems[:MAX_REASON_PROBLEMS]
    )
    more = len(problems) - MAX_REASON_PROBLEMS
    return shown + (f"; and {more} more problem(s)" if more > 0 else "")


def answers(ids: list[str], version: str, scored: Scored) -> list[Output]:
    """``{request_id, model_version, prediction[, probabilities]}`` of each scored event."""
    outputs = []
    for index, (request_id, prediction) in enumerate(zip(ids, scored.predictions, strict=True)):
        answer: dict[str, Any] = {REQUEST_ID: request_id, "model_version": version, "prediction": prediction}
        if scored.probabilities is not None:
            answer["probabilities"] = scored.probabilities[index]
        outputs.append(Output(request_id, orjson.dumps(answer)))
    return outputs


def dead_letter(source: str, event: Event, reason: str) -> Output:
    """The dead letter of ``event``: why, where it came from, and its data as it came (text if it decodes)."""
    try:
        data: Any = event.data.decode()
    except UnicodeDecodeError:
        data = event.data.hex()
    body = {"reason": reason, "source": source, "event_id": event.key, "data": data}
    return Output(f"dead:{request_id_of(source, event)}", orjson.dumps(body))


__all__ = ["Decoded", "answers", "dead_letter", "decode", "request_id_of"]

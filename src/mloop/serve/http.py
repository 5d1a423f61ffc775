"""HTTP answers of the inference service: the status of each problem (``STATUS``), and orjson responses.

Every error body is ``{"detail": ...}``: a string, or for invalid input a list of ``{"loc", "msg",
"type"}`` whose ``loc`` names the field.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mloop.errors import (
    HTTPProblem,
    InconsistentInput,
    InvalidInput,
    ModelUnavailable,
    NotFound,
    PayloadTooLarge,
    TokenServiceDown,
    Unauthorized,
    UnknownRequestIds,
    UnsupportedMediaType,
)


class OrjsonResponse(JSONResponse):
    """JSON via orjson: fast, and NaN/inf become null instead of invalid JSON."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


# The HTTP status of each problem (mloop.errors defines them; only serve decides how they are answered),
# most specific class first; a problem of none of these classes answers 500. 422 means the body breaks the
# route's OpenAPI schema; 400, that it fits the schema but breaks a rule the schema can only state in words.
STATUS: tuple[tuple[type[HTTPProblem], int], ...] = (
    (InconsistentInput, 400),
    (InvalidInput, 422),
    (UnknownRequestIds, 404),
    (NotFound, 404),
    (PayloadTooLarge, 413),
    (UnsupportedMediaType, 415),
    (Unauthorized, 401),
    (TokenServiceDown, 503),
    (ModelUnavailable, 503),
)


def status_of(error: HTTPProblem) -> int:
    """The HTTP status an ``HTTPProblem`` answers with: that of the first class in ``STATUS`` it belongs to."""
    return next((status for cls, status in STATUS if isinstance(error, cls)), 500)


def problem(loc: list[str | int], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": kind}


def validation_details(exc: ValidationError, prefix: list[str | int]) -> list[dict[str, Any]]:
    details = []
    for error in exc.errors(include_url=False, include_context=False):
        item = problem([*prefix, *error["loc"]], error["msg"], error["type"])
        value = error.get("input")
        if value is None or isinstance(value, bool | int | float | str):  # not whole records
            item["input"] = value
        details.append(item)
    return details


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            [problem(["body", exc.pos], f"the body is not valid JSON: {exc.msg}", "json_invalid")]
        ) from None


class BodyLimitMiddleware:
    """413 for a body over ``max_bytes``: at once by Content-Length, or as a chunked body passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self, size: str) -> PayloadTooLarge:
        return PayloadTooLarge(f"request body of {size} exceeds serve.max_body_bytes={self.max_bytes}; send less")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                problem = self._too_large(f"{int(value)} bytes")
                await OrjsonResponse({"detail": problem.detail}, status_code=status_of(problem))(scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:  # raised inside the route's body read: its handler answers 413
                    raise self._too_large(f"more than {self.max_bytes} bytes")
            return message

        await self.app(scope, limited, send)


__all__ = [
    "STATUS",
    "BodyLimitMiddleware",
    "OrjsonResponse",
    "parse_json",
    "problem",
    "status_of",
    "validation_details",
]

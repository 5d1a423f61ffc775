"""HTTP answers of the inference service: errors that know their status, and orjson responses.

Every error body is ``{"detail": ...}``: a string, or for invalid input a list of ``{"loc", "msg",
"type"}`` whose ``loc`` names the field.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mloop.errors import ServeError


class OrjsonResponse(JSONResponse):
    """JSON via orjson: fast, and NaN/inf become null instead of invalid JSON."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


class HTTPProblem(ServeError):
    """A ServeError that knows its HTTP status; ``detail`` becomes the JSON body."""

    status_code = 500

    def __init__(self, detail: str | list[dict[str, Any]], headers: dict[str, str] | None = None) -> None:
        super().__init__(detail if isinstance(detail, str) else f"{len(detail)} problem(s) with the request")
        self.detail = detail
        self.headers = headers


class InvalidInput(HTTPProblem):
    status_code = 422


class UnknownRequestIds(HTTPProblem):
    status_code = 404


class PayloadTooLarge(HTTPProblem):
    status_code = 413


class ModelUnavailable(HTTPProblem):
    status_code = 503


class NotFound(HTTPProblem):
    status_code = 404


class UnsupportedMediaType(HTTPProblem):
    status_code = 415


class Unauthorized(HTTPProblem):
    status_code = 401


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
                await OrjsonResponse({"detail": problem.detail}, status_code=413)(scope, receive, send)
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
    "BodyLimitMiddleware",
    "HTTPProblem",
    "InvalidInput",
    "ModelUnavailable",
    "NotFound",
    "Unauthorized",
    "OrjsonResponse",
    "PayloadTooLarge",
    "UnknownRequestIds",
    "UnsupportedMediaType",
    "parse_json",
    "problem",
    "validation_details",
]

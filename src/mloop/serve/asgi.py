"""The plain-ASGI layers of the inference app, and the one place an error becomes an HTTP answer.

``error_answer`` gives the status, body and headers of any exception; FastAPI's exception handlers
(``install_error_handlers``) and ``PredictRoute`` both answer through it, so an error reads the same
whichever layer met it. ``PredictRoute`` answers ``POST /v1/predict`` before FastAPI's request
machinery; ``InstrumentMiddleware`` counts and times every request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, MutableMapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mloop.errors import HTTPProblem, MloopError, PredictionLogError
from mloop.serve.http import OrjsonResponse, status_of
from mloop.serve.service import Service

log = logging.getLogger(__name__)

PREDICT_PATH = "/v1/predict"
_JSON_HEADERS = [(b"content-type", b"application/json")]


def error_answer(exc: Exception) -> tuple[int, dict[str, Any], Mapping[str, str] | None]:
    """The status, ``{"detail": ...}`` body and extra headers that answer ``exc``.

    An ``HTTPProblem`` answers its status (``mloop.serve.http.STATUS``) and detail; any other mloop
    error is a 500 with its message; anything else a 500 naming only the exception's class (the
    traceback goes to the log, never to the client).
    """
    if isinstance(exc, HTTPProblem):
        return status_of(exc), {"detail": exc.detail}, exc.headers
    if isinstance(exc, PredictionLogError):  # the log store is busy or away (a lock, an outage): a retry may work
        log.warning("answered 503: %s", exc)
        return 503, {"detail": f"{exc}; retry"}, {"Retry-After": "1"}
    if isinstance(exc, MloopError):
        log.error("answered 500: %s", exc)
        return 500, {"detail": str(exc)}, None
    return 500, {"detail": f"internal error ({type(exc).__name__}); see the server log"}, None


def install_error_handlers(app: FastAPI) -> None:
    """Answer every exception a route raises through ``error_answer``."""

    async def answer(_: Request, exc: Exception) -> Response:
        # For an unexpected error Starlette re-raises after this answer, so uvicorn logs the traceback.
        status, content, headers = error_answer(exc)
        return OrjsonResponse(content, status_code=status, headers=headers)

    for cls in (HTTPProblem, MloopError, Exception):
        app.add_exception_handler(cls, answer)


class InstrumentMiddleware:
    """Counts and times every request by route, status and the model version that answered it."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: MutableMapping[str, Any], status: int, seconds: float) -> None:
        endpoint = getattr(scope.get("route"), "path", "unmatched")
        version = (scope.get("state") or {}).get("model_version")
        if version is None:
            current = self.service.holder.current
            version = current.version if current else "none"
        self.service.metrics.requests.labels(endpoint, str(status), str(version)).inc()
        self.service.metrics.duration.labels(endpoint).observe(seconds)


class PredictRoute:
    """``POST /v1/predict`` answered in plain ASGI, before FastAPI's request machinery.

    The FastAPI route of the same path (``route``) stays registered, so ``/docs`` shows its request and
    answer schemas, and metrics label these answers by it; this layer answers first, through the same
    ``Service.predict`` and ``error_answer``, without a dependency resolution, a request object or a
    thread hand-over per request. It sits inside the API-key, body-limit and metrics middleware, so
    those apply unchanged.
    """

    def __init__(self, app: ASGIApp, service: Service, route: Any) -> None:
        self.app = app
        self.service = service
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PREDICT_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers: Mapping[str, str] | None = None
        try:
            body = await _read_body(receive)
            if body is None:
                return  # the client went away before sending its request
            model, answer = await self.service.predict(body, started)
            scope.setdefault("state", {})["model_version"] = model.version
            status, content = 200, answer
        except Exception as exc:  # noqa: BLE001 - every error is answered, as the app's handlers do
            if not isinstance(exc, MloopError):
                log.exception("unexpected error answering %s", PREDICT_PATH)
            status, content, headers = error_answer(exc)
        scope["route"] = self.route
        payload = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
        raw_headers = [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode())]
        if headers:
            raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": payload})


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


__all__ = ["PREDICT_PATH", "InstrumentMiddleware", "PredictRoute", "error_answer", "install_error_handlers"]

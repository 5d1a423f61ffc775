"""One error → answer mapping for FastAPI's handlers and the plain-ASGI /v1/predict route alike."""

from __future__ import annotations

import asyncio

import httpx
import orjson
from fastapi import FastAPI

from mloop.errors import InvalidInput, ModelUnavailable, PredictionLogError, ServeError
from mloop.serve.asgi import error_answer, install_error_handlers


def test_each_kind_of_error_answers_its_status_body_and_headers() -> None:
    problems = [{"loc": ["body", "x"], "msg": "field required", "type": "missing"}]
    assert error_answer(InvalidInput(problems)) == (422, {"detail": problems}, None)
    unavailable = ModelUnavailable("no model is loaded: none yet", headers={"Retry-After": "5"})
    assert error_answer(unavailable) == (503, {"detail": "no model is loaded: none yet"}, {"Retry-After": "5"})
    assert error_answer(ServeError("version 3 failed to score")) == (500, {"detail": "version 3 failed to score"}, None)
    locked = PredictionLogError("cannot attach labels in predictions.db: database is locked")
    assert error_answer(locked) == (  # a busy or absent log store is a retry later (503), not a server fault
        503,
        {"detail": "cannot attach labels in predictions.db: database is locked; retry"},
        {"Retry-After": "1"},
    )
    unexpected = error_answer(KeyError("secret internals"))
    assert unexpected == (500, {"detail": "internal error (KeyError); see the server log"}, None)


def test_fastapi_handlers_answer_the_same_bytes() -> None:
    app = FastAPI()
    install_error_handlers(app)
    errors: dict[str, Exception] = {
        "invalid": InvalidInput([{"loc": ["body"], "msg": "bad", "type": "t"}]),
        "unavailable": ModelUnavailable("later", headers={"Retry-After": "5"}),
        "serve": ServeError("broken"),
        "unexpected": RuntimeError("internals"),
    }

    @app.get("/{name}")
    async def fail(name: str) -> None:
        raise errors[name]

    async def answers() -> dict[str, httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return {name: await client.get(f"/{name}") for name in errors}

    for name, answer in asyncio.run(answers()).items():
        status, content, headers = error_answer(errors[name])
        assert answer.status_code == status
        assert answer.content == orjson.dumps(content)
        for key, value in (headers or {}).items():
            assert answer.headers[key] == value

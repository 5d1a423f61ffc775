"""The inference app: ``create_app(project)`` builds the FastAPI app of one project around one ``Service``.

The lifespan opens the prediction log, loads the champion and starts the reloader; without a champion
the app still starts (``/health`` is 200, ``/ready`` and ``/v1/predict`` are 503 with the reason) and
begins serving as soon as one is promoted. Requests are validated against the request model of the
version loaded *now*, so a hot-reloaded champion with another schema is enforced at once; ``/docs``
shows the schema of the version loaded at startup.

The routes are thin: they read the body and call the ``Service`` (``mloop.serve.service``), which
validates, scores and logs. ``POST /v1/predict`` is answered first by ``mloop.serve.asgi.PredictRoute``
in plain ASGI; the FastAPI route of the path documents it and calls the same ``Service.predict``.

Only the serve layer turns errors into HTTP answers (``mloop.serve.asgi.error_answer``): every error
body is ``{"detail": ...}``, a string, or for invalid input a list of ``{"loc", "msg", "type"}`` whose
``loc`` names the field (and the record index in a batch). Bad input is a 4xx, never a 500 or a stack
trace.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from mloop.project import Project
from mloop.registry.versions import CHAMPION
from mloop.serve.answers import describe
from mloop.serve.asgi import PREDICT_PATH, InstrumentMiddleware, PredictRoute, install_error_handlers
from mloop.serve.dashboard import dashboard_router
from mloop.serve.http import BodyLimitMiddleware, OrjsonResponse
from mloop.serve.protocols.openapi import complete_document
from mloop.serve.protocols.sagemaker import invocations_router
from mloop.serve.protocols.v2 import v2_router
from mloop.serve.rate_limit import RateLimit
from mloop.serve.schemas import (
    BatchPredictResponse,
    ErrorResponse,
    FeedbackItem,
    FeedbackResponse,
    HealthResponse,
    ModelResponse,
    PredictResponse,
    ReadyResponse,
    ReloadResponse,
)
from mloop.serve.security import ApiKeyMiddleware, ApiKeys
from mloop.serve.service import Service, service_of
from mloop.serve.tokens import TokenVerifier

FEEDBACK_PATH = "/v1/feedback"


# ----------------------------------------------------------------------------------- routes


ServiceDep = Annotated[Service, Depends(service_of)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        413: "Batch larger than serve.max_batch_size.",
        422: "Invalid JSON or a missing, unknown or wrongly typed field; `loc` names it.",
        503: "No model is loaded yet.",
    }.items()
}

predict_router = APIRouter(tags=["predict"])


@predict_router.post(
    PREDICT_PATH,
    summary="Predict for one record or a batch",
    response_model=PredictResponse | BatchPredictResponse,
    responses=_ERRORS,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {}}}}},
)
async def predict(request: Request, service: ServiceDep) -> Response:
    """One JSON object of features answers one prediction; a JSON array answers one per record."""
    started = time.perf_counter()
    body = await request.body()
    model, answer = await service.predict(body, started)
    request.state.model_version = model.version
    return OrjsonResponse(answer)


feedback_router = APIRouter(tags=["feedback"])


@feedback_router.post(
    FEEDBACK_PATH,
    summary="Attach true labels to earlier predictions",
    response_model=FeedbackResponse,
    responses={404: {"model": ErrorResponse, "description": "A request_id is not in the log."}, **_ERRORS},
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {}}}}},
)
async def feedback(request: Request, service: ServiceDep) -> Response:
    """`{"request_id", "label"}` or an array of them; all are attached, or none if an id is unknown."""
    body = await request.body()
    attached = await run_in_threadpool(service.feedback, body)
    return OrjsonResponse({"attached": attached})


model_router = APIRouter(tags=["model"])


@model_router.get("/v1/model", response_model=ModelResponse, responses={503: _ERRORS[503]})
async def describe_model(service: ServiceDep) -> Response:
    """The loaded model: version, alias, run, task, holdout metrics and input features."""
    return OrjsonResponse(describe(service.model(), service.project.name, service.holder.refused))


admin_router = APIRouter(tags=["admin"])


@admin_router.post("/admin/reload", response_model=ReloadResponse, responses={401: {"model": ErrorResponse}})
async def reload_model(service: ServiceDep) -> Response:
    """Load the alias's target now (always needs an API key); a version that fails is refused."""
    return OrjsonResponse(await run_in_threadpool(service.reload))


ops_router = APIRouter(tags=["operations"])


@ops_router.get("/health", response_model=HealthResponse)
async def health() -> Response:
    """Liveness: the process answers, with or without a model."""
    return OrjsonResponse({"status": "ok"})


@ops_router.get("/ready", response_model=ReadyResponse, responses={503: _ERRORS[503]})
async def ready(service: ServiceDep) -> Response:
    """Readiness: 200 once a model is loaded, 503 with the reason before."""
    current = service.holder.current
    if current is None:
        return OrjsonResponse({"status": "unavailable", "detail": service.holder.reason}, status_code=503)
    return OrjsonResponse({"status": "ready", "model_version": current.version})


@ops_router.get("/metrics", response_class=Response)
async def metrics(service: ServiceDep) -> Response:
    """Prometheus metrics in the text exposition format."""
    content = await run_in_threadpool(service.metrics.render)
    return Response(content, media_type=service.metrics.content_type)


# ------------------------------------------------------------------------------------- app


class InferenceApp(FastAPI):
    """FastAPI whose OpenAPI document shows the request schema of the model loaded at startup."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = get_openapi(
                title=self.title, version=self.version, description=self.description, routes=self.routes
            )
            service: Service = self.state.service
            model = service.startup_model or service.holder.current
            record = model.request_model if model is not None else None
            bodies = {PREDICT_PATH: ("PredictRecord", None), FEEDBACK_PATH: ("FeedbackItem", FeedbackItem)}
            max_items = service.project.config.serve.max_batch_size
            self.openapi_schema = complete_document(schema, record, bodies, max_items)
        return self.openapi_schema


def _package_version() -> str:
    try:
        return version("mloop")
    except PackageNotFoundError:
        return "0+unknown"


def _api_keys(project: Project) -> ApiKeys:
    settings = project.config.serve
    file = None
    if settings.api_keys_file:
        file = Path(settings.api_keys_file)
        file = file if file.is_absolute() else project.root / file
    return ApiKeys.load(settings.api_keys_env, file)


def create_app(project: Project) -> FastAPI:
    """The inference app of ``project``; nothing is loaded until the app starts (its lifespan)."""
    # serve.micro_batch_max_rows: 1 turns micro-batching off: every request is then scored on its own, inline.
    service = Service(project, micro_batching=project.config.serve.micro_batch_max_rows > 1)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(service.start)
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)

    app = InferenceApp(
        title=f"mloop · {project.name}",
        version=_package_version(),
        description=f"Predictions of the `{CHAMPION}` version of the registered model `{project.name}`.",
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
    )
    app.state.service = service
    app.state.project = project  # what the dashboard router reads; the dashboard-only app sets it too
    routers = (predict_router, feedback_router, model_router, ops_router, invocations_router, v2_router, admin_router)
    for router in routers:
        app.include_router(router)
    app.include_router(dashboard_router)
    install_error_handlers(app)
    # First added: the innermost of mloop's layers. Metrics label its answers by the FastAPI route.
    route = next(r for r in predict_router.routes if getattr(r, "path", None) == PREDICT_PATH)
    app.add_middleware(PredictRoute, service=service, route=route)
    app.add_middleware(InstrumentMiddleware, service=service)
    app.add_middleware(BodyLimitMiddleware, max_bytes=project.config.serve.max_body_bytes)
    # Outermost, so a refused request costs nothing else; keys are read here, in the entry point.
    settings = project.config.serve
    app.add_middleware(
        ApiKeyMiddleware,
        keys=_api_keys(project),
        feedback_paths=(FEEDBACK_PATH,),
        tokens=TokenVerifier.from_settings(settings),
        limit=RateLimit(settings.rate_limit, settings.rate_limit_storage) if settings.rate_limit else None,
    )
    return app


__all__ = ["InferenceApp", "Service", "create_app"]

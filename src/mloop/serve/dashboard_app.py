"""The dashboard on its own: ``create_dashboard_app(config_path)`` serves ``GET /dashboard`` without a model.

The inference app needs a champion to start; ``mloop ui`` shows a project's monitoring and registry
whether or not one is loadable, so this app has only the dashboard router (and ``/`` pointing at it).
Nothing is loaded at startup: each request renders the report from the project's files.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from mloop.errors import MloopError
from mloop.project import Project
from mloop.serve.dashboard import dashboard_router
from mloop.serve.http import OrjsonResponse


def create_dashboard_app(config_path: Path | str) -> FastAPI:
    """The dashboard app of the project whose ``mloop.yaml`` is ``config_path``; a broken config fails here."""
    project = Project.load(config_path)
    # No /docs: the app has one HTML page and nothing to call.
    app = FastAPI(title=f"mloop dashboard · {project.name}", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.project = project
    app.include_router(dashboard_router)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/dashboard")

    async def mloop_error(_: Request, exc: Exception) -> Response:
        # As in the inference app: the message (an unreachable store, say) as {"detail"}, not a traceback.
        return OrjsonResponse({"detail": str(exc)}, status_code=500)

    app.add_exception_handler(MloopError, mloop_error)
    return app


__all__ = ["create_dashboard_app"]

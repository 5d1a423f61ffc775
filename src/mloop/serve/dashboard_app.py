"""The dashboard on its own: ``create_dashboard_app(config_path)`` serves ``GET /dashboard`` without a model.

The inference app needs a champion to start; ``mloop ui`` shows a project's monitoring and registry
whether or not one is loadable, so this app has only the dashboard router (and ``/`` pointing at it).
Nothing is loaded at startup: each request renders the report from the project's files.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from mloop.project import Project
from mloop.serve.asgi import install_error_handlers
from mloop.serve.dashboard import dashboard_router


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

    install_error_handlers(app)  # as in the inference app: {"detail": message}, never a traceback
    return app


__all__ = ["create_dashboard_app"]

"""``GET /dashboard``: the ``mloop report`` page, rendered from the project's files at request time.

The router reads the project from ``app.state.project``, so it serves in the inference app and in the
dashboard-only app of ``mloop ui`` (``mloop.serve.dashboard_app``) alike.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from mloop.monitor.report import render_report
from mloop.project import Project

dashboard_router = APIRouter(tags=["monitoring"])


@dashboard_router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request) -> HTMLResponse:
    """Drift per feature, quality over time, model versions and promotions: one self-contained HTML page."""
    project: Project = request.app.state.project
    # Reads the monitoring history and the MLflow registry: blocking I/O, off the event loop.
    page = await run_in_threadpool(render_report, project)
    # The page has no scripts; the policy keeps it that way even if a feature name carries markup.
    return HTMLResponse(page, headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})


__all__ = ["dashboard_router"]

"""`mloop ui`: the MLflow UI on the project's store and the mloop dashboard, together until Ctrl-C.

The servers and how they start and stop are in ``mloop.serve.ui``; this module binds them to the
command line and prints where to look.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mloop.cli.app import app, console, project

if TYPE_CHECKING:
    from mloop.project import Project
    from mloop.serve.ui import DashboardServer, MlflowUI


@app.command()
def ui(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option(help="Address both servers bind; 127.0.0.1 keeps them on this machine.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the mloop dashboard.")] = 8050,
    mlflow_port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the MLflow UI.")] = 5000,
) -> None:
    """Open the MLflow UI on the project's store and the mloop dashboard; Ctrl-C stops both."""
    import time

    from mloop.errors import ServeError
    from mloop.serve.ui import (
        POLL_SECONDS,
        DashboardServer,
        MlflowUI,
        StopSignals,
        bind_port,
        log_pointer,
        wait_until_ready,
    )

    proj = project(ctx)
    config_path = Path(ctx.obj["config"]).resolve()
    proj.ensure_workspace()  # the logs go in .mloop/
    remote = proj.tracking_uri.startswith(("http://", "https://"))
    # Both ports are checked before anything starts; the dashboard's socket stays bound from here on.
    sock = bind_port(host, port, "dashboard", "--port")
    try:
        if not remote:
            bind_port(host, mlflow_port, "MLflow UI", "--mlflow-port").close()
    except BaseException:
        sock.close()
        raise
    signals = StopSignals()
    parts: list[MlflowUI | DashboardServer] = []
    try:
        if not remote:
            parts.append(MlflowUI(proj, host, mlflow_port))
        parts.append(DashboardServer(config_path, proj, host, sock))
        with console.status("Starting the MLflow UI and the dashboard…"):
            ready = wait_until_ready(parts, signals)
        if ready:
            _print_urls(proj, parts, remote)
            while signals.received is None:
                for part in parts:
                    failure = part.failure()
                    if failure is not None:
                        raise ServeError(
                            f"the {part.name} stopped unexpectedly: {failure}; {log_pointer(part.log)}. "
                            "Everything else `mloop ui` started was stopped too."
                        )
                time.sleep(POLL_SECONDS)
        console.print("stopping…", highlight=False)
    finally:
        if not parts or not isinstance(parts[-1], DashboardServer):
            sock.close()  # the dashboard never took it over
        for part in reversed(parts):
            part.stop()
        signals.restore()
    console.print(f"stopped the {' and the '.join(p.name for p in parts)}", highlight=False)


def _print_urls(proj: Project, parts: list[MlflowUI | DashboardServer], remote: bool) -> None:
    def line(label: str, url: str, note: str) -> None:
        console.print(f"  {label:<10} {url}  ({note})", markup=False, highlight=False, soft_wrap=True)

    console.print(f"mloop ui · {proj.name}", markup=False, highlight=False, soft_wrap=True)
    if remote:
        from mloop.tracking.store import safe_uri

        line("MLflow UI", safe_uri(proj.tracking_uri), "the project's tracking server")
    for part in parts:
        line(part.name, part.url, f"log: {part.log}")
    console.print("Ctrl-C stops both." if len(parts) > 1 else "Ctrl-C stops the dashboard.", highlight=False)


__all__ = ["ui"]

"""Servers and other background processes on 127.0.0.1, each bounded in time and always stopped.

    with run_server(project, tmp_path) as server, server.client() as http:   # uvicorn serving the champion
        http.post("/v1/predict", json=records)

``started`` does the same for any server command (MLflow, Prometheus, …): a free port, its output in a
log file, a wait until a URL answers (failing with the log if the process dies or the wait runs out), and
at the end SIGTERM to its process group, then SIGKILL.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from mloop.project import Project
from tests.helpers.cli import clean_env

STARTUP_SECONDS = 120.0
STOP_SECONDS = 30.0
SERVE_STARTUP_SECONDS = 90.0
WAIT_SECONDS = 30.0
LOG_TAIL = 5000

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_executable(name: str, package: str) -> str:
    """The path of the executable ``name`` on PATH; a failure on CI, where it must be installed, and a skip
    elsewhere, both naming the Debian ``package`` that has it."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is missing on CI: install the Debian package `{package}`")
        pytest.skip(f"{name} is not installed (Debian package `{package}`)")
    return path


def wait_for(check: Callable[[], T | None], what: str, timeout: float = WAIT_SECONDS) -> T:
    """Poll ``check`` until it returns something other than None or False; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value is not None and value is not False:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def stop(process: subprocess.Popen[Any], *, group: bool = True, timeout: float = STOP_SECONDS) -> None:
    """SIGTERM to ``process`` (to its whole process group when ``group``), then SIGKILL if it outlives
    ``timeout``; a no-op for a process that has exited."""
    if process.poll() is not None:
        return

    def send(sig: signal.Signals) -> None:
        try:
            if group:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)
        except ProcessLookupError:  # it ended in the meantime
            pass

    send(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:  # a loaded machine can be slow to shut down; do not leak it
        send(signal.SIGKILL)
        process.wait(timeout)


@contextmanager
def background(
    argv: Sequence[str], *, own_group: bool = True, stop_seconds: float = STOP_SECONDS, **popen: Any
) -> Iterator[subprocess.Popen[Any]]:
    """``Popen(argv, **popen)``, stopped on the way out if it still runs (see ``stop``). ``own_group``: in
    a new session, so the children it starts (uvicorn workers, MLflow's gunicorn) stop with it."""
    process = subprocess.Popen(list(argv), start_new_session=own_group, **popen)
    try:
        yield process
    finally:
        stop(process, group=own_group, timeout=stop_seconds)


@dataclass
class Server:
    """A started server: its base URL, its process and the file its output goes to."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        """The end of the server's output."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL:]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)


def wait_until_answering(
    server: Server, path: str, status: int | None = 200, *, timeout: float = STARTUP_SECONDS, what: str = "server"
) -> None:
    """Poll ``server.url + path`` until it answers ``status`` (any status when None); fail, showing the log,
    when the process exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"{what} exited with {server.process.returncode}:\n{server.log()}")
        try:
            answered = httpx.get(server.url + path, timeout=2.0).status_code
            if status is None or answered == status:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{what} did not answer {path} with {status} within {timeout}s:\n{server.log()}")


@contextmanager
def started(
    argv: Sequence[str],
    url: str,
    log_path: Path,
    *,
    ready: str = "/health",
    status: int | None = 200,
    timeout: float = STARTUP_SECONDS,
    what: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[Server]:
    """``argv`` in its own process group, its output in ``log_path``, once ``url + ready`` answers
    ``status``; stopped with its group at the end. ``env`` None: this process's environment."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        log_path.open("wb") as log,
        background(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd) as process,
    ):
        server = Server(url, process, log_path)
        wait_until_answering(server, ready, status, timeout=timeout, what=what or Path(argv[0]).name)
        yield server


@contextmanager
def run_server(
    project: Project, tmp_dir: Path, ready_status: int = 200, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """uvicorn serving ``project`` (``mloop.serve.main:create_app_from_env``) on a free port, once /ready
    answers ``ready_status``; ``env`` adds to ``clean_env()``, e.g. ``MLOOP_SERVE__…`` settings."""
    port = free_port()
    argv = [
        sys.executable, "-m", "uvicorn", "mloop.serve.main:create_app_from_env", "--factory",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    full_env = clean_env(MLOOP_CONFIG=str(project.config_file), OMP_NUM_THREADS="1") | (env or {})
    with started(
        argv,
        f"http://127.0.0.1:{port}",
        tmp_dir / f"uvicorn-{port}.log",
        ready="/ready",
        status=ready_status,
        timeout=SERVE_STARTUP_SECONDS,
        what="uvicorn",
        env=full_env,
        cwd=project.root,
    ) as server:
        yield server


@contextmanager
def mlflow_server(
    backend_store_uri: str,
    log_path: Path,
    *,
    artifacts_destination: str | None = None,
    timeout: float = STARTUP_SECONDS,
    port: int | None = None,
) -> Iterator[Server]:
    """``mlflow server`` (one worker) on ``port`` (default: a free one) over ``backend_store_uri``, once
    /health answers; it proxies artifacts to ``artifacts_destination`` when given."""
    port = port or free_port()
    argv = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    argv += ["--backend-store-uri", backend_store_uri]
    if artifacts_destination is not None:
        argv += ["--artifacts-destination", artifacts_destination]
    with started(argv, f"http://127.0.0.1:{port}", log_path, timeout=timeout, what="mlflow server") as server:
        yield server

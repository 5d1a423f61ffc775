"""The servers behind `mloop ui`: the MLflow UI on a project's store and the mloop dashboard.

The MLflow UI runs as ``python -m mlflow server`` in a session of its own: its uvicorn child shares
the process group, so stopping the group stops everything it started, and Ctrl-C in the terminal
reaches only the mloop process, which then stops the group itself. The dashboard runs in the mloop
process, on a uvicorn thread over a socket bound first: no second Python start and import of the
stack, a taken port is known exactly before anything starts, and there is no second process to leave.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import uvicorn

from mloop.errors import ServeError
from mloop.project import Project
from mloop.serve.dashboard_app import create_dashboard_app
from mloop.tracking.store import sqlalchemy_url

STARTUP_SECONDS = 120.0  # MLflow's server imports a lot and checks the store's migrations before it answers
STOP_SECONDS = 10.0
POLL_SECONDS = 0.2
MLFLOW_LOG = "ui-mlflow.log"
DASHBOARD_LOG = "ui-dashboard.log"
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit): ")
_WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 - mapped to loopback for probes


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _address(host: str, port: int, what: str) -> tuple[socket.AddressFamily, tuple[str, int]]:
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ServeError(f"cannot start the {what}: the host {host!r} does not resolve ({exc.strerror})") from None
    return family, (str(address[0]), int(address[1]))


def bind_port(host: str, port: int, what: str, flag: str) -> socket.socket:
    """A socket bound to ``host:port`` (as uvicorn binds, with SO_REUSEADDR), or a ServeError saying why not."""
    family, address = _address(host, port, what)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(
                f"cannot start the {what} on {host}:{port}: the port is taken (another server, or an earlier "
                f"`mloop ui` still running?). Stop it, or choose another port with {flag} PORT."
            ) from None
        raise ServeError(f"cannot start the {what} on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _status(host: str, port: int, path: str, timeout: float) -> tuple[int, str] | None:
    """The status and body of ``GET path``, or None while nothing answers. No proxy: it is our own server."""
    conn = http.client.HTTPConnection(_WILDCARDS.get(host, host), port, timeout=timeout)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, answer.read().decode("utf-8", errors="replace")
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def log_pointer(log: Path) -> str:
    """Where the log is, with the exception it ends with (or its last line): usually the reason."""
    try:
        lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        lines = []
    # "pkg.module.SomeError: message", the last line of a traceback; SQLAlchemy adds lines after it
    errors = [line for line in lines if _EXCEPTION_LINE.match(line)]
    last = errors[-1] if errors else next((line for line in reversed(lines) if line), "")
    return f"see its log {log}" + (f", which says: {last[:300]}" if last else "")


class MlflowUI:
    """``mlflow server`` on the project's store, in its own process group, output to a log file."""

    name = "MLflow UI"

    def __init__(self, proj: Project, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.url = _url(host, port)
        self.log = proj.workspace / MLFLOW_LOG
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--host", host, "--port", str(port), "--workers", "1",
            # Runs keep the artifact location their experiment was created with (a file URI under
            # .mloop/artifacts), which the server reads directly; new experiments made in the UI go there too.
            "--default-artifact-root", proj.artifacts_dir.as_uri(), "--no-serve-artifacts",
        ]  # fmt: skip
        # The store URI goes by environment, not argv: a PostgreSQL password stays out of `ps`.
        env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": sqlalchemy_url(proj.tracking_uri)}
        # A UI for one user on this machine sends nothing elsewhere unless that user asks for it.
        env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        # MLflow's job runner (GenAI scorers, trace rollups) is seven more processes and seconds of
        # startup that browsing runs and models never uses; a user who wants it sets the variable.
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv of this Python's mlflow
                command,
                cwd=proj.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def failure(self) -> str | None:
        code = self.process.poll()
        return None if code is None else f"it exited with code {code}"

    def ready(self) -> bool:
        answer = _status(self.host, self.port, "/health", 5.0)
        return answer is not None and answer[0] == 200

    def _group_alive(self) -> bool:
        self.process.poll()  # reaps the leader once it exits, so only its children keep the group alive
        try:
            os.killpg(self.process.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def stop(self) -> None:
        """SIGTERM to the whole group (the server and its uvicorn worker), SIGKILL whatever outlives the timeout."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, sig)
            deadline = time.monotonic() + STOP_SECONDS
            while time.monotonic() < deadline:
                if not self._group_alive():
                    self.process.wait()
                    return
                time.sleep(0.05)
        with contextlib.suppress(subprocess.TimeoutExpired):  # unkillable (stuck in the kernel): nothing more to do
            self.process.wait(STOP_SECONDS)


class DashboardServer:
    """The dashboard-only app served by uvicorn on a thread, over a socket bound before anything starts."""

    name = "dashboard"

    def __init__(self, config_path: Path, proj: Project, host: str, sock: socket.socket) -> None:
        config = uvicorn.Config(
            create_dashboard_app(config_path),
            log_config=None,  # uvicorn's own setup writes to the terminal; its loggers go to the log file
            log_level="info",
            lifespan="off",
            timeout_graceful_shutdown=int(STOP_SECONDS),
        )
        self.server: uvicorn.Server = uvicorn.Server(config)
        self.sock = sock
        self.host, self.port = host, int(sock.getsockname()[1])
        self.url = _url(host, self.port) + "/dashboard"
        self.log = proj.workspace / DASHBOARD_LOG
        self._handler = logging.FileHandler(self.log, mode="w", encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
        self._logger = logging.getLogger("uvicorn")
        self._logger.addHandler(self._handler)
        self._propagate, self._logger.propagate = self._logger.propagate, False
        self.crash: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="mloop-ui-dashboard", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        except BaseException as exc:  # noqa: BLE001 - reported by failure(), not printed by the thread hook
            self._logger.exception("the dashboard server stopped")
            self.crash = exc

    def failure(self) -> str | None:
        if self.thread.is_alive():
            return None
        return f"its server ended ({type(self.crash).__name__}: {self.crash})" if self.crash else "its server ended"

    def ready(self) -> bool:
        answer = _status(self.host, self.port, "/dashboard", 60.0)  # the first render opens the store
        if answer is None:
            return False
        if answer[0] != 200:
            raise ServeError(
                f"the dashboard did not start: {self.url} answered HTTP {answer[0]} ({answer[1][:500]}); "
                f"{log_pointer(self.log)}"
            )
        return True

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(STOP_SECONDS + 5)
        self.sock.close()  # uvicorn closed it on a clean stop; this covers a start that never got that far
        self._logger.removeHandler(self._handler)
        self._logger.propagate = self._propagate
        self._handler.close()


class StopSignals:
    """SIGINT and SIGTERM set a flag, polled by the command (an Event set from a handler can deadlock)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received = signum

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def wait_until_ready(parts: list[MlflowUI | DashboardServer], signals: StopSignals) -> bool:
    """True once every part answers, False if a signal came first; a ServeError if one fails or is too slow.

    Parts are asked in order: the dashboard's first render opens the store, which on a new store would
    create MLflow's tables while the MLflow server creates them too, so it waits until that server answers.
    """
    waiting = list(parts)
    deadline = time.monotonic() + STARTUP_SECONDS
    while waiting:
        if signals.received is not None:
            return False
        for part in parts:
            failure = part.failure()
            if failure is not None:
                raise ServeError(f"the {part.name} did not start: {failure}; {log_pointer(part.log)}")
        if waiting[0].ready():
            waiting.pop(0)
            continue
        if time.monotonic() > deadline:
            names = " and ".join(f"the {p.name} on {p.url} (log: {p.log})" for p in waiting)
            raise ServeError(f"{names} did not answer within {STARTUP_SECONDS:.0f} s; the log may say why.")
        if waiting:
            time.sleep(POLL_SECONDS)
    return True


__all__ = ["DashboardServer", "MlflowUI", "StopSignals", "bind_port", "log_pointer", "wait_until_ready"]

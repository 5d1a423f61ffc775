"""`mloop ui` in a real subprocess: the MLflow UI and the dashboard answer, and Ctrl-C stops both."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest
from tests.helpers.cli import clean_env, mloop_argv
from tests.helpers.projects import early_sales, train_champion, write_config, write_project
from tests.helpers.servers import background, free_port

from mloop.project import Project

pytestmark = pytest.mark.integration

TRAIN_ROWS = 400
STARTUP_SECONDS = 180.0  # a cold MLflow server on a busy two-core machine takes 10-20 s
STOP_SECONDS = 45.0  # the command's own bound: 10 s for SIGTERM, 10 s more after SIGKILL
# No MLOOP_ settings from outside; no PYTHONUNBUFFERED, so the URLs must be flushed by the command
# itself; MLflow's telemetry off, so the only traffic is to 127.0.0.1.
ENV = clean_env(drop=["PYTHONUNBUFFERED"], MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, ames: pd.DataFrame) -> Project:
    """A project whose version 1 is champion (the serving tests' project, smaller)."""
    return train_champion(
        write_project(tmp_path_factory.mktemp("ui") / "ames", early_sales(ames, TRAIN_ROWS), "ames-ui")
    )


@dataclass
class UI:
    process: subprocess.Popen[bytes]
    out: Path
    err: Path

    def stdout(self) -> str:
        return self.out.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8", errors="replace")


@contextmanager
def mloop_ui(project: Project, tmp_path: Path, *args: str) -> Iterator[UI]:
    """`mloop ui ARGS` with its output in files; terminated (and its MLflow group with it) if a test leaves it."""
    out, err = tmp_path / "ui.out", tmp_path / "ui.err"
    command = mloop_argv("ui", *args, project=project)
    # SIGTERM to the command alone (not a group of its own): it stops MLflow's process group as on Ctrl-C.
    with (
        open(out, "wb") as stdout,
        open(err, "wb") as stderr,
        background(
            command, own_group=False, stop_seconds=STOP_SECONDS, cwd=tmp_path, env=ENV, stdout=stdout, stderr=stderr
        ) as process,
    ):
        yield UI(process, out, err)


def wait_for_urls(ui: UI) -> tuple[str, str]:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        text = ui.stdout()
        if "Ctrl-C stops both." in text:
            mlflow = re.search(r"MLflow UI\s+(http://\S+)", text)
            dashboard = re.search(r"dashboard\s+(http://\S+)", text)
            assert mlflow and dashboard, text
            return mlflow.group(1), dashboard.group(1)
        if ui.process.poll() is not None:
            pytest.fail(f"mloop ui exited with {ui.process.returncode}:\n{text}\n{ui.stderr()}")
        time.sleep(0.2)
    pytest.fail(f"mloop ui printed no URLs within {STARTUP_SECONDS}s:\n{ui.stdout()}\n{ui.stderr()}")


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def processes_naming(port: int) -> list[str]:
    """Command lines of live processes started with ``--port PORT`` (MLflow's server and its uvicorn)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:  # the process ended while we looked
            continue
        if b"--port" in args and str(port).encode() in args:
            found.append(b" ".join(args).decode(errors="replace"))
    return found


def two_ports() -> tuple[int, int]:
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


def test_both_urls_answer_and_ctrl_c_stops_both(trained: Project, tmp_path: Path) -> None:
    port, mlflow_port = two_ports()
    with mloop_ui(trained, tmp_path, "--port", str(port), "--mlflow-port", str(mlflow_port)) as ui:
        mlflow_url, dashboard_url = wait_for_urls(ui)
        assert mlflow_url == f"http://127.0.0.1:{mlflow_port}"
        assert dashboard_url == f"http://127.0.0.1:{port}/dashboard"

        # trust_env=False: no proxy from the environment between us and 127.0.0.1
        with httpx.Client(base_url=mlflow_url, timeout=30.0, trust_env=False) as mlflow:
            health = mlflow.get("/health")
            assert health.status_code == 200 and health.text.strip() == "OK"
            model = mlflow.get("/api/2.0/mlflow/registered-models/get", params={"name": "ames-ui"})
            assert model.status_code == 200, model.text
            registered = model.json()["registered_model"]
            assert {"alias": "champion", "version": "1"} in registered["aliases"]
            # The run's artifacts (under .mloop/artifacts) are readable through the UI's API.
            run_id = registered["latest_versions"][0]["run_id"]
            artifacts = mlflow.get("/ajax-api/2.0/mlflow/artifacts/list", params={"run_id": run_id})
            assert artifacts.status_code == 200, artifacts.text
            assert "contract.yaml" in {f["path"] for f in artifacts.json()["files"]}

        with httpx.Client(timeout=30.0, trust_env=False) as http:
            page = http.get(dashboard_url)
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert "mloop report: ames-ui" in page.text
            assert http.get(f"http://127.0.0.1:{port}/", follow_redirects=True).url == dashboard_url

        assert processes_naming(mlflow_port), "the MLflow server should be running"
        ui.process.send_signal(signal.SIGINT)
        assert ui.process.wait(STOP_SECONDS) == 0, ui.stderr()

    assert "stopped the MLflow UI and the dashboard" in ui.stdout()
    assert "Traceback" not in ui.stderr(), ui.stderr()
    assert not listening(port) and not listening(mlflow_port)
    assert processes_naming(mlflow_port) == [], "MLflow processes outlived mloop ui"
    logs = trained.workspace
    assert "GET /health" in (logs / "ui-mlflow.log").read_text(encoding="utf-8")
    assert "GET /dashboard" in (logs / "ui-dashboard.log").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("taken", "what", "flag"), [("dashboard", "dashboard", "--port"), ("mlflow", "MLflow UI", "--mlflow-port")]
)
def test_a_taken_port_is_a_clear_error_and_starts_nothing(
    trained: Project, tmp_path: Path, taken: str, what: str, flag: str
) -> None:
    port, mlflow_port = two_ports()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", port if taken == "dashboard" else mlflow_port))
        squatter.listen(1)
        with mloop_ui(trained, tmp_path, "--port", str(port), "--mlflow-port", str(mlflow_port)) as ui:
            code = ui.process.wait(120)
    stderr = " ".join(ui.stderr().split())  # the message wraps at the terminal width
    assert code == 8, stderr  # ServeError
    assert "Traceback" not in stderr
    busy = port if taken == "dashboard" else mlflow_port
    assert f"cannot start the {what} on 127.0.0.1:{busy}: the port is taken" in stderr
    assert f"{flag} PORT" in stderr
    assert not listening(port) and not listening(mlflow_port)
    assert processes_naming(mlflow_port) == []


def test_an_mlflow_server_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    """A store MLflow cannot open: the error names the MLflow UI, its log and the reason, and the dashboard stops."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be\n", encoding="utf-8")
    folder = tmp_path / "broken"
    folder.mkdir()
    project = write_config(
        folder,
        {
            "name": "broken",
            "data": {"source": "train.csv", "target": "y"},
            "tracking": {"uri": f"sqlite:///{blocker}/mlflow.db"},
        },
    )
    port, mlflow_port = two_ports()
    with mloop_ui(project, tmp_path, "--port", str(port), "--mlflow-port", str(mlflow_port)) as ui:
        code = ui.process.wait(STARTUP_SECONDS)
    stderr = " ".join(ui.stderr().split())
    assert code == 8, stderr
    assert "Traceback" not in stderr
    log = folder / ".mloop" / "ui-mlflow.log"
    assert f"the MLflow UI did not start: it exited with code 1; see its log {log}, which says: " in stderr
    assert "not-a-folder" in stderr  # the reason, from the log
    assert not listening(port) and not listening(mlflow_port)

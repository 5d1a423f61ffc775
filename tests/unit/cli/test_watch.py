"""`mloop watch`, the real CLI in a subprocess, on a real project whose MLflow server is down (a dead
127.0.0.1 port): it reports each failed check in one line and keeps checking with growing waits, stops at
once on SIGTERM and Ctrl-C, and stops before any check on a broken mloop.yaml."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from mloop.pipeline import stages
from tests.helpers.cli import clean_env, failed, mloop, mloop_argv
from tests.helpers.projects import early_sales, write_project
from tests.helpers.servers import free_port

# MLflow's client retries a refused connection for minutes by default; a failed check here fails at once.
ENV = clean_env(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="5")


@pytest.fixture(scope="module")
def dead_mlflow(tmp_path_factory: pytest.TempPathFactory, ames: pd.DataFrame) -> tuple[Path, int]:
    """An ingested Ames project (so a check gets as far as MLflow) tracking to a port nothing listens on."""
    port = free_port()
    project = write_project(
        tmp_path_factory.mktemp("watch"),
        early_sales(ames, rows=200),
        "watched",
        tracking={"uri": f"http://127.0.0.1:{port}"},
        data={"versioning": "off"},
    )
    stages.ingest(project)  # the contract; ingesting never asks MLflow
    return project.config_file, port


def test_failed_checks_are_reported_and_retried_with_growing_waits(dead_mlflow: tuple[Path, int]) -> None:
    config, port = dead_mlflow
    done = mloop(
        "-c", str(config), "watch", "--cycles", "4", "--interval", "0", "--backoff", "0.05", "--max-backoff", "0.1",
        "--json", env=ENV, timeout=60,
    )  # fmt: skip
    checks = [json.loads(line) for line in done.stdout.splitlines()]
    assert [c["check"] for c in checks] == [1, 2, 3, 4], done.stdout + done.stderr
    assert [c["failures"] for c in checks] == [1, 2, 3, 4]
    assert [c["next_in_s"] for c in checks] == [0.05, 0.1, 0.1, None]  # doubling, capped, none after the last
    for c in checks:
        assert c["error"] == "TrackingError"
        assert c["failed"].startswith(f"TrackingError: cannot use the MLflow store at http://127.0.0.1:{port}")
    # --cycles ran out on a failure: the exit code says which kind (TrackingError's), and nothing crashed.
    assert done.returncode == 6 and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["sigterm", "ctrl-c"])
def test_a_signal_stops_the_daemon_at_once(dead_mlflow: tuple[Path, int], sig: signal.Signals, code: int) -> None:
    """A daemon in its backoff (30 s to wait) stops within seconds, with the conventional exit code."""
    config, port = dead_mlflow
    argv = mloop_argv("-c", str(config), "watch", "--interval", "3600", "--backoff", "30")
    with subprocess.Popen(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stderr is not None
            line = process.stderr.readline()  # the first failed check, one line
            assert line.startswith("check 1 failed: TrackingError: cannot use the MLflow store at "), line
            assert f"127.0.0.1:{port}" in line and line.rstrip().endswith("; retrying in 30s"), line
            sent = time.monotonic()
            process.send_signal(sig)
            assert process.wait(timeout=15) == code
            assert time.monotonic() - sent < 15
            assert "Traceback" not in process.stderr.read()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def test_a_broken_config_stops_it_before_any_check(tmp_path: Path) -> None:
    """What waiting cannot heal is not retried: mloop.yaml is read once, at start."""
    (tmp_path / "mloop.yaml").write_text(
        "name: x\ndata: {source: x.csv, target: y}\nmonitr: {window_size: 10}\n", encoding="utf-8"
    )
    done = mloop("watch", "--backoff", "0.01", cwd=tmp_path, env=ENV, timeout=60)
    assert done.returncode == 2 and "monitr" in failed(done)
    assert "check 1" not in done.stdout + done.stderr

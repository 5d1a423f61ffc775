"""schemathesis against the OpenAPI document of a real `mloop serve` (uvicorn in a subprocess): every
protocol (/v1, MLflow /invocations, SageMaker /ping, Open Inference Protocol v2, /admin) with every
check, examples, coverage, fuzzing and stateful phases. No 5xx, no answer outside its documented
status codes and schema, no schema-valid body refused with 422, no schema-invalid body accepted, no
hang (each request has a timeout). Bounded: a fixed seed and number of examples, 127.0.0.1 only.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from tests.helpers.projects import train_champion, write_project
from tests.helpers.servers import Server, run_server

from mloop.project import Project

pytestmark = pytest.mark.integration

KEY = "fuzz-test-key"
CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = 60
SEED = 20261203
RUN_SECONDS = 600


@pytest.fixture(scope="module")
def fuzzed_project(tmp_path_factory: pytest.TempPathFactory, train_frame: pd.DataFrame) -> Project:
    """A project of its own: the fuzzer's requests fill its prediction log, not the shared one."""
    return train_champion(write_project(tmp_path_factory.mktemp("fuzz") / "ames", train_frame, "ames-fuzz"))


@pytest.fixture(scope="module")
def keyed_server(fuzzed_project: Project, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """With an API key, so /admin/reload is reachable and every POST is checked for it."""
    env = {"MLOOP_API_KEYS": KEY, "MLOOP_SERVE__RELOAD_INTERVAL_SECONDS": "3600"}
    with run_server(fuzzed_project, tmp_path_factory.mktemp("fuzz-uvicorn"), env=env) as running:
        yield running


def test_schemathesis_finds_nothing(keyed_server: Server, tmp_path: Path) -> None:
    argv = [
        str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(CONFIG),
        "run", f"{keyed_server.url}/openapi.json", "--checks", "all", "--max-examples", str(EXAMPLES),
        "--seed", str(SEED), "--workers", "1", "--request-timeout", "10", "--header", f"X-API-Key: {KEY}",
        "--no-color",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_SECONDS, cwd=tmp_path)
    report = done.stdout + done.stderr
    assert done.returncode == 0, f"schemathesis found problems:\n{report[-20000:]}\nserver log:\n{keyed_server.log()}"
    assert "passed" in report and "failed" not in report.split("SUMMARY")[-1], report[-5000:]
    assert "Internal Server Error" not in keyed_server.log()

"""Finding the deployment linters and validators that `scripts/deploy-tools.sh` installs into `.tools/`.

`tool("helm")` returns the path of an executable, looked up in `.tools/bin`, then the tools venv
(`.tools/venv/bin`), then PATH ($TOOLS_DIR instead of .tools when set, as for the script); when none has it
the test is skipped with the command that installs it (on CI the suite-wide hook in tests/conftest.py turns
that skip into a failure).
Tests take it either as the `tool` fixture or by calling `find_tool` through it:

    def test_lint(tool):
        subprocess.run([tool("helm"), "lint", CHART], check=True)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.deploy.exported_metrics import exported_series

REPO = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("TOOLS_DIR") or REPO / ".tools")
TOOLS_BIN = TOOLS / "bin"
TOOLS_VENV_BIN = TOOLS / "venv" / "bin"
INSTALL_HINT = "bash scripts/deploy-tools.sh"


def find_tool(name: str) -> str | None:
    """Path of the executable `name` from .tools/bin, .tools/venv/bin or PATH, or None."""
    for folder in (TOOLS_BIN, TOOLS_VENV_BIN):
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def require_tool(name: str) -> str:
    """Path of the executable `name`, or skip the test saying how to install it."""
    path = find_tool(name)
    if path is None:
        pytest.skip(f"{name} is not installed: run `{INSTALL_HINT}` (installs into .tools/) or put it on PATH")
    return path


@pytest.fixture(scope="session")
def tool() -> Callable[[str], str]:
    """`tool(name)` -> path of the executable, or skips the test when it is missing."""
    return require_tool


@pytest.fixture(scope="session")
def tools_env() -> dict[str, str]:
    """The environment with .tools/bin and the tools venv first on PATH (for tools that call each other,
    such as `checkov --framework helm`, which runs `helm`)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(TOOLS_BIN), str(TOOLS_VENV_BIN), env.get("PATH", "")])
    return env


@pytest.fixture(scope="session")
def tools_python() -> str:
    """The tools venv's python (it has checkov's `hcl2` and the Prometheus Operator models), or skips."""
    python = TOOLS_VENV_BIN / "python"
    if not python.is_file():
        pytest.skip(f"the tools venv is not installed: run `{INSTALL_HINT}`")
    return str(python)


@pytest.fixture
def exported(tmp_path: Path) -> dict[str, set[str]]:
    """Every series an mloop server exports on /metrics, with its label names (see ``exported_metrics``)."""
    return exported_series(tmp_path)

"""mloop.core is functions over numbers: no files, clocks or models (docs/architecture.md#layers).

The "core does no I/O" import contract (pyproject.toml, `lint-imports`) forbids the modules; this test reads
core's source for what an import contract cannot see: builtins such as ``open()``, and calls of a clock, of
a file or of a fitted model through an object core was handed. Models are called in mloop.registry.scoring
and the numbers passed down; a callable such as ``behaviour_result``'s ``mean_prediction`` is the caller's.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mloop.core

CORE = Path(mloop.core.__file__).parent
FILES = sorted(CORE.glob("*.py"))

# The same modules as the import contract, here also for imports inside functions and for a run without it.
FORBIDDEN_MODULES = {
    "time", "datetime", "os", "pathlib", "io", "shutil", "tempfile", "glob", "subprocess", "socket",
    "urllib", "http", "sqlite3", "mlflow", "sqlalchemy", "psycopg", "httpx", "fastapi", "pandera",
    "pyarrow", "yaml", "mloop.config", "mloop.project", "mloop.terminal", "mloop.quiet",
}  # fmt: skip
FORBIDDEN_BUILTINS = {"open", "print", "input", "exec", "eval", "compile", "__import__", "breakpoint"}
FORBIDDEN_METHODS = {
    # a fitted model
    "predict", "predict_proba", "predict_log_proba", "decision_function", "fit", "fit_transform",
    "partial_fit", "score",
    # a clock
    "perf_counter", "perf_counter_ns", "monotonic", "process_time", "time_ns", "now", "utcnow", "today",
    "sleep",
    # a file
    "read_csv", "read_parquet", "read_json", "read_table", "read_sql", "read_pickle", "to_csv",
    "to_parquet", "to_pickle", "read_text", "write_text", "read_bytes", "write_bytes", "savefig", "savez",
    "loadtxt", "savetxt", "fromfile", "tofile", "mkdir", "unlink",
}  # fmt: skip


def _module_name(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return [node.module or ""] if node.level == 0 else []


def _forbidden(name: str) -> bool:
    return any(name == banned or name.startswith(banned + ".") for banned in FORBIDDEN_MODULES)


def problems(source: str) -> list[str]:
    """``line: what`` for each forbidden import or call in ``source``, in line order."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            found += [(node.lineno, f"import {name}") for name in _module_name(node) if _forbidden(name)]
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_BUILTINS:
                found.append((node.lineno, f"{func.id}()"))
            elif isinstance(func, ast.Attribute) and func.attr in FORBIDDEN_METHODS:
                found.append((node.lineno, f".{func.attr}()"))
    return [f"{line}: {what}" for line, what in sorted(found)]


def test_core_has_modules_to_check() -> None:
    assert {"drift.py", "gate.py", "metrics.py"} <= {path.name for path in FILES}


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_core_module_calls_no_file_clock_or_model(path: Path) -> None:
    found = problems(path.read_text(encoding="utf-8"))
    assert not found, f"mloop/core/{path.name} does I/O (move it above core, e.g. registry.scoring): {found}"


def test_the_check_sees_what_it_looks_for() -> None:
    source = """
import time
from pathlib import Path
from mloop.config import MloopConfig

def f(model, X, path):
    import os.path
    start = time.perf_counter()
    model.predict(X)
    with open(path) as handle:
        return handle.read()
"""
    assert problems(source) == [
        "2: import time",
        "3: import pathlib",
        "4: import mloop.config",
        "7: import os.path",
        "8: .perf_counter()",
        "9: .predict()",
        "10: open()",
    ]

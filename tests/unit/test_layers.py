"""The import contracts of pyproject.toml (docs/architecture.md#layers): `lint-imports` keeps them all, they
cover every module, and they break on the imports they forbid."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import mloop

pytest.importorskip("importlinter", reason="lint-imports comes with the dev extra: pip install -e '.[dev]'")

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(mloop.__file__).resolve().parent
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]
BY_ID = {contract["id"]: contract for contract in CONTRACTS}

# Who may import each framework (or, for rich, reach it through another module): everything else is a source
# module of the contract. mloop.__main__ runs the CLI, so it reaches what cli imports.
ALLOWED = {
    "web-in-serve": {"mloop.serve"},
    "typer-in-cli": {"mloop.cli"},
    "rich-in-reporting": {"mloop.__main__", "mloop.cli", "mloop.demo", "mloop.terminal", "mloop.monitor.tables"},
}


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("lint-imports")
    if not script.exists():
        pytest.skip(f"no lint-imports beside {sys.executable}: pip install -e '.[dev]'")
    env = {**os.environ, "COLUMNS": "250"}  # rich's console: one contract per line
    return subprocess.run(  # noqa: S603 - the venv's own script
        [str(script), "--no-cache", "--no-logo"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def modules() -> set[str]:
    """Every module of the package, a package named by its ``__init__``."""
    out = set()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        out.add(".".join(("mloop", *parts[:-1]) if parts[-1] == "__init__" else ("mloop", *parts)))
    return out


def within(module: str, packages: set[str]) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)


def imports_nothing(module: str) -> bool:
    path = PACKAGE.joinpath(*module.split(".")[1:], "__init__.py")
    if not path.is_file():
        return False
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return not any(isinstance(node, ast.Import | ast.ImportFrom) for node in ast.walk(tree))


def test_lint_imports_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in out, out
    for contract in CONTRACTS:
        assert f"{contract['name']} KEPT" in out


def test_the_contracts() -> None:
    assert set(BY_ID) == {"layers", "train-monitor", "core-pure", "web-in-serve", "typer-in-cli", "rich-in-reporting"}
    layers = BY_ID["layers"]
    assert layers["containers"] == ["mloop"] and layers["exhaustive"] is True  # every module has a layer
    assert layers["layers"][:2] == ["__main__", "cli"] and layers["layers"][-1].startswith("errors")
    core = BY_ID["core-pure"]
    assert core["allow_indirect_imports"] is False
    stdlib_io = {"time", "datetime", "os", "pathlib", "io", "shutil", "tempfile", "subprocess", "socket"}
    assert stdlib_io | {"mloop.config", "mloop.project"} <= set(core["forbidden_modules"])
    assert BY_ID["web-in-serve"]["forbidden_modules"] == ["fastapi", "starlette", "uvicorn"]
    assert BY_ID["typer-in-cli"]["forbidden_modules"] == ["typer", "click"]
    assert BY_ID["rich-in-reporting"]["forbidden_modules"] == ["rich"]
    assert BY_ID["rich-in-reporting"]["allow_indirect_imports"] is False  # not through terminal or tables either


@pytest.mark.parametrize("contract_id", sorted(ALLOWED))
def test_a_framework_contract_covers_every_other_module(contract_id: str) -> None:
    sources = set(BY_ID[contract_id]["source_modules"])
    allowed = ALLOWED[contract_id]
    assert not any(within(module, sources) for module in allowed), "an allowed module is also forbidden"
    unchecked = {
        module
        for module in modules() - {"mloop"}  # the package's __init__: the public API, imported lazily by name
        if not within(module, sources) and not within(module, allowed) and not imports_nothing(module)
    }
    assert not unchecked, f"add {sorted(unchecked)} to source_modules of contract {contract_id!r} in pyproject.toml"


def test_lint_imports_breaks_on_forbidden_imports(tmp_path: Path) -> None:
    """A copy of the package with one forbidden import per contract, and a package left out of the layers."""
    shutil.copytree(PACKAGE, tmp_path / "mloop", ignore=shutil.ignore_patterns("__pycache__", "*.gz"))
    config = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(config[config.index("[tool.importlinter]") :], encoding="utf-8")
    added = {
        "data/__init__.py": "import typer",
        "registry/__init__.py": "import fastapi",
        "core/__init__.py": "import time",
        "monitor/quality.py": "from mloop.terminal import new_table",  # rich, one step away
        "data/snapshot.py": "from mloop.project import Project",  # upwards
        "newpackage/__init__.py": "",  # in no layer
    }
    for name, line in added.items():
        path = tmp_path / "mloop" / name
        path.parent.mkdir(exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"\n{line}\n")
    result = lint_imports(tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert f"Contracts: 1 kept, {len(CONTRACTS) - 1} broken." in out, out
    for broken in (
        "mloop.data -> typer",
        "mloop.registry -> fastapi",
        "mloop.core -> time",
        "mloop.monitor.quality -> mloop.terminal",
        "mloop.data.snapshot -> mloop.project",
        "- mloop.newpackage",
    ):
        assert broken in out, out
